"""The audit trail: one append-only, hash-chained table.

Rows are only ever inserted (by `audit.services.audit_append`, inside the
transaction of the change they record). UPDATE, DELETE and TRUNCATE are
refused by database triggers (migration 0002), whoever issues them. Each row
carries the hash of the previous row of its tenant and its own hash over its
content, so `manage.py audit_verify` can find the first row that was altered
or removed.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from workflow_api.core.models import TenantOwned


class AuditAction(models.TextChoices):
    """The codes an event may carry. `audit_append` refuses any other.

    The column itself has no `choices`, on purpose: every app adds codes here
    as it grows, and a code is a Python-level contract, so adding one must not
    need a migration of the audit table.
    """

    ROLE_CREATED = "role.created", "Role created"
    ROLE_UPDATED = "role.updated", "Role updated"
    ROLE_DELETED = "role.deleted", "Role deleted"
    ROLE_MEMBER_ADDED = "role_member.added", "Role member added"
    ROLE_MEMBER_UPDATED = "role_member.updated", "Role member updated"
    ROLE_MEMBER_REMOVED = "role_member.removed", "Role member removed"
    USER_LOGGED_IN = "auth.logged_in", "Logged in"
    USER_LOGGED_OUT = "auth.logged_out", "Logged out"
    OUTBOX_RETRIED = "outbox.retried", "Outbox message retried"
    WORKFLOW_CREATED = "workflow.created", "Workflow created"
    WORKFLOW_UPDATED = "workflow.updated", "Workflow updated"
    WORKFLOW_GRAPH_REPLACED = "workflow.graph_replaced", "Workflow graph replaced"
    WORKFLOW_PUBLISHED = "workflow.published", "Workflow published"
    WORKFLOW_PAUSED = "workflow.paused", "Workflow paused"
    WORKFLOW_RETIRED = "workflow.retired", "Workflow retired"
    WORKFLOW_DELETED = "workflow.deleted", "Workflow deleted"
    WORKFLOW_IMPORTED = "workflow.imported", "Workflow imported"
    TASK_MIGRATED = "task.migrated", "Task moved to another workflow version"
    TASK_CREATED = "task.created", "Task created"
    TICKET_RECEIVED = "ticket.received", "Ticket received"
    TICKET_UPDATED = "ticket.updated", "Ticket updated by the helpdesk"
    TICKET_UNALLOCATED = "ticket.unallocated", "Ticket could not be allocated"
    TASK_TRANSITIONED = "task.transitioned", "Task moved to another step"
    TASK_COMPLETED = "task.completed", "Task completed"
    TASK_ITEM_STATUS_CHANGED = "task.item_status_changed", "Task item status changed"
    TASK_ESCALATED = "task.escalated", "Task escalated"
    TASK_TRANSFERRED = "task.transferred", "Task transferred"
    TASK_ASSIGNED = "task.assigned", "Task assigned manually"
    TASK_CANCELLED = "task.cancelled", "Task cancelled"


class AppendOnlyError(Exception):
    """Raised by the ORM shortcuts that would change or delete a stored event."""


class AuditEvent(TenantOwned):
    SYSTEM_ACTOR = "system"

    actor_id = models.BigIntegerField(
        null=True, blank=True, help_text="The auth service's user id; empty for the system."
    )
    actor_name = models.CharField(max_length=200)
    action = models.CharField(max_length=64, db_index=True, help_text="An AuditAction code.")
    target_type = models.CharField(max_length=64, db_index=True)
    target_id = models.CharField(max_length=64, db_index=True)
    target_display = models.CharField(max_length=255, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [old, new]}")
    correlation_id = models.CharField(max_length=200, blank=True, help_text="The request or message id.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "id"], name="audit_tenant_chain_idx")]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target_type}:{self.target_id}"
        )

    @property
    def action_label(self) -> str:
        """The human label of the code; a code no longer in AuditAction is shown as is."""
        try:
            return str(AuditAction(self.action).label)
        except ValueError:
            return self.action

    @property
    def is_system(self) -> bool:
        return self.actor_id is None and self.actor_name == self.SYSTEM_ACTOR

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The triggers would refuse the UPDATE anyway; failing here names the
        # mistake in Python. force_insert keeps Django from ever trying an
        # UPDATE first when a caller sets the primary key by hand.
        if not self._state.adding:
            raise AppendOnlyError("Audit events cannot be changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events cannot be deleted.")
