"""Task actions; the reads are in read_urls."""

from django.urls import path

from task.api import action_views

urlpatterns = [
    path("<int:pk>/transition/", action_views.TaskTransitionView.as_view(), name="task-transition"),
    path("<int:pk>/status/", action_views.TaskStatusView.as_view(), name="task-status"),
    path("<int:pk>/escalate/", action_views.TaskEscalateView.as_view(), name="task-escalate"),
    path("<int:pk>/transfer/", action_views.TaskTransferView.as_view(), name="task-transfer"),
    path("<int:pk>/assign/", action_views.TaskAssignView.as_view(), name="task-assign"),
    path("<int:pk>/cancel/", action_views.TaskCancelView.as_view(), name="task-cancel"),
]
