"""Tickets for people: find a ticket, see what the helpdesk sent, spot the unallocated ones.

Read-only: tickets are written by intake (the helpdesk's messages) and by the
task engine's allocation; an edit here would be overwritten by the next
delivery.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from tickets.models import AllocationState, Ticket
from workflow_api.core.admin_mixins import ReadOnlyAdminMixin


class NeedsAllocationFilter(admin.SimpleListFilter):
    title = "needs allocation"
    parameter_name = "needs_allocation"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("unallocated", "Unallocated tickets"),
            ("waiting", "Not allocated yet (pending or unallocated)"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "unallocated":
            return queryset.filter(allocation_state=AllocationState.UNALLOCATED)
        if self.value() == "waiting":
            return queryset.exclude(allocation_state=AllocationState.ALLOCATED)
        return queryset


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "ticket_number",
        "subject",
        "status",
        "priority",
        "department",
        "category",
        "allocation_state",
        "allocation_reason",
        "received_at",
        "delivery_count",
    ]
    list_filter = [NeedsAllocationFilter, "allocation_state", "priority", "status", "department", "tenant"]
    search_fields = ["ticket_number", "subject"]
    list_select_related = ["tenant"]
    date_hierarchy = "received_at"
    fields = (
        "tenant",
        "ticket_number",
        "subject",
        "status",
        "priority",
        "department",
        "category",
        "sub_category",
        "allocation_state",
        "allocation_reason",
        "received_at",
        "updated_at",
        "source_updated_at",
        "last_delivered_at",
        "delivery_count",
        "ticket_data",
    )
    readonly_fields = fields

    @admin.display(description="ticket_data (as last received)")
    def ticket_data(self, ticket: Ticket) -> str:
        return format_html(
            '<pre style="white-space: pre-wrap">{}</pre>', json.dumps(ticket.snapshot, indent=2, ensure_ascii=False)
        )
