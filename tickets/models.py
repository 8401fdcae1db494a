"""Tickets received from the helpdesk (messages.md `ticket_data`).

A ticket keeps the helpdesk's whole message verbatim as its `snapshot` (the
contract's many form fields are for display and must survive untouched) and
copies out only what the engine filters and routes on. `allocation_state`
starts `pending`: intake only stores the ticket; the task engine matches a
workflow and starts the ticket's task, then marks it `allocated`, or
`unallocated` with a reason when nothing matches or nobody holds the role.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from workflow_api.core.models import TenantOwned


class TicketPriority(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class AllocationState(models.TextChoices):
    PENDING = "pending", "Waiting for allocation"
    ALLOCATED = "allocated", "Allocated"
    UNALLOCATED = "unallocated", "Unallocated"


class Ticket(TenantOwned):
    ticket_number = models.CharField(max_length=64, help_text="The helpdesk's number, e.g. TX20251111322614.")
    snapshot = models.JSONField(
        default=dict, help_text="The whole ticket_data as last received, with ticket_number written back."
    )
    subject = models.TextField(blank=True)
    status = models.CharField(max_length=64, blank=True, help_text="The helpdesk's status (Open, …).")
    priority = models.CharField(max_length=8, choices=TicketPriority.choices, default=TicketPriority.MEDIUM)
    department = models.CharField(max_length=200, blank=True)
    category = models.CharField(max_length=200, blank=True)
    sub_category = models.CharField(max_length=200, blank=True)
    allocation_state = models.CharField(max_length=16, choices=AllocationState.choices, default=AllocationState.PENDING)
    # Null, not "": the API contract says `allocation_reason: str|null`, null meaning "no problem".
    allocation_reason = models.TextField(null=True, blank=True, help_text="Why the ticket could not be allocated.")  # noqa: DJ001
    source_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="The helpdesk's update_date of the stored snapshot."
    )
    received_at = models.DateTimeField(default=timezone.now, help_text="First delivery.")
    updated_at = models.DateTimeField(default=timezone.now, help_text="Last change of the snapshot.")
    last_delivered_at = models.DateTimeField(default=timezone.now)
    delivery_count = models.PositiveIntegerField(default=1, help_text="Deliveries received, duplicates included.")

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "ticket_number"], name="ticket_unique_number"),
        ]
        indexes = [
            models.Index(fields=["tenant", "-received_at"], name="ticket_tenant_received_idx"),
            models.Index(fields=["tenant", "allocation_state"], name="ticket_tenant_allocation_idx"),
            models.Index(fields=["tenant", "status"], name="ticket_tenant_status_idx"),
            models.Index(fields=["tenant", "department"], name="ticket_tenant_department_idx"),
            models.Index(fields=["tenant", "priority"], name="ticket_tenant_priority_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_number} {self.subject}".strip()

    @property
    def is_allocated(self) -> bool:
        return self.allocation_state == AllocationState.ALLOCATED
