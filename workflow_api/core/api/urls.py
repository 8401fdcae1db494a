from django.urls import path

from workflow_api.core.api import views

urlpatterns = [
    path("auth/login/", views.LoginView.as_view(), name="auth-login"),
    path("auth/refresh/", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me/", views.MeView.as_view(), name="auth-me"),
    path("inbound-failures/", views.InboundFailureListView.as_view(), name="inbound-failure-list"),
    path("inbound-failures/<int:pk>/", views.InboundFailureDetailView.as_view(), name="inbound-failure-detail"),
]
