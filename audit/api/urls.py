from django.urls import path

from audit.api import views

urlpatterns = [
    path("events/", views.AuditEventListView.as_view(), name="audit-event-list"),
    path("events/<int:pk>/", views.AuditEventDetailView.as_view(), name="audit-event-detail"),
]
