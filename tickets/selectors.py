"""Reads of tickets for the API and the admin; always scoped to one tenant."""

from __future__ import annotations

from django.db.models import QuerySet

from tickets.models import Ticket
from workflow_api.core.models import Tenant


def ticket_list(*, tenant: Tenant) -> QuerySet[Ticket]:
    """The tenant's tickets, newest first; the API's filters narrow this further."""
    return Ticket.objects.for_tenant(tenant).order_by("-received_at", "-id")


def ticket_get(*, tenant: Tenant, ticket_number: str) -> Ticket | None:
    return Ticket.objects.for_tenant(tenant).filter(ticket_number=ticket_number).first()
