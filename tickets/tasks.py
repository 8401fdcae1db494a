"""Celery entry points for the helpdesk's ticket messages (wire names from messages.md)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tickets.models import Ticket
from tickets.services import ticket_allocate, ticket_intake, tickets_waiting
from workflow_api.core.inbound import InboundJob, InvalidMessage


@shared_task(bind=True, base=InboundJob, name="tickets.tasks.receive_ticket")
def receive_ticket_job(self: InboundJob, ticket_data: Any) -> str:
    """Store or refresh a helpdesk ticket (queue TICKET_TASKS_PRODUCTION), allocate it if it is not yet, count it.

    Idempotent (tickets.services.ticket_intake): one transaction, acknowledged
    after it commits; a re-delivery refreshes the one stored ticket and never
    starts a second task, and two workers receiving the same ticket at once
    end in one ticket and one task. A bad message raises InvalidMessage,
    which InboundJob records and dead-letters.
    """
    result = ticket_intake(payload=ticket_data, message_id=self.request.id or "", counter=self.name)
    return result.received.outcome.value


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
        allocation = ticket_allocate(ticket_id=ticket_pk, counter=self.name)
    except Ticket.DoesNotExist as exc:
        raise InvalidMessage(f"no ticket with pk {ticket_pk}", code="unknown_ticket") from exc
    return allocation.outcome.value


@shared_task(name="core.tickets_allocate_waiting", ignore_result=True, time_limit=300, soft_time_limit=270)
def allocate_waiting_tickets_job(tenant_id: int | None = None) -> int:
    """Try again to allocate every ticket still waiting (after a publish or a new role member). Idempotent.

    Walks the waiting tickets in id order, a page at a time, to the end:
    tickets that still cannot be allocated never hide the ones behind them.
    """
    allocated = 0
    after = 0
    while page := tickets_waiting(tenant_id=tenant_id, after_id=after):
        for ticket_id in page:
            if ticket_allocate(ticket_id=ticket_id).outcome == "allocated":
                allocated += 1
        after = page[-1]
    return allocated
