from django.urls import path

from role.api import views

urlpatterns = [
    path("", views.RoleListView.as_view(), name="role-list"),
    path("round-robin/", views.RoundRobinView.as_view(), name="role-round-robin"),
    path("<int:role_id>/", views.RoleDetailView.as_view(), name="role-detail"),
    path("<int:role_id>/users/", views.RoleMemberListView.as_view(), name="role-users"),
]
