"""Ticket intake (tickets.services.ticket_receive) read as a specification."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from audit.models import AuditAction, AuditEvent
from task.models import Task, TaskItem
from task.tests.factories import published_setup
from tickets import services
from tickets.models import AllocationState, Ticket, TicketPriority
from tickets.services import InvalidTicket, ReceiveOutcome, ticket_receive
from tickets.tasks import receive_ticket_job
from tickets.tests.factories import example_ticket, ticket_data
from workflow_api.core.inbound import InvalidMessage
from workflow_api.core.models import InboundFailure, MessageCounter, OutboxMessage
from workflow_api.testing.concurrency import in_lockstep

pytestmark = pytest.mark.django_db


def _audit(action: AuditAction) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(target_type="ticket", action=action).order_by("id"))


# --- Storing what the helpdesk sent --------------------------------------------------


def test_the_helpdesks_example_ticket_is_stored_verbatim_with_its_routing_fields(tenant):
    payload = example_ticket()

    result = ticket_receive(payload=payload, message_id="hdts-1")

    ticket = Ticket.objects.get()
    assert result.created is True
    assert result.outcome is ReceiveOutcome.CREATED
    assert ticket.snapshot == example_ticket()
    assert ticket.tenant == tenant
    assert (ticket.ticket_number, ticket.subject, ticket.status) == (
        "TX20270304114522",
        "Projector in room B2 shows no signal",
        "Open",
    )
    assert (ticket.department, ticket.category, ticket.sub_category) == ("IT Department", "IT Support", "Hardware")
    assert ticket.priority == TicketPriority.URGENT
    assert ticket.source_updated_at is not None
    assert ticket.source_updated_at.isoformat() == "2027-03-04T11:52:09.880000+00:00"
    assert (ticket.allocation_state, ticket.allocation_reason, ticket.delivery_count) == (
        AllocationState.PENDING,
        None,
        1,
    )


def test_receiving_a_ticket_writes_one_audit_row_by_the_system_with_the_message_id(tenant):
    ticket_receive(payload=example_ticket(), message_id="hdts-1")

    (event,) = _audit(AuditAction.TICKET_RECEIVED)
    assert (event.target_id, event.actor_name, event.correlation_id) == ("TX20270304114522", "system", "hdts-1")
    assert event.changes["priority"] == [None, "urgent"]
    assert event.changes["allocation_state"] == [None, "pending"]


def test_unknown_keys_are_kept_in_the_snapshot(tenant):
    ticket_receive(payload=ticket_data(ticket_number="TX1", warranty={"until": "2029-01-01"}, x_flag=True))

    snapshot = Ticket.objects.get().snapshot
    assert snapshot["warranty"] == {"until": "2029-01-01"}
    assert snapshot["x_flag"] is True


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        ({"ticket_number": "TX42"}, "TX42"),
        ({"ticket_number": "  TX42  "}, "TX42"),
        ({"ticket_number": None, "ticket_id": "HD-7"}, "HD-7"),
        ({"ticket_number": "", "ticket_id": "HD-7"}, "HD-7"),
        ({"ticket_number": "   ", "ticket_id": None, "id": 5190}, "5190"),
        ({"original_ticket_id": 88}, "88"),
        ({"ticket_id": 0}, "0"),
    ],
)
def test_the_ticket_number_falls_back_in_the_contracts_order_and_is_written_back(tenant, identity, expected):
    payload = example_ticket()
    for key in services.TICKET_NUMBER_KEYS:
        payload.pop(key, None)
    payload.update(identity)

    ticket_receive(payload=payload)

    ticket = Ticket.objects.get()
    assert ticket.ticket_number == expected
    assert ticket.snapshot["ticket_number"] == expected
    assert {key: ticket.snapshot[key] for key in identity if key != "ticket_number"} == {
        key: value for key, value in identity.items() if key != "ticket_number"
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Low", TicketPriority.LOW),
        ("MEDIUM", TicketPriority.MEDIUM),
        ("high", TicketPriority.HIGH),
        (" High ", TicketPriority.HIGH),
        ("Critical", TicketPriority.URGENT),
        ("critical", TicketPriority.URGENT),
        ("Urgent", TicketPriority.URGENT),
        ("URGENT", TicketPriority.URGENT),
        (None, TicketPriority.MEDIUM),
    ],
)
def test_priorities_are_normalised_from_the_helpdesks_values(tenant, given, expected):
    ticket_receive(payload=ticket_data(priority=given))

    ticket = Ticket.objects.get()
    assert ticket.priority == expected
    assert ticket.snapshot["priority"] == given


def test_a_missing_priority_means_medium(tenant):
    payload = ticket_data()
    del payload["priority"]

    ticket_receive(payload=payload)

    assert Ticket.objects.get().priority == TicketPriority.MEDIUM


def test_the_same_ticket_number_in_two_tenants_is_two_tickets(tenant, other_tenant):
    ticket_receive(payload=ticket_data(ticket_number="TX1"))
    ticket_receive(payload=ticket_data(ticket_number="TX1", tenant="acme"))

    assert sorted(Ticket.objects.values_list("tenant__slug", flat=True)) == sorted([tenant.slug, "acme"])


# --- Malformed messages --------------------------------------------------------------


def _without_identity() -> dict[str, Any]:
    payload = ticket_data()
    for key in services.TICKET_NUMBER_KEYS:
        payload.pop(key, None)
    return payload


MALFORMED = {
    "a string": ("not a dict", "ticket_data"),
    "a list": ([ticket_data()], "ticket_data"),
    "null": (None, "ticket_data"),
    "no ticket number at all": (_without_identity(), "ticket_number"),
    "only blank ticket numbers": (
        {**_without_identity(), "ticket_number": "", "ticket_id": "  ", "id": None},
        "ticket_number",
    ),
    "a boolean ticket number": (ticket_data(ticket_number=True), "ticket_number"),
    "a float ticket number": (ticket_data(ticket_number=12.5), "ticket_number"),
    "an object as ticket_id": ({**_without_identity(), "ticket_id": {"n": 1}}, "ticket_id"),
    "a boolean id": ({**_without_identity(), "id": False}, "id"),
    "a too long ticket number": (ticket_data(ticket_number="T" * 65), "ticket_number"),
    "a numeric department": (ticket_data(department=5), "department"),
    "a list as category": (ticket_data(category=["IT"]), "category"),
    "a boolean sub_category": (ticket_data(sub_category=True), "sub_category"),
    "a too long department": (ticket_data(department="D" * 201), "department"),
    "an unknown priority": (ticket_data(priority="Highest"), "priority"),
    "a numeric priority": (ticket_data(priority=3), "priority"),
    "a numeric status": (ticket_data(status=1), "status"),
    "an object as subject": (ticket_data(subject={"text": "x"}), "subject"),
    "a date in words": (ticket_data(submit_date="yesterday"), "submit_date"),
    "a date as a number": (ticket_data(update_date=20270304), "update_date"),
    "an impossible date": (ticket_data(scheduled_date="2027-13-45"), "scheduled_date"),
    "not a number in a form field": (ticket_data(requested_budget=float("nan")), "ticket_data"),
    "a NUL character": (ticket_data(description="broken\x00text"), "ticket_data"),
}


@pytest.mark.parametrize(("payload", "field"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_ticket_is_refused_and_nothing_is_written(tenant, payload, field):
    with pytest.raises(InvalidTicket) as raised:
        ticket_receive(payload=payload, message_id="bad")

    assert isinstance(raised.value, InvalidMessage)
    assert raised.value.code == "invalid_ticket"
    assert field in raised.value.errors
    assert field in str(raised.value)
    assert not Ticket.objects.exists()
    assert not AuditEvent.objects.exists()


def test_every_bad_field_is_reported_at_once(tenant):
    with pytest.raises(InvalidTicket) as raised:
        ticket_receive(payload=ticket_data(priority="soon", department=1, update_date="later"))

    assert set(raised.value.errors) == {"priority", "department", "update_date"}


def test_a_ticket_for_an_unknown_tenant_is_refused(tenant):
    with pytest.raises(InvalidMessage) as raised:
        ticket_receive(payload=ticket_data(tenant="nowhere"))

    assert raised.value.code == "unknown_tenant"
    assert not Ticket.objects.exists()


def test_dates_may_be_days_date_times_without_offset_or_null(tenant):
    ticket_receive(
        payload=ticket_data(scheduled_date="2027-03-08", submit_date="2027-03-04T11:45:22", update_date=None)
    )

    assert Ticket.objects.get().source_updated_at is None


# --- Re-deliveries ---------------------------------------------------------------------


def test_a_redelivered_update_refreshes_the_one_ticket_and_audits_what_changed(tenant):
    first = ticket_receive(payload=ticket_data(ticket_number="TX9", priority="Low", description="Old text"))
    changed = ticket_data(
        ticket_number="TX9",
        priority="High",
        description="New text",
        status="Open",
        update_date="2027-03-05T08:00:00+00:00",
    )

    result = ticket_receive(payload=changed, message_id="hdts-2")

    ticket = Ticket.objects.get()
    assert (result.created, result.outcome) == (False, ReceiveOutcome.UPDATED)
    assert result.ticket.pk == first.ticket.pk == ticket.pk
    assert ticket.snapshot == changed
    assert ticket.priority == TicketPriority.HIGH
    assert ticket.delivery_count == 2
    assert ticket.received_at == first.ticket.received_at
    assert ticket.updated_at > first.ticket.updated_at
    (event,) = _audit(AuditAction.TICKET_UPDATED)
    assert event.correlation_id == "hdts-2"
    assert event.changes["priority"] == ["low", "high"]
    assert event.changes["ticket_data.description"] == ["Old text", "New text"]
    assert "ticket_data.subject" not in event.changes


def test_an_identical_redelivery_only_counts_the_delivery_and_writes_no_audit_row(tenant):
    payload = example_ticket()
    ticket_receive(payload=payload)

    result = ticket_receive(payload=example_ticket())
    again = ticket_receive(payload=example_ticket())

    assert (result.created, result.outcome, again.outcome) == (
        False,
        ReceiveOutcome.DUPLICATE,
        ReceiveOutcome.DUPLICATE,
    )
    assert Ticket.objects.get().delivery_count == 3
    assert AuditEvent.objects.count() == 1


def test_a_delivery_older_than_the_stored_snapshot_does_not_overwrite_it(tenant):
    newer = ticket_data(ticket_number="TX5", status="Open", update_date="2027-03-05T10:00:00+00:00", subject="New")
    older = {**newer, "update_date": "2027-03-05T09:00:00+00:00", "subject": "Old"}
    ticket_receive(payload=newer)

    result = ticket_receive(payload=older)

    ticket = Ticket.objects.get()
    assert result.outcome is ReceiveOutcome.STALE
    assert (ticket.subject, ticket.snapshot["subject"], ticket.delivery_count) == ("New", "New", 2)
    assert not _audit(AuditAction.TICKET_UPDATED)


def test_a_redelivery_leaves_the_allocation_to_the_task_engine(tenant):
    ticket_receive(payload=ticket_data(ticket_number="TX3"))
    Ticket.objects.filter(ticket_number="TX3").update(
        allocation_state=AllocationState.UNALLOCATED, allocation_reason="No matching workflow"
    )

    ticket_receive(payload=ticket_data(ticket_number="TX3", subject="Changed"))

    ticket = Ticket.objects.get()
    assert (ticket.allocation_state, ticket.allocation_reason) == (AllocationState.UNALLOCATED, "No matching workflow")


def test_an_intake_costs_a_small_bounded_number_of_queries(tenant, django_assert_max_num_queries):
    payload = example_ticket()
    payload["dynamic_data"] = {f"field_{n}": n for n in range(200)}
    payload["attachments"] = [{"id": n, "file_name": f"f{n}.png"} for n in range(50)]

    # Tenant, insert (or insert-nothing, lock-read and update), the audit chain (lock, tip, insert).
    with django_assert_max_num_queries(7):
        ticket_receive(payload=payload)
    with django_assert_max_num_queries(9):
        ticket_receive(payload={**payload, "subject": "Changed"})
    # A duplicate: tenant, insert-nothing, lock-read, count the delivery.
    with django_assert_max_num_queries(6):
        ticket_receive(payload={**payload, "subject": "Changed"})


# --- Two workers at once (PostgreSQL) ---------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_receiving_the_same_new_tickets_at_once_store_each_once(postgres, tenant):
    rounds = 5
    outcomes: list[ReceiveOutcome] = []
    payloads = [ticket_data(ticket_number=f"TXRACE{n}") for n in range(rounds)]

    in_lockstep(payloads, lambda payload: outcomes.append(ticket_receive(payload=payload).outcome))

    assert sorted(outcomes) == sorted([ReceiveOutcome.CREATED, ReceiveOutcome.DUPLICATE] * rounds)
    assert Ticket.objects.count() == rounds
    assert set(Ticket.objects.values_list("delivery_count", flat=True)) == {2}
    assert len(_audit(AuditAction.TICKET_RECEIVED)) == rounds


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_taking_the_same_matching_ticket_at_once_end_with_one_ticket_and_one_task(postgres, tenant):
    setup = published_setup(tenant=tenant, owner_users=(101, 102), coordinator_users=(901, 902))
    workflow = setup.workflow
    routing = {"department": workflow.department, "category": workflow.category, "sub_category": workflow.sub_category}
    rounds = 5
    payloads = [ticket_data(ticket_number=f"TXBOTH{n}", **routing) for n in range(rounds)]

    in_lockstep(payloads, lambda payload: receive_ticket_job.apply(args=[payload], throw=True))

    assert Ticket.objects.count() == rounds
    assert set(Ticket.objects.values_list("delivery_count", "allocation_state")) == {(2, AllocationState.ALLOCATED)}
    assert Task.objects.count() == rounds
    assert sorted(TaskItem.objects.values_list("task__ticket__ticket_number", flat=True)) == sorted(
        payload["ticket_number"] for payload in payloads
    )
    assert OutboxMessage.objects.count() == rounds
    assert not InboundFailure.objects.exists()
    counted = dict(
        MessageCounter.objects.filter(task_name="tickets.tasks.receive_ticket").values_list("outcome", "count")
    )
    assert counted == {"created": rounds, "duplicate": rounds, "allocated": rounds}
    # Round-robin stayed fair across the two workers: 5 items over 2 members, 5 owners over 2 coordinators.
    assert sorted(Counter(TaskItem.objects.values_list("user_id", flat=True)).values()) == [2, 3]
    assert sorted(Counter(Task.objects.values_list("ticket_owner_id", flat=True)).values()) == [2, 3]
