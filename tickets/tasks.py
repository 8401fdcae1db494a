"""Celery entry points for the helpdesk's ticket messages (wire names from messages.md)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tickets.models import Ticket
from tickets.services import IntakeMessage, IntakeResult, ticket_allocate, tickets_intake, tickets_waiting
from workflow_api.core.batches import BatchedInboundJob
from workflow_api.core.inbound import Delivery, InboundJob, InvalidMessage


def _receive_tickets(job: BatchedInboundJob, deliveries: list[Delivery]) -> list[str | InvalidMessage]:
    """A batch of receive_ticket messages through tickets_intake (one transaction); an outcome per message."""
    messages: list[IntakeMessage | InvalidMessage] = []
    for delivery in deliveries:
        try:
            messages.append(IntakeMessage(payload=delivery.argument("ticket_data"), message_id=delivery.id))
        except InvalidMessage as exc:
            messages.append(exc)
    results = iter(tickets_intake(messages=[m for m in messages if isinstance(m, IntakeMessage)], counter=job.name))
    return [message if isinstance(message, InvalidMessage) else _outcome(next(results)) for message in messages]


def _outcome(result: IntakeResult | InvalidMessage) -> str | InvalidMessage:
    return result if isinstance(result, InvalidMessage) else result.received.outcome.value


@shared_task(bind=True, base=BatchedInboundJob, name="tickets.tasks.receive_ticket", batch_run=_receive_tickets)
def receive_ticket_job(self: BatchedInboundJob, ticket_data: Any) -> str:
    """Store or refresh a helpdesk ticket (queue TICKET_TASKS_PRODUCTION), allocate it if it is not yet, count it.

    Idempotent (tickets.services.tickets_intake): a worker takes these
    messages in batches (workflow_api.core.batches), one transaction per
    batch, acknowledged after it commits; a re-delivery refreshes the one
    stored ticket and never starts a second task, and two workers receiving
    the same ticket at once end in one ticket and one task. A bad message is
    recorded and dead-lettered, alone. This body is the one-message path
    (`apply`, in-process runs).
    """
    (outcome,) = _receive_tickets(self, [Delivery.of_request(self.request, self.name, (ticket_data,), {})])
    if isinstance(outcome, InvalidMessage):
        raise outcome
    return outcome


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
