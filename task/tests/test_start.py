"""Starting a ticket's task (task.services.task_start_for_tickets through tickets.services.ticket_allocate)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from audit.models import AuditAction, AuditEvent
from task.models import ItemOrigin, ItemStatus, Task, TaskItem, TaskItemHistory, TaskStatus
from task.tests.factories import Setup, TaskItemFactory, members, published_setup
from tickets.models import AllocationState, TicketPriority
from tickets.services import AllocationOutcome, ticket_allocate
from workflow_api.core.models import OutboxMessage

ASSIGNMENT = "notifications.send_assignment_notification"


def test_a_matching_ticket_starts_one_task_pinned_to_the_current_version_at_the_start_step(setup: Setup):
    ticket = setup.ticket()

    result = ticket_allocate(ticket_id=ticket.pk)

    assert result.outcome == AllocationOutcome.ALLOCATED
    task = Task.objects.get(ticket=ticket)
    assert result.task_id == task.pk
    assert task.workflow_id == setup.workflow.pk
    assert task.workflow_version_id == setup.workflow.current_version_id
    assert task.current_step_key == "triage"
    assert task.status == TaskStatus.PENDING
    ticket.refresh_from_db()
    assert ticket.allocation_state == AllocationState.ALLOCATED
    assert ticket.allocation_reason is None


def test_ticket_owners_rotate_over_the_ticket_coordinator_role(setup: Setup):
    owners = []
    for _ in range(3):
        ticket = setup.ticket()
        ticket_allocate(ticket_id=ticket.pk)
        task = Task.objects.get(ticket=ticket)
        owners.append((task.ticket_owner_id, task.ticket_owner_name))

    assert owners == [(901, "User 901"), (902, "User 902"), (901, "User 901")]


def test_an_empty_ticket_coordinator_role_leaves_the_task_without_an_owner(tenant):
    setup = published_setup(tenant=tenant, coordinator_users=())
    ticket = setup.ticket()

    ticket_allocate(ticket_id=ticket.pk)

    task = Task.objects.get(ticket=ticket)
    assert task.ticket_owner_id is None
    assert task.ticket_owner_name == ""


def test_start_step_items_rotate_round_robin_with_the_reason_and_a_new_history_row(setup: Setup):
    items = []
    for _ in range(4):
        ticket = setup.ticket()
        ticket_allocate(ticket_id=ticket.pk)
        items.append(TaskItem.objects.get(task__ticket=ticket))

    assert [item.user_id for item in items] == [101, 102, 103, 101]
    first = items[0]
    assert (first.step_key, first.step_name, first.role_id, first.role_name) == (
        "triage",
        "Triage",
        setup.owner.pk,
        setup.owner.name,
    )
    assert (first.status, first.origin) == (ItemStatus.NEW, ItemOrigin.SYSTEM)
    assert [item.assignment_reason for item in items] == [
        {"strategy": "round_robin", "position": position, "load": None} for position in (0, 1, 2, 0)
    ]
    history = list(TaskItemHistory.objects.filter(item=first).values_list("status", "at"))
    assert history == [(ItemStatus.NEW, first.assigned_on)]


def test_a_step_asking_for_two_assignees_gets_two_items(tenant):
    setup = published_setup(tenant=tenant, start_count=2)
    ticket = setup.ticket()

    ticket_allocate(ticket_id=ticket.pk)

    assert sorted(TaskItem.objects.filter(task__ticket=ticket).values_list("user_id", flat=True)) == [101, 102]
    assert OutboxMessage.objects.filter(task_name=ASSIGNMENT).count() == 2


def test_least_loaded_picks_the_member_with_the_fewest_open_items(tenant):
    setup = published_setup(tenant=tenant, start_strategy="least_loaded")
    busy = setup.ticket()
    ticket_allocate(ticket_id=busy.pk)  # 101 (all at 0, rotation order)
    task = Task.objects.get(ticket=busy)
    # 102 carries two open items, 103 one closed one: 103 has the fewest open items after 101.
    TaskItemFactory.create(task=task, role=setup.owner, user_id=102)
    TaskItemFactory.create(task=task, role=setup.owner, user_id=102)
    TaskItemFactory.create(task=task, role=setup.owner, user_id=101, status=ItemStatus.RESOLVED)
    TaskItemFactory.create(task=task, role=setup.owner, user_id=103, status=ItemStatus.RESOLVED)

    ticket = setup.ticket()
    ticket_allocate(ticket_id=ticket.pk)

    item = TaskItem.objects.get(task__ticket=ticket)
    assert item.user_id == 103
    assert item.assignment_reason == {"strategy": "least_loaded", "position": 2, "load": 0}


@pytest.mark.parametrize(
    ("priority", "sla_field"),
    [
        (TicketPriority.LOW, "sla_low"),
        (TicketPriority.MEDIUM, "sla_medium"),
        (TicketPriority.HIGH, "sla_high"),
        (TicketPriority.URGENT, "sla_urgent"),
    ],
)
def test_sla_targets_follow_the_priority_and_the_step_weights(tenant, priority, sla_field):
    setup = published_setup(
        tenant=tenant,
        weights=(Decimal("1"), Decimal("2"), Decimal("1")),
        sla_low=timedelta(hours=40),
        sla_medium=timedelta(hours=20),
        sla_high=timedelta(hours=8),
        sla_urgent=timedelta(hours=4),
    )
    ticket = setup.ticket(priority=priority)

    ticket_allocate(ticket_id=ticket.pk)

    sla = getattr(setup.workflow, sla_field)
    task = Task.objects.get(ticket=ticket)
    assert task.target_resolution == ticket.received_at + sla
    item = task.items.get()
    # triage weighs 1 of 1 + 2 + 1.
    assert item.target_resolution == item.assigned_on + sla / 4


def test_a_critical_helpdesk_ticket_gets_the_urgent_sla(setup: Setup):
    from tickets.services import ticket_receive
    from tickets.tests.factories import ticket_data

    received = ticket_receive(
        payload=ticket_data(
            priority="Critical",
            department=setup.workflow.department,
            category=setup.workflow.category,
            sub_category=setup.workflow.sub_category,
        )
    )
    ticket_allocate(ticket_id=received.ticket.pk)

    task = Task.objects.get(ticket=received.ticket)
    assert task.target_resolution == received.ticket.received_at + setup.workflow.sla_urgent


def test_all_zero_weights_give_every_step_an_equal_share(tenant):
    setup = published_setup(tenant=tenant, weights=(Decimal(0), Decimal(0), Decimal(0)))
    ticket = setup.ticket()

    ticket_allocate(ticket_id=ticket.pk)

    item = TaskItem.objects.get(task__ticket=ticket)
    assert item.target_resolution == item.assigned_on + setup.workflow.sla_medium / 3


def test_starting_writes_one_task_created_audit_row_and_one_assignment_notification_per_item(tenant):
    setup = published_setup(tenant=tenant, start_count=2)
    ticket = setup.ticket(subject="Laptop screen flickers")

    ticket_allocate(ticket_id=ticket.pk)

    task = Task.objects.get(ticket=ticket)
    created = AuditEvent.objects.filter(action=AuditAction.TASK_CREATED)
    assert list(created.values_list("target_type", "target_id")) == [("task", str(task.pk))]
    assert created.get().changes["assignees"] == [None, [101, 102]]
    notifications = OutboxMessage.objects.filter(task_name=ASSIGNMENT).order_by("id")
    assert [message.args for message in notifications] == [
        [101, ticket.ticket_number, "Laptop screen flickers", setup.owner.name],
        [102, ticket.ticket_number, "Laptop screen flickers", setup.owner.name],
    ]
    assert all(message.kwargs == {} for message in notifications)


def test_a_ticket_no_workflow_matches_is_kept_unallocated_with_the_reason(setup: Setup):
    ticket = setup.ticket()
    ticket.category = "Something nobody handles"
    ticket.save()

    result = ticket_allocate(ticket_id=ticket.pk)

    assert result.outcome == AllocationOutcome.UNALLOCATED
    ticket.refresh_from_db()
    assert ticket.allocation_state == AllocationState.UNALLOCATED
    assert "no published workflow matches" in (ticket.allocation_reason or "")
    assert not Task.objects.exists()
    assert not OutboxMessage.objects.filter(task_name=ASSIGNMENT).exists()
    assert AuditEvent.objects.filter(action=AuditAction.TICKET_UNALLOCATED).count() == 1


def test_a_ticket_whose_start_role_is_empty_is_kept_unallocated_and_allocating_again_changes_nothing(tenant):
    setup = published_setup(tenant=tenant, owner_users=())
    ticket = setup.ticket()

    first = ticket_allocate(ticket_id=ticket.pk)
    second = ticket_allocate(ticket_id=ticket.pk)

    assert (first.outcome, second.outcome) == (AllocationOutcome.UNALLOCATED,) * 2
    ticket.refresh_from_db()
    assert ticket.allocation_reason == f"nobody active holds the role {setup.owner.name!r} (step 'Triage')"
    assert not Task.objects.exists()
    assert not TaskItem.objects.exists()
    assert not OutboxMessage.objects.filter(task_name=ASSIGNMENT).exists()
    # The unchanged reason is not audited twice.
    assert AuditEvent.objects.filter(action=AuditAction.TICKET_UNALLOCATED).count() == 1


def test_an_allocated_ticket_is_left_alone(setup: Setup):
    ticket = setup.ticket()
    ticket_allocate(ticket_id=ticket.pk)
    outbox = OutboxMessage.objects.count()

    again = ticket_allocate(ticket_id=ticket.pk)

    assert again.outcome == AllocationOutcome.ALREADY_ALLOCATED
    assert Task.objects.filter(ticket=ticket).count() == 1
    assert TaskItem.objects.count() == 1
    assert OutboxMessage.objects.count() == outbox
    assert AuditEvent.objects.filter(action=AuditAction.TASK_CREATED).count() == 1


def test_a_member_joining_later_lets_the_waiting_ticket_start(tenant):
    setup = published_setup(tenant=tenant, owner_users=())
    ticket = setup.ticket()
    ticket_allocate(ticket_id=ticket.pk)
    members(setup.owner, 150)

    result = ticket_allocate(ticket_id=ticket.pk)

    assert result.outcome == AllocationOutcome.ALLOCATED
    assert TaskItem.objects.get(task__ticket=ticket).user_id == 150
