"""Celery entry points for the helpdesk's ticket messages (wire names from messages.md)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tickets.models import Ticket
from tickets.services import ticket_allocate, ticket_receive, tickets_waiting
from workflow_api.core.inbound import InboundJob, InvalidMessage, message_count


@shared_task(bind=True, base=InboundJob, name="tickets.tasks.receive_ticket")
def receive_ticket_job(self: InboundJob, ticket_data: Any) -> str:
    """Store or refresh a helpdesk ticket (queue TICKET_TASKS_PRODUCTION) and count how it ended.

    Idempotent (tickets.services.ticket_receive): a re-delivery refreshes the
    one stored ticket, an identical one changes nothing but the delivery
    count, and two workers receiving the same ticket at once end in one row.
    A bad message raises InvalidMessage, which InboundJob records and
    dead-letters. A ticket not yet allocated is then allocated, in its own
    transaction: the stored ticket is never lost to an allocation problem, and
    a redelivery after a crash in between allocates it then.
    """
    result = ticket_receive(payload=ticket_data, message_id=self.request.id or "")
    message_count(task_name=self.name, outcome=result.outcome)
    if not result.ticket.is_allocated:
        allocation = ticket_allocate(ticket_id=result.ticket.pk)
        message_count(task_name=self.name, outcome=allocation.outcome)
    return result.outcome.value


@shared_task(bind=True, base=InboundJob, name="tickets.tasks.create_task_for_ticket")
def create_task_for_ticket_job(self: InboundJob, ticket_pk: Any) -> str:
    """Re-run allocation for a stored ticket (queue TICKET_TASKS_PRODUCTION). Idempotent.

    An allocated ticket is left alone; otherwise the task is started or the
    reason it cannot be is recorded on the ticket. A ticket_pk that is not an
    integer or names no ticket is an InvalidMessage (recorded, dead-lettered).
    """
    if isinstance(ticket_pk, bool) or not isinstance(ticket_pk, int):
        raise InvalidMessage(f"ticket_pk must be an integer, got {ticket_pk!r}", code="invalid_ticket_pk")
    try:
        allocation = ticket_allocate(ticket_id=ticket_pk)
    except Ticket.DoesNotExist as exc:
        raise InvalidMessage(f"no ticket with pk {ticket_pk}", code="unknown_ticket") from exc
    message_count(task_name=self.name, outcome=allocation.outcome)
    return allocation.outcome.value


@shared_task(name="core.tickets_allocate_waiting", ignore_result=True, time_limit=300, soft_time_limit=270)
def allocate_waiting_tickets_job(tenant_id: int | None = None) -> int:
    """Try again to allocate every ticket still waiting (after a publish or a new role member). Idempotent."""
    allocated = 0
    for ticket_id in tickets_waiting(tenant_id=tenant_id):
        if ticket_allocate(ticket_id=ticket_id).outcome == "allocated":
            allocated += 1
    return allocated
