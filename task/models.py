"""Tasks and their items.

A Task is the work on one ticket, pinned to the workflow version it started
on (`workflow_version`), at one step of it at a time (`current_step_key`).
A TaskItem is one person's assignment on a step; its status changes are kept
in TaskItemHistory. The ticket owner (round-robin over the Ticket
Coordinator role) is a field of the task, not an item.
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
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, null=True, blank=True, related_name="tasks")
    workflow = models.ForeignKey("workflow.Workflow", on_delete=models.PROTECT, related_name="tasks")
    workflow_version = models.ForeignKey("workflow.WorkflowVersion", on_delete=models.PROTECT, related_name="tasks")
    current_step_key = models.SlugField(max_length=100)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    priority = models.CharField(max_length=8, default="medium")
    ticket_owner_id = models.BigIntegerField(null=True, blank=True, help_text="The auth service's user id.")
    ticket_owner_name = models.CharField(max_length=200, blank=True)
    target_resolution = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["workflow", "status"], name="task_workflow_status_idx"),
            models.Index(fields=["tenant", "status", "-id"], name="task_tenant_status_idx"),
            models.Index(fields=["tenant", "ticket_owner_id"], name="task_tenant_owner_idx"),
        ]
        constraints = [
            # One task per ticket: intake and allocation may run twice, the task exists once.
            models.UniqueConstraint(
                fields=["ticket"], condition=models.Q(ticket__isnull=False), name="task_one_per_ticket"
            ),
        ]

    def __str__(self) -> str:
        return f"Task {self.pk} ({self.status})"


class ItemStatus(models.TextChoices):
    NEW = "new", "New"
    IN_PROGRESS = "in_progress", "In progress"
    ON_HOLD = "on_hold", "On hold"
    RESOLVED = "resolved", "Resolved"
    REASSIGNED = "reassigned", "Reassigned"
    ESCALATED = "escalated", "Escalated"
    BREACHED = "breached", "Breached"


ACTIVE_ITEM_STATUSES = (ItemStatus.NEW, ItemStatus.IN_PROGRESS, ItemStatus.ON_HOLD)


class ItemOrigin(models.TextChoices):
    SYSTEM = "system", "System"
    TRANSFERRED = "transferred", "Transferred"
    ESCALATION = "escalation", "Escalation"
    MANUAL = "manual", "Manual"


class TaskItem(TenantOwned):
    """One person's assignment on one step of a task."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="items")
    step_key = models.SlugField(max_length=100)
    step_name = models.CharField(max_length=200)
    role = models.ForeignKey("role.Role", on_delete=models.PROTECT, related_name="+")
    role_name = models.CharField(max_length=200)
    user_id = models.BigIntegerField(help_text="The auth service's user id.")
    user_name = models.CharField(max_length=200, blank=True)
    user_email = models.EmailField(max_length=254, blank=True)
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.NEW)
    origin = models.CharField(max_length=16, choices=ItemOrigin.choices, default=ItemOrigin.SYSTEM)
    assigned_on = models.DateTimeField(default=timezone.now)
    target_resolution = models.DateTimeField(null=True, blank=True)
    acted_on = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    assignment_reason = models.JSONField(
        default=dict, blank=True, help_text="Why this member was chosen: strategy, position, load."
    )

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["tenant", "user_id", "status"], name="task_item_user_status_idx"),
            models.Index(fields=["task", "step_key"], name="task_item_task_step_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.step_name}: {self.user_name or self.user_id} ({self.status})"


class TaskItemHistory(TenantOwned):
    """Every status an item has had, with when and who."""

    item = models.ForeignKey(TaskItem, on_delete=models.CASCADE, related_name="history")
    status = models.CharField(max_length=16, choices=ItemStatus.choices)
    at = models.DateTimeField(default=timezone.now)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["item", "at", "id"]

    def __str__(self) -> str:
        return f"{self.item_id}: {self.status} at {self.at:%Y-%m-%d %H:%M}"
