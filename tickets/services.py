"""Ticket intake: `ticket_intake` (receive, then allocate, one transaction), fed by the queue and the API.

The helpdesk re-sends a ticket every time it is saved while `Open`, so
duplicates are normal and delivery is at-least-once and unordered
(messages.md). The rules:

- Validation first, nothing written on failure. `ticket_data` must be a JSON
  object with a usable ticket number (`ticket_number`, else `ticket_id`, else
  `id`, else `original_ticket_id`; a missing, null or blank value falls
  through to the next key, an integer becomes its decimal string, any other
  type — a bool, a float, a list — is a malformed message). The routing keys,
  `status`, `subject` are strings or null, `priority` is one of the
  contract's values in any letter case, dates are ISO-8601 or null. A problem
  raises `InvalidTicket` (an `InvalidMessage` with code `invalid_ticket` and
  per-field errors). Unknown keys are kept, never rejected.
- The snapshot is the message verbatim, with the chosen number written back
  as `ticket_number`.
- Upsert by (tenant, ticket number): the first delivery creates the ticket
  (`allocation_state` pending: the task engine allocates it) and writes
  TICKET_RECEIVED; a later one with a different snapshot refreshes snapshot
  and fields and writes TICKET_UPDATED with the changed fields; one with an
  identical snapshot only counts the delivery (no audit row). A delivery
  whose `update_date` is older than the stored snapshot's is stale (it was
  overtaken by a newer save) and only counted too, so out-of-order
  deliveries converge on the newest save.
- Concurrency: the row is locked while it is compared and changed. A new
  ticket is inserted with INSERT ... ON CONFLICT DO NOTHING: two workers
  inserting the same number race on the unique constraint (tenant,
  ticket_number), PostgreSQL makes the second wait for the first's commit
  and then insert nothing, and the second continues as an update of the
  first's row (locked with select_for_update). Exactly one row, no savepoint.
- Bounded cost: a delivery is a handful of queries whatever the payload.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.models import AuditAction
from audit.services import Actor, audit_append, audit_batch, diff
from tickets.models import AllocationState, Ticket, TicketPriority
from workflow_api.core.inbound import InvalidMessage, message_count
from workflow_api.core.models import Tenant
from workflow_api.core.tenancy import UnknownTenant, tenant_from_slug

INVALID_TICKET = "invalid_ticket"
UNKNOWN_TENANT = "unknown_tenant"

# The contract's order of identity keys (messages.md `ticket_data`).
TICKET_NUMBER_KEYS = ("ticket_number", "ticket_id", "id", "original_ticket_id")
ROUTING_KEYS = ("department", "category", "sub_category")
# Every date field of the contract's ticket_data; each is ISO-8601 or null.
DATE_KEYS = (
    "scheduled_date",
    "expected_return_date",
    "performance_start_date",
    "performance_end_date",
    "submit_date",
    "update_date",
    "date_completed",
)
PRIORITIES = {
    "low": TicketPriority.LOW,
    "medium": TicketPriority.MEDIUM,
    "high": TicketPriority.HIGH,
    "critical": TicketPriority.URGENT,
    "urgent": TicketPriority.URGENT,
}

_NUMBER_MAX_LENGTH = Ticket._meta.get_field("ticket_number").max_length or 64
_ROUTING_MAX_LENGTH = 200
_STATUS_MAX_LENGTH = Ticket._meta.get_field("status").max_length or 64
# Columns copied out of the snapshot; their changes are audited by name.
_COLUMNS = ("subject", "status", "priority", "department", "category", "sub_category")


class InvalidTicket(InvalidMessage):
    """A `ticket_data` that can never be stored as it is; `errors` maps each bad field to its problem."""

    def __init__(self, errors: dict[str, str], *, tenant: Tenant | None = None) -> None:
        message = "; ".join(f"{field}: {problem}" for field, problem in errors.items())
        super().__init__(f"invalid ticket_data: {message}", code=INVALID_TICKET, tenant=tenant)
        self.errors = errors


class ReceiveOutcome(StrEnum):
    """How a delivery ended; the inbound job counts these (MessageCounter)."""

    CREATED = "created"
    UPDATED = "updated"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(frozen=True)
class ReceiveResult:
    ticket: Ticket
    created: bool
    outcome: ReceiveOutcome


@dataclass(frozen=True)
class TicketData:
    ticket_number: str
    snapshot: dict[str, Any]
    subject: str
    status: str
    priority: TicketPriority
    department: str
    category: str
    sub_category: str
    source_updated_at: datetime | None

    def columns(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _COLUMNS}


# --- Reading the message -----------------------------------------------------------


def _ticket_number(payload: dict[str, Any], errors: dict[str, str]) -> str | None:
    for key in TICKET_NUMBER_KEYS:
        value = payload.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, bool) or not isinstance(value, int | str):
            errors[key] = f"must be a string or an integer, got {value!r}"
            return None
        number = str(value).strip()
        if len(number) > _NUMBER_MAX_LENGTH:
            errors[key] = f"is longer than {_NUMBER_MAX_LENGTH} characters"
            return None
        return number
    errors["ticket_number"] = "no usable ticket number (ticket_number, ticket_id, id or original_ticket_id)"
    return None


def _text(payload: dict[str, Any], key: str, errors: dict[str, str], *, max_length: int | None = None) -> str:
    value = payload.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[key] = f"must be a string or null, got {value!r}"
        return ""
    value = value.strip()
    if max_length is not None and len(value) > max_length:
        errors[key] = f"is longer than {max_length} characters"
    return value


def _priority(payload: dict[str, Any], errors: dict[str, str]) -> TicketPriority:
    value = payload.get("priority")
    if value is None:
        return TicketPriority.MEDIUM
    if isinstance(value, str) and value.strip().lower() in PRIORITIES:
        return PRIORITIES[value.strip().lower()]
    errors["priority"] = f"must be one of Low, Medium, High, Critical, Urgent, got {value!r}"
    return TicketPriority.MEDIUM


def _moment(payload: dict[str, Any], key: str, errors: dict[str, str]) -> datetime | None:
    """An ISO-8601 date-time (one without an offset is UTC) or date (midnight UTC), or null."""
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value)
            if parsed is None and (day := parse_date(value)) is not None:
                parsed = datetime(day.year, day.month, day.day, tzinfo=UTC)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)
    errors[key] = f"must be an ISO-8601 date or date-time string or null, got {value!r}"
    return None


def _storable(payload: dict[str, Any], errors: dict[str, str]) -> None:
    # PostgreSQL's jsonb refuses NaN/Infinity and the NUL character; refusing
    # them here makes such a message an invalid_ticket, not a database error.
    try:
        text = json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        errors["ticket_data"] = f"is not storable JSON: {exc}"
        return
    if "\\u0000" in text:
        errors["ticket_data"] = "contains a NUL character, which cannot be stored"


def _tenant(payload: dict[str, Any]) -> Tenant:
    slug = payload.get("tenant")
    if slug is not None and not isinstance(slug, str):
        raise InvalidMessage(f"tenant must be a string (a tenant slug), got {slug!r}", code=UNKNOWN_TENANT)
    try:
        return tenant_from_slug(slug)
    except UnknownTenant as exc:
        raise InvalidMessage(str(exc), code=UNKNOWN_TENANT) from exc


def ticket_data_parse(payload: Any, *, tenant: Tenant | None = None) -> TicketData:
    """Validate a `ticket_data`; raises InvalidTicket listing every bad field. Reads nothing from the database."""
    if not isinstance(payload, dict):
        raise InvalidTicket({"ticket_data": f"must be a JSON object, got {type(payload).__name__}"}, tenant=tenant)
    errors: dict[str, str] = {}
    number = _ticket_number(payload, errors)
    routing = {key: _text(payload, key, errors, max_length=_ROUTING_MAX_LENGTH) for key in ROUTING_KEYS}
    status = _text(payload, "status", errors, max_length=_STATUS_MAX_LENGTH)
    subject = _text(payload, "subject", errors)
    priority = _priority(payload, errors)
    dates = {key: _moment(payload, key, errors) for key in DATE_KEYS}
    _storable(payload, errors)
    if errors or number is None:
        raise InvalidTicket(errors, tenant=tenant)
    return TicketData(
        ticket_number=number,
        snapshot={**payload, "ticket_number": number},
        subject=subject,
        status=status,
        priority=priority,
        source_updated_at=dates["update_date"],
        **routing,
    )


# --- The use case ------------------------------------------------------------------


def ticket_receive(
    *, payload: Any, message_id: str = "", tenant: Tenant | None = None, actor: Actor | None = None
) -> ReceiveResult:
    """Store or refresh one helpdesk ticket; idempotent (see the module docstring). Does not allocate.

    `tenant` is the API caller's; a queued message names its tenant with an
    optional `tenant` slug (absent: the default tenant). `actor` defaults to
    the system. Raises InvalidTicket (or InvalidMessage `unknown_tenant`)
    before writing anything.
    """
    data = ticket_data_parse(payload, tenant=tenant)
    if tenant is None:
        tenant = _tenant(payload)
    with transaction.atomic():
        return _receive(tenant=tenant, data=data, actor=actor or Actor.system(), message_id=message_id)


@dataclass(frozen=True)
class IntakeResult:
    received: ReceiveResult
    allocation: AllocationResult | None

    @property
    def outcomes(self) -> list[str]:
        """What the inbound job counts: the delivery's outcome, then the allocation's if it ran."""
        return [self.received.outcome.value, *([self.allocation.outcome.value] if self.allocation else [])]


def ticket_intake(
    *,
    payload: Any,
    message_id: str = "",
    tenant: Tenant | None = None,
    actor: Actor | None = None,
    counter: str | None = None,
) -> IntakeResult:
    """Receive a ticket and, if it is not allocated yet, allocate it: one transaction. Idempotent.

    What `POST /api/v1/tickets/` does, and `receive_ticket` for each batch of
    messages (`tickets_intake`). Receiving is `ticket_receive`'s rules;
    allocation is `ticket_allocate`'s, on the ticket row this transaction
    already holds locked. Everything — the ticket, the task, its items,
    history, audit and outbox rows and, with `counter` (the inbound task
    name), the MessageCounter rows — commits together or not at all, so a
    worker killed anywhere leaves either nothing (the message is redelivered
    and starts over) or everything (a redelivery is a duplicate and
    allocates nothing more). A ticket that cannot be allocated is stored
    anyway, marked `unallocated` with the reason.

    The order keeps the locks other workers wait for short: the rows of
    this ticket first, then (in allocation) the round-robin pointers, then,
    in one batch at the end, the tenant's audit chain and the counters.
    Raises InvalidTicket / InvalidMessage before writing anything.
    """
    (result,) = tickets_intake(
        messages=[IntakeMessage(payload=payload, message_id=message_id)], tenant=tenant, actor=actor, counter=counter
    )
    if isinstance(result, InvalidMessage):
        raise result
    return result


@dataclass(frozen=True)
class IntakeMessage:
    """One delivered `ticket_data` and the id of the message that carried it."""

    payload: Any
    message_id: str = ""


def tickets_intake(
    *,
    messages: Sequence[IntakeMessage],
    tenant: Tenant | None = None,
    actor: Actor | None = None,
    counter: str | None = None,
) -> list[IntakeResult | InvalidMessage]:
    """`ticket_intake` for a batch of messages, in ONE transaction: a result, or the InvalidMessage, for each.

    A message that is not valid is returned as its InvalidTicket /
    InvalidMessage and writes nothing; the others commit together, with
    what each would have done alone: deliveries of one ticket in the batch
    apply in their order (the first creates it, the next refresh or count
    as duplicates), and each ticket not yet allocated is allocated once,
    from its newest delivery, after all of them (`_allocate_many_locked`:
    a bounded number of queries for the whole batch). Tickets are locked
    in (tenant, number) order, so two batches sharing tickets cannot
    deadlock. Raises whatever the database raises; the transaction has
    then rolled back and nothing of the batch is written.
    """
    actor = actor or Actor.system()
    results: list[IntakeResult | InvalidMessage | None] = [None] * len(messages)
    tenants: dict[Any, Tenant] = {}
    valid: list[tuple[int, Tenant, TicketData, str]] = []
    for index, message in enumerate(messages):
        try:
            data = ticket_data_parse(message.payload, tenant=tenant)
            owner = tenant or _tenant_of(message.payload, tenants)
        except InvalidMessage as exc:
            results[index] = exc
            continue
        valid.append((index, owner, data, message.message_id))
    # Stable: deliveries of one ticket keep their order.
    valid.sort(key=lambda entry: (entry[1].pk, entry[2].ticket_number))
    if valid:
        with transaction.atomic():
            with audit_batch():
                received = {
                    index: _receive(tenant=owner, data=data, actor=actor, message_id=message_id)
                    for index, owner, data, message_id in valid
                }
                # Each ticket still to allocate once, as its last delivery in the batch left it.
                last_delivery = {received[index].ticket.pk: index for index, *_ in valid}
                waiting = [
                    (index, received[index].ticket)
                    for index in last_delivery.values()
                    if not received[index].ticket.is_allocated
                ]
                allocations = _allocate_many_locked(
                    tickets=[ticket for _, ticket in waiting],
                    actor=actor,
                    correlation_ids={ticket.pk: messages[index].message_id for index, ticket in waiting},
                )
                allocated = {index: allocation for (index, _), allocation in zip(waiting, allocations, strict=True)}
            for index, *_ in valid:
                results[index] = IntakeResult(received=received[index], allocation=allocated.get(index))
            if counter is not None:
                outcomes = [outcome for r in results if isinstance(r, IntakeResult) for outcome in r.outcomes]
                message_count(task_name=counter, outcome=outcomes)
    return [result for result in results if result is not None]


def _tenant_of(payload: dict[str, Any], known: dict[Any, Tenant]) -> Tenant:
    """`_tenant`, remembering the tenants a batch has looked up already."""
    slug = payload.get("tenant")
    if not isinstance(slug, str | None):
        return _tenant(payload)
    if slug not in known:
        known[slug] = _tenant(payload)
    return known[slug]


def _receive(*, tenant: Tenant, data: TicketData, actor: Actor, message_id: str) -> ReceiveResult:
    """The upsert, inside the caller's transaction; the ticket row stays locked until it ends."""
    now = timezone.now()
    ticket = Ticket(
        tenant=tenant,
        ticket_number=data.ticket_number,
        snapshot=data.snapshot,
        source_updated_at=data.source_updated_at,
        allocation_state=AllocationState.PENDING,
        received_at=now,
        updated_at=now,
        last_delivered_at=now,
        **data.columns(),
    )
    if _insert_if_absent(ticket):
        _audit(
            tenant=tenant,
            ticket=ticket,
            action=AuditAction.TICKET_RECEIVED,
            changes=diff({}, {"allocation_state": ticket.allocation_state, **data.columns()}),
            actor=actor,
            message_id=message_id,
        )
        return ReceiveResult(ticket=ticket, created=True, outcome=ReceiveOutcome.CREATED)
    stored = _locked(tenant=tenant, number=data.ticket_number)
    if stored is None:  # pragma: no cover - the row conflicted, so it exists, and tickets are never deleted
        raise RuntimeError(f"ticket {data.ticket_number!r} conflicted on insert but cannot be read")
    return _refresh(tenant=tenant, ticket=stored, data=data, now=now, actor=actor, message_id=message_id)


def _insert_if_absent(ticket: Ticket) -> bool:
    """INSERT the ticket unless its (tenant, number) exists: True, with `ticket.pk` set, if this inserted it.

    One statement, no savepoint: ON CONFLICT DO NOTHING makes a concurrent
    insert of the same number wait for the other transaction, and insert
    nothing once that one commits (the caller then reads and locks its row).
    The new row is locked by this transaction until it ends.
    """
    fields = [field for field in Ticket._meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(field.column)) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    values = [field.get_db_prep_save(field.pre_save(ticket, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(Ticket._meta.db_table)} ({columns}) VALUES ({placeholders}) "
            f"ON CONFLICT ({quote('tenant_id')}, {quote('ticket_number')}) DO NOTHING RETURNING {quote('id')}",
            values,
        )
        row = cursor.fetchone()
    if row is None:
        return False
    ticket.pk = row[0]
    ticket._state.adding = False
    return True


def _locked(*, tenant: Tenant, number: str) -> Ticket | None:
    return Ticket.objects.select_for_update(no_key=True).filter(tenant=tenant, ticket_number=number).first()


def _refresh(
    *, tenant: Tenant, ticket: Ticket, data: TicketData, now: datetime, actor: Actor, message_id: str
) -> ReceiveResult:
    stale = (
        data.source_updated_at is not None
        and ticket.source_updated_at is not None
        and data.source_updated_at < ticket.source_updated_at
    )
    if stale or data.snapshot == ticket.snapshot:
        # The row is locked, so counting in Python cannot lose a concurrent delivery.
        ticket.delivery_count += 1
        ticket.last_delivered_at = now
        ticket.save(update_fields=["delivery_count", "last_delivered_at"])
        outcome = ReceiveOutcome.STALE if stale else ReceiveOutcome.DUPLICATE
        return ReceiveResult(ticket=ticket, created=False, outcome=outcome)

    before = {**ticket_columns(ticket), **_prefixed(ticket.snapshot)}
    for name, value in data.columns().items():
        setattr(ticket, name, value)
    ticket.snapshot = data.snapshot
    ticket.source_updated_at = data.source_updated_at
    ticket.updated_at = now
    ticket.last_delivered_at = now
    ticket.delivery_count += 1
    ticket.save(
        update_fields=[
            *_COLUMNS,
            "snapshot",
            "source_updated_at",
            "updated_at",
            "last_delivered_at",
            "delivery_count",
        ]
    )
    _audit(
        tenant=tenant,
        ticket=ticket,
        action=AuditAction.TICKET_UPDATED,
        changes=diff(before, {**data.columns(), **_prefixed(data.snapshot)}),
        actor=actor,
        message_id=message_id,
    )
    return ReceiveResult(ticket=ticket, created=False, outcome=ReceiveOutcome.UPDATED)


def ticket_columns(ticket: Ticket) -> dict[str, Any]:
    return {name: getattr(ticket, name) for name in _COLUMNS}


def _prefixed(snapshot: dict[str, Any]) -> dict[str, Any]:
    # Snapshot keys are audited as `ticket_data.<key>`, apart from the columns of the same name.
    return {f"ticket_data.{key}": value for key, value in snapshot.items()}


def _audit(
    *, tenant: Tenant, ticket: Ticket, action: AuditAction, changes: dict[str, list[Any]], actor: Actor, message_id: str
) -> None:
    audit_append(
        tenant=tenant,
        actor=actor,
        action=action,
        target_type="ticket",
        target_id=ticket.ticket_number,
        target_display=ticket.subject[:255],
        changes=changes,
        correlation_id=message_id or None,
    )


class AllocationOutcome(StrEnum):
    ALLOCATED = "allocated"
    ALREADY_ALLOCATED = "already_allocated"
    UNALLOCATED = "unallocated"


@dataclass(frozen=True)
class AllocationResult:
    ticket: Ticket
    outcome: AllocationOutcome
    task_id: int | None = None


def ticket_allocate(*, ticket_id: int, actor: Actor | None = None, counter: str | None = None) -> AllocationResult:
    """Start the ticket's task, or record why it cannot be started yet. Idempotent.

    One transaction: the ticket row is locked, so two workers allocating the
    same ticket end with one task. An allocated ticket is left alone. A ticket
    that cannot be allocated (no matching workflow, nobody holds the step's
    role) is kept, marked `unallocated` with the reason, and allocated again
    later (`tickets_allocate_waiting`). With `counter` (an inbound task
    name) the outcome is counted in the same transaction. Raises
    Ticket.DoesNotExist.
    """
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=ticket_id)
        (result,) = _allocate_many_locked(tickets=[ticket], actor=actor or Actor.system())
        if counter is not None:
            message_count(task_name=counter, outcome=result.outcome.value)
    return result


def _allocate_many_locked(
    *, tickets: Sequence[Ticket], actor: Actor, correlation_ids: Mapping[int, str] | None = None
) -> list[AllocationResult]:
    """Allocation of tickets (each once) the caller's transaction has locked, in one go; results in order.

    The tasks start together (task.services.task_start_for_tickets); the
    allocated tickets are marked in one UPDATE; each refused one is marked
    `unallocated` with its reason (and audited) unless it already was, for
    the same reason. `correlation_ids` (ticket pk -> message id) marks their
    audit rows with the message that caused them.
    """
    from task.services import NotAllocatable, task_start_for_tickets

    correlation_ids = correlation_ids or {}
    results: dict[int, AllocationResult] = {}
    pending = []
    for ticket in tickets:
        if ticket.allocation_state == AllocationState.ALLOCATED:
            results[ticket.pk] = AllocationResult(ticket=ticket, outcome=AllocationOutcome.ALREADY_ALLOCATED)
        else:
            pending.append(ticket)
    # Refusals only read, so no savepoint is needed.
    starts = task_start_for_tickets(tickets=pending, actor=actor, correlation_ids=correlation_ids) if pending else []
    allocated = []
    for ticket, started in zip(pending, starts, strict=True):
        if isinstance(started, NotAllocatable):
            _mark_unallocated(ticket, started.reason, actor=actor, correlation_id=correlation_ids.get(ticket.pk))
            results[ticket.pk] = AllocationResult(ticket=ticket, outcome=AllocationOutcome.UNALLOCATED)
        else:
            allocated.append(ticket)
            results[ticket.pk] = AllocationResult(
                ticket=ticket, outcome=AllocationOutcome.ALLOCATED, task_id=started.task.pk
            )
    if allocated:
        Ticket.objects.filter(pk__in=[ticket.pk for ticket in allocated]).update(
            allocation_state=AllocationState.ALLOCATED, allocation_reason=None
        )
        for ticket in allocated:
            ticket.allocation_state = AllocationState.ALLOCATED
            ticket.allocation_reason = None
    return [results[ticket.pk] for ticket in tickets]


def _mark_unallocated(ticket: Ticket, reason: str, *, actor: Actor, correlation_id: str | None) -> None:
    if (ticket.allocation_state, ticket.allocation_reason) == (AllocationState.UNALLOCATED, reason):
        return
    before = {"allocation_state": ticket.allocation_state, "allocation_reason": ticket.allocation_reason}
    ticket.allocation_state = AllocationState.UNALLOCATED
    ticket.allocation_reason = reason
    ticket.save(update_fields=["allocation_state", "allocation_reason"])
    audit_append(
        tenant=ticket.tenant,
        actor=actor,
        action=AuditAction.TICKET_UNALLOCATED,
        target_type="ticket",
        target_id=ticket.ticket_number,
        target_display=ticket.subject[:255],
        changes=diff(before, {"allocation_state": ticket.allocation_state, "allocation_reason": reason}),
        correlation_id=correlation_id or None,
    )


def tickets_waiting(*, tenant_id: int | None = None, after_id: int = 0, limit: int = 500) -> list[int]:
    """Ids of tickets not yet allocated (pending or unallocated), oldest first, from after `after_id`."""
    waiting = Ticket.objects.exclude(allocation_state=AllocationState.ALLOCATED).filter(id__gt=after_id).order_by("id")
    if tenant_id is not None:
        waiting = waiting.filter(tenant_id=tenant_id)
    return list(waiting.values_list("id", flat=True)[:limit])


def tickets_wake_waiting(*, tenant: Tenant) -> bool:
    """Queue another allocation try for the tenant's waiting tickets, after the caller commits.

    Called inside the transaction of a change that may let them through (a
    workflow published, a member joining a role). Goes through the outbox,
    so it happens only if that change commits. Returns whether anything waits.
    """
    from workflow_api.core.messaging import INTERNAL_QUEUE
    from workflow_api.core.outbox import outbox_enqueue

    if not Ticket.objects.filter(tenant=tenant).exclude(allocation_state=AllocationState.ALLOCATED).exists():
        return False
    outbox_enqueue(
        task_name="core.tickets_allocate_waiting", kwargs={"tenant_id": tenant.pk}, queue=INTERNAL_QUEUE, tenant=tenant
    )
    return True
