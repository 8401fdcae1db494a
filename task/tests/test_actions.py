"""Acting on a task through task.services: transition (the contract's ordered checks), status, escalate,
transfer, assign, cancel, and what each leaves in the outbox and the audit trail."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditAction, AuditEvent
from audit.services import Actor
from role.models import Role, RoleMember, RoundRobinPointer
from role.tests.factories import RoleFactory
from step.models import Step
from task import services
from task.models import ItemOrigin, ItemStatus, Task, TaskItem, TaskItemHistory, TaskStatus
from task.rules import available_transitions, is_end_step, transitions_of
from task.tests.factories import Setup, members, published_setup
from tickets.models import Ticket
from tickets.services import ticket_allocate
from workflow.services import workflow_publish
from workflow_api.core.auth import TokenUser
from workflow_api.core.errors import ApiError
from workflow_api.core.models import OutboxMessage, Tenant

STATUS = "send_ticket_status"
ASSIGNMENT = "notifications.send_assignment_notification"
ESCALATION = "notifications.send_escalation_notification"
TRANSFER = "notifications.send_task_transfer_notification"


# --- helpers (test_actions_api imports them too) ---------------------------------------


def caller(tenant: Tenant, user_id: int, *, admin: bool = False, name: str = "") -> TokenUser:
    roles = frozenset({"tts:Admin"} if admin else {"tts:Agent"})
    return TokenUser(user_id=user_id, tenant=tenant, full_name=name or f"User {user_id}", roles=roles)


def started(setup: Setup) -> Task:
    """A ticket allocated into a task at Triage."""
    ticket = setup.ticket()
    ticket_allocate(ticket_id=ticket.pk)
    return Task.objects.select_related("ticket").get(ticket=ticket)


def the_ticket(task: Task) -> Ticket:
    assert task.ticket is not None
    return task.ticket


def owner_of(task: Task) -> int:
    assert task.ticket_owner_id is not None
    return task.ticket_owner_id


def tid(task: Task, name: str) -> int:
    """The id of the transition called `name` in the task's version."""
    return next(t["id"] for t in transitions_of(task.workflow_version) if t["name"] == name)


def holder(task: Task) -> int:
    """The user holding the (first) active item on the task's current step."""
    task.refresh_from_db()
    user_id = (
        TaskItem.objects.filter(task=task, step_key=task.current_step_key, status__in=["new", "in_progress", "on_hold"])
        .order_by("id")
        .values_list("user_id", flat=True)
        .first()
    )
    assert user_id is not None
    return user_id


def state(task: Task) -> tuple[Any, ...]:
    """Everything an action could change, to compare before and after a refused one."""
    return (
        Task.objects.filter(pk=task.pk).values("status", "current_step_key", "completed_at", "updated_at").get(),
        list(TaskItem.objects.filter(task=task).order_by("id").values_list("id", "status", "step_key", "user_id")),
        TaskItemHistory.objects.count(),
        list(OutboxMessage.objects.order_by("id").values_list("task_name", "args", "kwargs")),
        AuditEvent.objects.count(),
    )


def outbox(task_name: str) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(task_name=task_name).order_by("id"))


def refused(call: Any, code: str, status_code: int) -> ApiError:
    with pytest.raises(ApiError) as raised:
        call()
    assert (raised.value.error_code, raised.value.status_code) == (code, status_code)
    return raised.value


def with_escalation(setup: Setup, role: Role, *, step_key: str = "triage") -> None:
    """Give a step an escalation role and publish again: tasks started afterwards run on that version."""
    Step.objects.filter(workflow=setup.workflow, key=step_key).update(escalation_role=role)
    workflow_publish(workflow=setup.workflow, actor=Actor.system())
    setup.workflow.refresh_from_db()


def with_supervisors(setup: Setup, *user_ids: int, step_key: str = "triage") -> Role:
    """A "Supervisor" role holding `user_ids` (501 if none), made the escalation role of `step_key`."""
    supervisors = RoleFactory.create(tenant=setup.workflow.tenant, name="Supervisor")
    members(supervisors, *(user_ids or (501,)))
    with_escalation(setup, supervisors, step_key=step_key)
    return supervisors


# --- rules --------------------------------------------------------------------------------


def test_transition_ids_are_the_1_based_positions_in_the_versions_definition(setup: Setup):
    task = started(setup)

    transitions = transitions_of(task.workflow_version)

    assert transitions == [
        {"id": i, "name": t["name"], "from": t["from"], "to": t["to"]}
        for i, t in enumerate(task.workflow_version.definition["transitions"], start=1)
    ]
    assert sorted(t["name"] for t in transitions) == ["Approve", "Reject", "Submit"]
    assert is_end_step(task.workflow_version, "finalize")
    assert not is_end_step(task.workflow_version, "resolve")


def test_only_the_holder_of_an_active_item_on_the_current_step_sees_available_transitions(setup: Setup):
    task = started(setup)
    assignee = holder(task)

    assert available_transitions(task, assignee) == [
        {"id": tid(task, "Submit"), "name": "Submit", "to_step": "resolve"}
    ]
    assert available_transitions(task, 999) == []


# --- transition: the ordered checks, each refusing with nothing changed --------------------


def test_blank_notes_are_refused_first_even_for_a_task_the_caller_cannot_see(setup: Setup, other_tenant: Tenant):
    task = started(setup)
    before = state(task)

    for user in (caller(task.tenant, holder(task)), caller(other_tenant, 1, admin=True)):
        refused(
            lambda u=user: services.task_transition(
                task_id=task.pk, user=u, transition_id=tid(task, "Submit"), notes="  "
            ),
            "notes_required",
            400,
        )
    assert state(task) == before


def test_another_tenants_task_is_not_found_before_any_assignment_check(setup: Setup, other_tenant: Tenant):
    task = started(setup)
    before = state(task)

    refused(
        lambda: services.task_transition(
            task_id=task.pk, user=caller(other_tenant, holder(task), admin=True), transition_id=999, notes="go"
        ),
        "not_found",
        404,
    )
    assert state(task) == before


def test_a_caller_without_an_active_item_on_the_current_step_is_not_assigned_before_the_transition_is_looked_at(
    setup: Setup,
):
    task = started(setup)
    before = state(task)

    # The admin and the ticket owner see the task but hold no item on it; 999 would be a 404 later.
    for user in (caller(task.tenant, 1, admin=True), caller(task.tenant, owner_of(task))):
        refused(
            lambda u=user: services.task_transition(task_id=task.pk, user=u, transition_id=999, notes="go"),
            "not_assigned",
            403,
        )
    assert state(task) == before


def test_finishing_on_a_step_with_outgoing_transitions_is_an_invalid_transition(setup: Setup):
    task = started(setup)
    before = state(task)

    error = refused(
        lambda: services.task_transition(
            task_id=task.pk, user=caller(task.tenant, holder(task)), transition_id=None, notes="done"
        ),
        "invalid_transition",
        400,
    )
    assert error.message.startswith("Invalid transition")
    assert state(task) == before


def test_a_transition_id_not_in_the_tasks_version_is_not_found(setup: Setup):
    task = started(setup)
    before = state(task)

    for missing in (0, len(transitions_of(task.workflow_version)) + 1, -1):
        refused(
            lambda m=missing: services.task_transition(
                task_id=task.pk, user=caller(task.tenant, holder(task)), transition_id=m, notes="go"
            ),
            "not_found",
            404,
        )
    assert state(task) == before


def test_a_transition_that_does_not_start_at_the_current_step_is_invalid(setup: Setup):
    task = started(setup)
    before = state(task)

    error = refused(
        lambda: services.task_transition(
            task_id=task.pk, user=caller(task.tenant, holder(task)), transition_id=tid(task, "Approve"), notes="go"
        ),
        "invalid_transition",
        400,
    )
    assert error.message.startswith("Invalid transition")
    assert state(task) == before


def test_nobody_active_in_the_next_steps_role_is_no_assignee_and_nothing_moves(setup: Setup):
    task = started(setup)
    RoleMember.objects.filter(role=setup.resolver).update(is_active=False)
    before = state(task)

    refused(
        lambda: services.task_transition(
            task_id=task.pk, user=caller(task.tenant, holder(task)), transition_id=tid(task, "Submit"), notes="go"
        ),
        "no_assignee",
        503,
    )
    assert state(task) == before


def test_a_caller_who_handed_their_item_on_is_not_assigned_rather_than_told_the_task_moved(tenant: Tenant):
    setup = published_setup(tenant=tenant)
    with_supervisors(setup)
    task = started(setup)
    escalating = holder(task)
    services.task_escalate(task_id=task.pk, user=caller(tenant, escalating), reason="help")
    services.task_transfer(task_id=task.pk, user=caller(tenant, 1, admin=True), to_user_id=102, notes="")
    before = state(task)

    # `escalated` and `reassigned` items were handed on by a choice, not closed by a race.
    for user_id in (escalating, 501):
        refused(
            lambda u=user_id: services.task_transition(
                task_id=task.pk, user=caller(tenant, u), transition_id=tid(task, "Submit"), notes="go"
            ),
            "not_assigned",
            403,
        )
    assert state(task) == before


@pytest.mark.django_db(transaction=True)
def test_a_failure_partway_through_a_transition_leaves_nothing_behind(tenant: Tenant, monkeypatch: pytest.MonkeyPatch):
    setup = published_setup(tenant=tenant)
    task = started(setup)
    before = state(task)
    pointer = RoundRobinPointer.objects.filter(role=setup.resolver).values_list("last_user_id").first()

    def audit_down(**kwargs: Any) -> None:
        raise RuntimeError("audit store unavailable")

    # The audit row is the last write: the item, history, task, ticket and outbox rows are already made.
    monkeypatch.setattr(services, "audit_append", audit_down)
    with pytest.raises(RuntimeError, match="audit store unavailable"):
        services.task_transition(
            task_id=task.pk, user=caller(tenant, holder(task)), transition_id=tid(task, "Submit"), notes="go"
        )

    assert state(task) == before
    assert Ticket.objects.get(pk=the_ticket(task).pk).status == "Open"
    assert RoundRobinPointer.objects.filter(role=setup.resolver).values_list("last_user_id").first() == pointer
    assert not TaskItem.objects.filter(task=task, step_key="resolve").exists()


# --- transition: what succeeds ----------------------------------------------------------------


def test_a_transition_resolves_the_callers_item_and_gives_the_next_step_a_fresh_item(setup: Setup):
    task = started(setup)
    assignee = holder(task)
    mine = TaskItem.objects.get(task=task, user_id=assignee)

    result = services.task_transition(
        task_id=task.pk,
        user=caller(task.tenant, assignee),
        transition_id=tid(task, "Submit"),
        notes="Checked the laptop",
    )

    mine.refresh_from_db()
    assert (mine.status, mine.notes) == (ItemStatus.RESOLVED, "Checked the laptop")
    assert mine.acted_on is not None
    assert list(mine.history.values_list("status", "actor_id")) == [("new", None), ("resolved", assignee)]
    task.refresh_from_db()
    assert (task.status, task.current_step_key) == (TaskStatus.IN_PROGRESS, "resolve")
    [new] = result.items
    assert (new.step_key, new.user_id, new.status, new.origin) == ("resolve", 201, "new", "system")
    assert [m.args for m in outbox(STATUS)] == [[the_ticket(task).ticket_number, "In Progress"]]
    assert outbox(ASSIGNMENT)[-1].args == [
        201,
        the_ticket(task).ticket_number,
        the_ticket(task).subject,
        setup.resolver.name,
    ]
    event = AuditEvent.objects.filter(action=AuditAction.TASK_TRANSITIONED).get()
    assert (event.actor_id, event.target_id, event.changes["step"]) == (assignee, str(task.pk), ["triage", "resolve"])


def test_completing_the_last_step_completes_the_task_and_resolves_the_ticket_with_one_status_message_each(
    setup: Setup,
):
    task = started(setup)
    number = the_ticket(task).ticket_number
    services.task_transition(
        task_id=task.pk, user=caller(task.tenant, holder(task)), transition_id=tid(task, "Submit"), notes="a"
    )
    services.task_transition(
        task_id=task.pk, user=caller(task.tenant, 201), transition_id=tid(task, "Approve"), notes="b"
    )

    services.task_transition(task_id=task.pk, user=caller(task.tenant, holder(task)), transition_id=None, notes="done")

    task.refresh_from_db()
    the_ticket(task).refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert task.completed_at is not None
    assert the_ticket(task).status == "Resolved"
    assert not TaskItem.objects.filter(task=task, status__in=["new", "in_progress", "on_hold"]).exists()
    assert [(m.args, m.queue, m.dedupe_key) for m in outbox(STATUS)] == [
        ([number, "In Progress"], "ticket_status-default", f"ticket_status:{task.pk}:in_progress"),
        ([number, "Resolved"], "ticket_status-default", f"ticket_status:{task.pk}:resolved"),
    ]
    assert AuditEvent.objects.filter(action=AuditAction.TASK_COMPLETED, target_id=str(task.pk)).count() == 1


def test_a_completed_task_cannot_be_finished_again(setup: Setup):
    task = started(setup)
    services.task_transition(
        task_id=task.pk, user=caller(task.tenant, holder(task)), transition_id=tid(task, "Submit"), notes="a"
    )
    services.task_transition(
        task_id=task.pk, user=caller(task.tenant, 201), transition_id=tid(task, "Approve"), notes="b"
    )
    finisher = caller(task.tenant, holder(task))
    services.task_transition(task_id=task.pk, user=finisher, transition_id=None, notes="done")
    before = state(task)

    refused(
        lambda: services.task_transition(task_id=task.pk, user=finisher, transition_id=None, notes="again"),
        "not_assigned",
        403,
    )
    assert state(task) == before
    assert len(outbox(STATUS)) == 2


def test_the_same_person_holding_triage_and_finalize_finishes_the_task_normally(tenant: Tenant):
    setup = published_setup(tenant=tenant, owner_users=(101,))
    task = started(setup)
    admin_person = caller(tenant, 101)

    services.task_transition(task_id=task.pk, user=admin_person, transition_id=tid(task, "Submit"), notes="triaged")
    services.task_transition(task_id=task.pk, user=caller(tenant, 201), transition_id=tid(task, "Approve"), notes="ok")
    assert available_transitions(Task.objects.get(pk=task.pk), 101) == []  # finalize: only finishing is left
    services.task_transition(task_id=task.pk, user=admin_person, transition_id=None, notes="closed")

    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert list(
        TaskItem.objects.filter(task=task, user_id=101).order_by("id").values_list("step_key", "status", "notes")
    ) == [
        ("triage", "resolved", "triaged"),
        ("finalize", "resolved", "closed"),
    ]


def test_reject_then_submit_again_gives_the_reassigned_people_fresh_new_items(tenant: Tenant):
    setup = published_setup(tenant=tenant, owner_users=(101,))
    task = started(setup)
    owner, resolver = caller(tenant, 101), caller(tenant, 201)

    submitted = services.task_transition(task_id=task.pk, user=owner, transition_id=tid(task, "Submit"), notes="1")
    rejected = services.task_transition(task_id=task.pk, user=resolver, transition_id=tid(task, "Reject"), notes="no")
    resubmitted = services.task_transition(task_id=task.pk, user=owner, transition_id=tid(task, "Submit"), notes="2")

    [back_at_triage] = rejected.items
    assert (back_at_triage.user_id, back_at_triage.step_key, back_at_triage.status) == (101, "triage", "new")
    [again] = resubmitted.items
    assert list(TaskItem.objects.filter(task=task, user_id=201).order_by("id").values_list("id", "status")) == [
        (submitted.items[0].pk, "resolved"),
        (again.pk, "new"),
    ]
    assert available_transitions(Task.objects.get(pk=task.pk), 201) != []
    assert len(outbox(STATUS)) == 1  # In Progress once, however many actions


def test_moving_on_from_a_one_assignee_step_closes_other_active_items_there(setup: Setup):
    task = started(setup)
    first = holder(task)
    extra = next(u for u in (101, 102, 103) if u != first)
    services.task_assign(task_id=task.pk, user=caller(task.tenant, 1, admin=True), user_id=extra)

    services.task_transition(
        task_id=task.pk, user=caller(task.tenant, first), transition_id=tid(task, "Submit"), notes="go"
    )

    other = TaskItem.objects.get(task=task, user_id=extra)
    assert other.status == ItemStatus.RESOLVED
    assert other.acted_on is None
    assert other.history.latest("id").notes.startswith("Closed:")


def test_moving_on_from_a_step_with_several_assignees_closes_the_others_items(tenant: Tenant):
    setup = published_setup(tenant=tenant, start_count=2)
    task = started(setup)
    first, second = TaskItem.objects.filter(task=task).order_by("id")

    services.task_transition(
        task_id=task.pk, user=caller(tenant, first.user_id), transition_id=tid(task, "Submit"), notes="go"
    )

    second.refresh_from_db()
    assert second.status == ItemStatus.RESOLVED
    assert second.acted_on is None
    assert second.history.latest("id").notes.startswith("Closed:")
    # The task left Triage: the other assignee is told it moved on, not that they were never assigned.
    error = refused(
        lambda: services.task_transition(
            task_id=task.pk, user=caller(tenant, second.user_id), transition_id=tid(task, "Submit"), notes="go"
        ),
        "task_moved",
        409,
    )
    assert error.message == (
        "The task has moved on: your item on step 'Triage' was closed by another action "
        "and it is now at step 'Resolve'."
    )


def test_the_stored_ticket_is_in_progress_from_the_first_transition_and_resolved_on_completion(setup: Setup):
    task = started(setup)
    ticket = the_ticket(task)
    assert Ticket.objects.get(pk=ticket.pk).status == "Open"

    services.task_transition(
        task_id=task.pk, user=caller(task.tenant, holder(task)), transition_id=tid(task, "Submit"), notes="a"
    )
    assert Ticket.objects.get(pk=ticket.pk).status == "In Progress"
    services.task_transition(
        task_id=task.pk, user=caller(task.tenant, 201), transition_id=tid(task, "Approve"), notes="b"
    )
    assert Ticket.objects.get(pk=ticket.pk).status == "In Progress"
    services.task_transition(task_id=task.pk, user=caller(task.tenant, holder(task)), transition_id=None, notes="c")

    assert Ticket.objects.get(pk=ticket.pk).status == "Resolved"
    assert [m.args for m in outbox(STATUS)] == [
        [ticket.ticket_number, "In Progress"],
        [ticket.ticket_number, "Resolved"],
    ]


def test_every_item_records_truthfully_why_its_holder_was_chosen(tenant: Tenant):
    setup = published_setup(tenant=tenant, owner_users=(101, 102, 103))
    with_supervisors(setup, 501, 502)
    task = started(setup)  # 101, by round-robin over the step's role
    admin = caller(tenant, 1, admin=True, name="Ada Admin")
    coordinator = caller(tenant, owner_of(task), name="Coord")

    services.task_assign(task_id=task.pk, user=admin, user_id=102)
    services.task_transfer(task_id=task.pk, user=coordinator, to_user_id=103, notes="cover")  # 101's item
    services.task_escalate(task_id=task.pk, user=caller(tenant, 102), reason="stuck")
    services.task_transition(task_id=task.pk, user=caller(tenant, 103), transition_id=tid(task, "Submit"), notes="ok")

    reasons = list(
        TaskItem.objects.filter(task=task).order_by("id").values_list("user_id", "origin", "assignment_reason")
    )
    assert reasons == [
        (101, "system", {"strategy": "round_robin", "position": 0, "load": None}),
        (102, "manual", {"strategy": "manual", "by": 1, "by_name": "Ada Admin"}),
        (
            103,
            "transferred",
            {"strategy": "transfer", "by": owner_of(task), "by_name": "Coord", "from_user_id": 101},
        ),
        (501, "escalation", {"strategy": "round_robin", "position": 0, "load": None}),
        (201, "system", {"strategy": "round_robin", "position": 0, "load": None}),
    ]


# --- item status ------------------------------------------------------------------------------


def test_putting_an_item_in_progress_starts_the_task_and_tells_the_helpdesk_once(setup: Setup):
    task = started(setup)
    user = caller(task.tenant, holder(task))

    services.task_item_status(task_id=task.pk, user=user, status="in_progress", notes="looking")
    services.task_item_status(task_id=task.pk, user=user, status="on_hold", notes="waiting for parts")

    task.refresh_from_db()
    assert task.status == TaskStatus.ON_HOLD
    item = TaskItem.objects.get(task=task)
    assert list(item.history.order_by("id").values_list("status", "notes")) == [
        ("new", ""),
        ("in_progress", "looking"),
        ("on_hold", "waiting for parts"),
    ]
    assert [m.args for m in outbox(STATUS)] == [[the_ticket(task).ticket_number, "In Progress"]]
    assert Ticket.objects.get(pk=the_ticket(task).pk).status == "In Progress"


def test_the_task_is_on_hold_only_when_every_active_item_is(tenant: Tenant):
    setup = published_setup(tenant=tenant, start_count=2)
    task = started(setup)
    first, second = TaskItem.objects.filter(task=task).order_by("id")

    services.task_item_status(task_id=task.pk, user=caller(tenant, first.user_id), status="on_hold")
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS
    services.task_item_status(task_id=task.pk, user=caller(tenant, second.user_id), status="on_hold")
    task.refresh_from_db()
    assert task.status == TaskStatus.ON_HOLD


def test_a_status_change_needs_an_active_item_and_a_valid_status(setup: Setup):
    task = started(setup)
    before = state(task)

    refused(
        lambda: services.task_item_status(task_id=task.pk, user=caller(task.tenant, 1, admin=True), status="on_hold"),
        "not_assigned",
        403,
    )
    refused(
        lambda: services.task_item_status(task_id=task.pk, user=caller(task.tenant, holder(task)), status="resolved"),
        "validation_error",
        400,
    )
    assert state(task) == before


# --- escalate ----------------------------------------------------------------------------------


def test_escalation_hands_the_item_to_the_steps_escalation_role_with_the_contracts_notification(tenant: Tenant):
    setup = published_setup(tenant=tenant)
    with_supervisors(setup)
    task = started(setup)
    escalating = holder(task)
    old = TaskItem.objects.get(task=task)

    result = services.task_escalate(
        task_id=task.pk, user=caller(tenant, escalating, name="Ana Cruz"), reason="Needs a supervisor"
    )

    old.refresh_from_db()
    assert (old.status, old.notes) == (ItemStatus.ESCALATED, "Needs a supervisor")
    [new] = result.items
    assert (new.user_id, new.step_key, new.status, new.origin, new.role_name) == (
        501,
        "triage",
        "new",
        "escalation",
        "Supervisor",
    )
    [message] = outbox(ESCALATION)
    assert (message.args, message.queue, message.dedupe_key) == ([], "inapp-notification-queue", f"escalation:{new.pk}")
    assert message.kwargs == {
        "from_user_id": escalating,
        "to_user_id": 501,
        "from_ticket_number": the_ticket(task).ticket_number,
        "to_ticket_number": the_ticket(task).ticket_number,
        "task_title": the_ticket(task).subject,
        "escalated_from_role": setup.owner.name,
        "escalated_to_role": "Supervisor",
        "escalation_reason": "Needs a supervisor",
        "escalated_by_id": escalating,
        "escalated_by_name": "Ana Cruz",
    }
    assert outbox(ASSIGNMENT)[-1].args == [501, the_ticket(task).ticket_number, the_ticket(task).subject, "Supervisor"]
    assert AuditEvent.objects.filter(action=AuditAction.TASK_ESCALATED).count() == 1
    # Escalating is not working on the ticket: neither the task nor the ticket has started.
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PENDING
    assert Ticket.objects.get(pk=the_ticket(task).pk).status == "Open"
    assert outbox(STATUS) == []


def test_escalating_a_step_without_an_escalation_role_is_refused(setup: Setup):
    task = started(setup)
    before = state(task)

    refused(
        lambda: services.task_escalate(task_id=task.pk, user=caller(task.tenant, holder(task)), reason="help"),
        "invalid_state",
        400,
    )
    assert state(task) == before


def test_escalating_to_a_role_nobody_holds_is_no_assignee(tenant: Tenant):
    setup = published_setup(tenant=tenant)
    with_escalation(setup, RoleFactory.create(tenant=tenant, name="Empty"))
    task = started(setup)
    before = state(task)

    refused(
        lambda: services.task_escalate(task_id=task.pk, user=caller(tenant, holder(task)), reason="help"),
        "no_assignee",
        503,
    )
    assert state(task) == before


# --- transfer ---------------------------------------------------------------------------------


def test_the_ticket_owner_transfers_the_current_item_with_the_contracts_notification(setup: Setup):
    task = started(setup)
    old = TaskItem.objects.get(task=task)
    target = next(u for u in (101, 102, 103) if u != old.user_id)

    result = services.task_transfer(
        task_id=task.pk,
        user=caller(task.tenant, owner_of(task), name="Coord"),
        to_user_id=target,
        notes="on leave",
    )

    old.refresh_from_db()
    assert old.status == ItemStatus.REASSIGNED
    [new] = result.items
    assert (new.user_id, new.status, new.origin, new.step_key, new.role_id) == (
        target,
        "new",
        ItemOrigin.TRANSFERRED,
        "triage",
        old.role_id,
    )
    [message] = outbox(TRANSFER)
    number, title = the_ticket(task).ticket_number, the_ticket(task).subject
    assert message.args == [old.user_id, target, number, number, title, owner_of(task), "Coord", "on leave"]
    assert (message.kwargs, message.queue) == ({}, "inapp-notification-queue")
    assert AuditEvent.objects.filter(action=AuditAction.TASK_TRANSFERRED).count() == 1


def test_only_an_admin_or_the_ticket_owner_may_transfer_and_only_to_a_known_member(setup: Setup):
    task = started(setup)
    assignee = holder(task)
    before = state(task)

    refused(
        lambda: services.task_transfer(task_id=task.pk, user=caller(task.tenant, assignee), to_user_id=102, notes=""),
        "permission_denied",
        403,
    )
    error = refused(
        lambda: services.task_transfer(
            task_id=task.pk, user=caller(task.tenant, 1, admin=True), to_user_id=777, notes=""
        ),
        "validation_error",
        400,
    )
    assert error.errors is not None
    assert "to_user_id" in error.errors
    assert state(task) == before


# --- assign and cancel ------------------------------------------------------------------------


def test_an_admin_adds_a_manual_item_on_the_current_step_with_an_assignment_notification(setup: Setup):
    task = started(setup)
    target = next(u for u in (101, 102, 103) if u != holder(task))

    result = services.task_assign(task_id=task.pk, user=caller(task.tenant, 1, admin=True), user_id=target)

    [new] = result.items
    assert (new.user_id, new.step_key, new.status, new.origin, new.role_id) == (
        target,
        "triage",
        "new",
        "manual",
        setup.owner.pk,
    )
    assert outbox(ASSIGNMENT)[-1].args == [
        target,
        the_ticket(task).ticket_number,
        the_ticket(task).subject,
        setup.owner.name,
    ]
    assert available_transitions(Task.objects.get(pk=task.pk), target) != []


def test_assigning_needs_an_admin_a_known_member_and_someone_not_already_on_the_step(setup: Setup):
    task = started(setup)
    before = state(task)
    admin = caller(task.tenant, 1, admin=True)

    refused(
        lambda: services.task_assign(task_id=task.pk, user=caller(task.tenant, holder(task)), user_id=102),
        "permission_denied",
        403,
    )
    refused(lambda: services.task_assign(task_id=task.pk, user=admin, user_id=777), "validation_error", 400)
    refused(lambda: services.task_assign(task_id=task.pk, user=admin, user_id=holder(task)), "validation_error", 400)
    assert state(task) == before


def test_cancelling_closes_the_active_items_and_stops_every_further_action(setup: Setup):
    task = started(setup)
    assignee = holder(task)
    admin = caller(task.tenant, 1, admin=True)

    services.task_cancel(task_id=task.pk, user=admin, reason="Duplicate ticket")

    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    item = TaskItem.objects.get(task=task)
    assert (item.status, item.acted_on) == (ItemStatus.RESOLVED, None)
    assert item.history.latest("id").notes == "Cancelled: Duplicate ticket"
    assert outbox(STATUS) == []
    error = refused(
        lambda: services.task_transition(
            task_id=task.pk, user=caller(task.tenant, assignee), transition_id=tid(task, "Submit"), notes="go"
        ),
        "task_moved",
        409,
    )
    assert error.message.endswith("and it is cancelled.")
    refused(lambda: services.task_cancel(task_id=task.pk, user=admin, reason="again"), "invalid_state", 400)
    refused(
        lambda: services.task_cancel(task_id=task.pk, user=caller(task.tenant, assignee), reason="x"),
        "permission_denied",
        403,
    )
