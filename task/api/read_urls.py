"""Task reads; the actions (transition, status, …) are in action_urls."""

from django.urls import path

from task.api import read_views

urlpatterns = [
    path("", read_views.TaskListView.as_view(), name="task-list"),
    path("mine/", read_views.TaskMineView.as_view(), name="task-mine"),
    path("owned/", read_views.TaskOwnedView.as_view(), name="task-owned"),
    path("<int:pk>/", read_views.TaskDetailView.as_view(), name="task-detail"),
    path("<int:pk>/history/", read_views.TaskHistoryView.as_view(), name="task-history"),
]
