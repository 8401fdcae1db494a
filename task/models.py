"""Tasks: one per ticket, pinned to the workflow version it started on.

The task engine (items, assignment, transitions) arrives with its own issue;
what is here is what workflow versioning and migration need.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from workflow_api.core.models import TenantOwned


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    ON_HOLD = "on_hold", "On hold"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATUSES = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.ON_HOLD)


class Task(TenantOwned):
    workflow = models.ForeignKey("workflow.Workflow", on_delete=models.PROTECT, related_name="tasks")
    workflow_version = models.ForeignKey("workflow.WorkflowVersion", on_delete=models.PROTECT, related_name="tasks")
    current_step_key = models.SlugField(max_length=100)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["workflow", "status"], name="task_workflow_status_idx")]

    def __str__(self) -> str:
        return f"Task {self.pk} ({self.status})"
