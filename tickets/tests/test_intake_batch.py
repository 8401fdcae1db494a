"""tickets_intake: a batch of messages in one transaction ends as the same messages taken one at a time."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditAction, AuditEvent
from task.models import Task, TaskItem
from task.tests.factories import Setup, published_setup
from tickets import services
from tickets.models import AllocationState, Ticket
from tickets.services import IntakeMessage, IntakeResult, InvalidTicket, tickets_intake
from tickets.tests.factories import ticket_data
from workflow_api.core.inbound import InvalidMessage
from workflow_api.core.models import MessageCounter, OutboxMessage, Tenant
from workflow_api.testing.concurrency import in_lockstep

COUNTER = "tickets.tasks.receive_ticket"


def _matching(setup: Setup, **overrides: Any) -> dict[str, Any]:
    workflow = setup.workflow
    return ticket_data(
        department=workflow.department, category=workflow.category, sub_category=workflow.sub_category, **overrides
    )


def _intake(*payloads: Any) -> list[IntakeResult | InvalidMessage]:
    return tickets_intake(
        messages=[IntakeMessage(payload=p, message_id=f"msg-{i}") for i, p in enumerate(payloads)], counter=COUNTER
    )


def _counts() -> dict[str, int]:
    return dict(MessageCounter.objects.filter(task_name=COUNTER).values_list("outcome", "count"))


def _owners_and_assignees() -> list[tuple[int | None, list[int]]]:
    return [
        (task.ticket_owner_id, sorted(task.items.values_list("user_id", flat=True)))
        for task in Task.objects.order_by("ticket__ticket_number")
    ]


def test_a_batch_stores_each_ticket_once_allocates_it_once_and_returns_each_bad_message_as_its_error(tenant):
    setup = published_setup(tenant=tenant)
    first, second = _matching(setup), _matching(setup)

    results = _intake(first, second, first, _matching(setup, priority="Whenever"), ["not", "a", "dict"])

    assert [r.received.outcome if isinstance(r, IntakeResult) else type(r) for r in results] == [
        "created",
        "created",
        "duplicate",
        InvalidTicket,
        InvalidTicket,
    ]
    assert Ticket.objects.count() == 2
    assert Task.objects.count() == TaskItem.objects.count() == 2
    assert OutboxMessage.objects.filter(task_name="notifications.send_assignment_notification").count() == 2
    assert set(Ticket.objects.values_list("allocation_state", flat=True)) == {AllocationState.ALLOCATED}
    assert _counts() == {"created": 2, "duplicate": 1, "allocated": 2}


def test_a_batch_hands_out_the_rotation_exactly_as_one_ticket_at_a_time_would(tenant):
    setup = published_setup(tenant=tenant, owner_users=(101, 102, 103), coordinator_users=(901, 902))

    _intake(*[_matching(setup, ticket_number=f"RR{i}") for i in range(5)])

    assert _owners_and_assignees() == [
        (901, [101]),
        (902, [102]),
        (901, [103]),
        (902, [101]),
        (901, [102]),
    ]
    # The next ticket, alone, goes on from where the batch left the rotation.
    _intake(_matching(setup, ticket_number="RR5"))
    assert _owners_and_assignees()[-1] == (902, [103])


def test_a_step_asking_for_two_assignees_gets_the_next_two_for_each_ticket_of_a_batch(tenant):
    setup = published_setup(tenant=tenant, owner_users=(101, 102, 103), start_count=2)

    _intake(*[_matching(setup, ticket_number=f"PAIR{i}") for i in range(3)])

    assert [assignees for _, assignees in _owners_and_assignees()] == [[101, 102], [101, 103], [102, 103]]


def test_a_ticket_that_cannot_be_allocated_waits_while_the_rest_of_its_batch_is_allocated(tenant):
    setup = published_setup(tenant=tenant)

    results = _intake(_matching(setup), ticket_data(department="Nowhere"), _matching(setup))

    assert [r.allocation.outcome for r in results if isinstance(r, IntakeResult) and r.allocation] == [
        "allocated",
        "unallocated",
        "allocated",
    ]
    waiting = Ticket.objects.get(department="Nowhere")
    assert waiting.allocation_state == AllocationState.UNALLOCATED
    assert "no published workflow matches" in (waiting.allocation_reason or "")
    assert Task.objects.count() == 2


def test_a_new_ticket_delivered_twice_in_a_batch_keeps_the_newer_snapshot_and_starts_one_task(tenant):
    setup = published_setup(tenant=tenant)
    payload = _matching(setup)

    _intake(payload, {**payload, "subject": "Edited before it was even allocated"})

    ticket = Ticket.objects.get()
    assert ticket.subject == "Edited before it was even allocated"
    assert Task.objects.filter(ticket=ticket).count() == 1
    assert _counts() == {"created": 1, "updated": 1, "allocated": 1}
    ticket_rows = AuditEvent.objects.exclude(action=AuditAction.WORKFLOW_PUBLISHED).order_by("id")
    assert list(ticket_rows.values_list("action", "correlation_id")) == [
        (AuditAction.TICKET_RECEIVED, "msg-0"),
        (AuditAction.TICKET_UPDATED, "msg-1"),
        (AuditAction.TASK_CREATED, "msg-1"),
    ]


def test_each_audit_row_of_a_batch_names_the_message_that_caused_it(tenant):
    setup = published_setup(tenant=tenant)

    _intake(_matching(setup, ticket_number="A1"), _matching(setup, ticket_number="A2"))

    numbers = dict(Task.objects.values_list("pk", "ticket__ticket_number"))
    task_rows = AuditEvent.objects.filter(action=AuditAction.TASK_CREATED)
    by_ticket = {numbers[int(event.target_id)]: event.correlation_id for event in task_rows}
    assert by_ticket == {"A1": "msg-0", "A2": "msg-1"}


def test_a_batch_spanning_two_tenants_allocates_each_ticket_in_its_own_tenant(tenant, other_tenant: Tenant):
    ours = published_setup(tenant=tenant, owner_users=(101,))
    theirs = published_setup(tenant=other_tenant, owner_users=(501,), coordinator_users=(951,))

    _intake(_matching(ours, ticket_number="SAME"), {**_matching(theirs, ticket_number="SAME"), "tenant": "acme"})

    assert sorted(Task.objects.values_list("tenant__slug", "items__user_id", "ticket_owner_id")) == [
        ("acme", 501, 951),
        ("default", 101, 901),
    ]


def test_a_batch_commits_all_or_nothing(tenant, monkeypatch: pytest.MonkeyPatch):
    setup = published_setup(tenant=tenant)

    def counters_down(**_kwargs: Any) -> None:
        raise RuntimeError("counter table unavailable")

    # The counters are the batch's last statement: everything else is written by then.
    monkeypatch.setattr(services, "message_count", counters_down)
    with pytest.raises(RuntimeError, match="counter table unavailable"):
        _intake(_matching(setup), _matching(setup))

    assert (Ticket.objects.count(), Task.objects.count(), OutboxMessage.objects.count()) == (0, 0, 0)
    assert not AuditEvent.objects.filter(action=AuditAction.TICKET_RECEIVED).exists()


def _batch_queries(setup: Setup, size: int, prefix: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        _intake(*[_matching(setup, ticket_number=f"{prefix}{i}") for i in range(size)])
    return len(captured.captured_queries)


def test_a_batch_costs_one_query_per_ticket_more_than_a_fixed_number(tenant):
    setup = published_setup(tenant=tenant)
    # The first intake ever also creates the counters and rotation pointers.
    _batch_queries(setup, 1, "WARM")

    one, ten, forty = (_batch_queries(setup, size, f"Q{size}-") for size in (1, 10, 40))

    # Each ticket's own INSERT ... ON CONFLICT; everything else is once per batch.
    assert (ten - one, forty - ten) == (9, 30)
    assert Task.objects.count() == 1 + 1 + 10 + 40


@pytest.mark.django_db(transaction=True)
def test_two_batches_sharing_tickets_in_opposite_orders_end_with_one_task_per_ticket(tenant):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has one writer at a time, so nothing races")
    setup = published_setup(tenant=tenant, owner_users=(101, 102, 103, 104))
    payloads = [_matching(setup, ticket_number=f"RACE{i}") for i in range(8)]
    orders = iter([payloads, payloads[::-1]])

    in_lockstep([None], lambda _: _intake(*next(orders)))

    assert Ticket.objects.count() == Task.objects.count() == TaskItem.objects.count() == 8
    per_member = sorted(TaskItem.objects.values_list("user_id", flat=True))
    assert [per_member.count(user) for user in (101, 102, 103, 104)] == [2, 2, 2, 2]
    assert _counts() == {"created": 8, "duplicate": 8, "allocated": 8}


def test_least_loaded_in_a_batch_counts_what_the_batch_hands_out_as_it_goes(tenant):
    setup = published_setup(tenant=tenant, owner_users=(101, 102, 103), start_strategy="least_loaded")
    # 102 and 103 already hold one open item each; 101 holds none.
    _intake(_matching(setup, ticket_number="LL-A"), _matching(setup, ticket_number="LL-B"))
    _intake(_matching(setup, ticket_number="LL-C"))
    TaskItem.objects.filter(user_id=101).update(status="resolved")

    _intake(*[_matching(setup, ticket_number=f"LL-{i}") for i in range(6)])

    batch = TaskItem.objects.filter(task__ticket__ticket_number__regex=r"^LL-\d$").order_by(
        "task__ticket__ticket_number"
    )
    # One at a time: 101 (load 0), then the rotation among equals, each pick counting for the next.
    assert [(item.user_id, item.assignment_reason["load"]) for item in batch] == [
        (101, 0),
        (102, 1),
        (103, 1),
        (101, 1),
        (102, 2),
        (103, 2),
    ]
