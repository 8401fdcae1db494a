"""Starting tickets' tasks: workflow version, ticket owner, first assignments, SLA targets.

`task_start_for_tickets` is called by ticket allocation (tickets.services)
inside its transaction, for one ticket or a batch. For each ticket it
either starts the task completely — the Task pinned to the matched
workflow's current version at its start step, the ticket owner by
round-robin over the Ticket Coordinator role (none if the role is empty),
the start step's items by the step's strategy, item history, the audit row
and one assignment notification per item in the outbox — or returns the
NotAllocatable with the reason, having written nothing for that ticket.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.models import AuditAction
from audit.services import Actor, audit_append
from role.assignment import (
    Assignee,
    Member,
    least_loaded_next,
    least_loaded_next_many,
    live_roles_with_rotations,
    round_robin_next,
    round_robin_next_many,
)
from role.models import Role, RoleMember
from task.models import (
    ACTIVE_ITEM_STATUSES,
    OPEN_STATUSES,
    ItemOrigin,
    ItemStatus,
    Task,
    TaskItem,
    TaskItemHistory,
    TaskStatus,
)
from task.rules import is_end_step, step_of, transition_by_id
from workflow.models import Workflow, WorkflowVersion
from workflow.selectors import workflow_match
from workflow_api.core.errors import ApiError, ErrorCode
from workflow_api.core.outbox import OutboundMessage, outbox_enqueue, outbox_enqueue_many

if TYPE_CHECKING:
    from tickets.models import Ticket

TICKET_OWNER_ROLE = "Ticket Coordinator"


class NotAllocatable(Exception):
    """The ticket cannot be allocated now; `reason` says why (kept on the ticket)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sla_for(version: WorkflowVersion, priority: str) -> timedelta:
    """The workflow's SLA for a ticket priority (urgent/high/medium/low; anything else is medium)."""
    sla = version.definition["sla"]
    return timedelta(seconds=sla.get(priority, sla["medium"]))


def item_target(*, version: WorkflowVersion, step_key: str, priority: str, assigned_on: datetime) -> datetime:
    """Assignment time + SLA * step weight / total weight (equal shares when every weight is 0)."""
    steps = version.definition["steps"]
    weights = {step["key"]: Decimal(step["weight"]) for step in steps}
    total = sum(weights.values())
    share = weights[step_key] / total if total > 0 else Decimal(1) / len(steps)
    return assigned_on + timedelta(seconds=float(Decimal(sla_for(version, priority).total_seconds()) * share))


def _live_role(tenant_id: int, role_ref: dict[str, Any] | None) -> Role | None:
    if role_ref is None:
        return None
    return Role.objects.filter(tenant_id=tenant_id, pk=role_ref["id"], deleted_at__isnull=True).first()


def _pick(role: Role, step: dict[str, Any], members: list[Member] | None = None) -> list[Assignee]:
    """The step's assignees from `role` by the step's strategy; `members` when the caller has read them."""
    count = step.get("assignment", {}).get("count", 1)
    if step.get("assignment", {}).get("strategy") == "least_loaded":
        return _least_loaded(role, count)
    return round_robin_next(role=role, count=count, members=members)


def _least_loaded(role: Role, count: int) -> list[Assignee]:
    return least_loaded_next(role=role, count=count, open_counts=lambda: _open_items(role))


def _open_items(role: Role, also: Mapping[int, int] | None = None) -> dict[int, int]:
    """Open (active) items per user on `role`, the loads least-loaded compares, plus `also` (items not yet made)."""
    loads = Counter(
        dict(
            TaskItem.objects.filter(tenant_id=role.tenant_id, role=role, status__in=ACTIVE_ITEM_STATUSES)
            .values_list("user_id")
            .annotate(n=Count("id"))
            .values_list("user_id", "n")
        )
    )
    loads.update(also or {})
    return dict(loads)


@dataclass(frozen=True)
class ItemsFor:
    """New items to create on one task's step, for `items_assign_many`."""

    task: Task
    step: dict[str, Any]
    role: Role
    assignees: list[Assignee]
    ticket_number: str
    title: str


def items_assign(
    *,
    task: Task,
    step: dict[str, Any],
    role: Role,
    assignees: list[Assignee],
    origin: ItemOrigin,
    actor: Actor,
    ticket_number: str,
    title: str,
) -> list[TaskItem]:
    """Create `new` items for the assignees on `step`, their history, and their notifications."""
    work = ItemsFor(task=task, step=step, role=role, assignees=assignees, ticket_number=ticket_number, title=title)
    return items_assign_many(work=[work], origin=origin, actor=actor)[0]


def items_assign_many(*, work: Sequence[ItemsFor], origin: ItemOrigin, actor: Actor) -> list[list[TaskItem]]:
    """`items_assign` for several tasks at once: one INSERT each for the items, their history and notifications."""
    now = timezone.now()
    groups: list[list[TaskItem]] = []
    for w in work:
        version, priority = w.task.workflow_version, w.task.priority
        target = item_target(version=version, step_key=w.step["key"], priority=priority, assigned_on=now)
        groups.append(
            [
                TaskItem(
                    tenant_id=w.task.tenant_id,
                    task=w.task,
                    step_key=w.step["key"],
                    step_name=w.step["name"],
                    role=w.role,
                    role_name=w.role.name,
                    user_id=assignee.user_id,
                    user_name=assignee.full_name,
                    user_email=assignee.email,
                    status=ItemStatus.NEW,
                    origin=origin,
                    assigned_on=now,
                    target_resolution=target,
                    assignment_reason=assignee.reason,
                )
                for assignee in w.assignees
            ]
        )
    # bulk_create sets each item's pk in place, so the groups see them.
    items = TaskItem.objects.bulk_create([item for group in groups for item in group])
    TaskItemHistory.objects.bulk_create(
        [
            TaskItemHistory(
                tenant_id=item.tenant_id,
                item=item,
                status=ItemStatus.NEW,
                at=now,
                actor_id=actor.id,
                actor_name=actor.name,
            )
            for item in items
        ]
    )
    outbox_enqueue_many(
        task_name="notifications.send_assignment_notification",
        messages=[
            OutboundMessage(
                args=[item.user_id, w.ticket_number, w.title, w.role.name],
                tenant=w.task.tenant,
                dedupe_key=f"assignment:{item.pk}",
            )
            for w, group in zip(work, groups, strict=True)
            for item in group
        ],
    )
    return groups


@dataclass(frozen=True)
class StartedTask:
    task: Task
    items: list[TaskItem]


@dataclass(frozen=True)
class _Start:
    """What a ticket's task will start with, read before anything is written."""

    ticket: Ticket
    workflow: Workflow
    version: WorkflowVersion
    step: dict[str, Any]
    role: Role
    members: list[Member]
    owner_role: Role | None
    owner_members: list[Member]


def task_start_for_tickets(
    *, tickets: Sequence[Ticket], actor: Actor, correlation_ids: Mapping[int, str] | None = None
) -> list[StartedTask | NotAllocatable]:
    """Start each ticket's task (joining the caller's transaction): a StartedTask or the NotAllocatable, in order.

    Every check that can refuse only reads, so a NotAllocatable ticket
    leaves nothing behind and the caller needs no savepoint. The same
    tasks, items and rotation as starting them one after the other,
    for a bounded number of queries whatever the number of tickets: one
    workflow match per distinct routing, one read of the roles per tenant,
    one pointer move per role (pointers locked in role order, so two callers
    cannot deadlock), one INSERT each for the tasks, items, history and
    notifications. `correlation_ids` (ticket pk -> message id) marks each
    task's audit row with the message that caused it.
    """
    plans = _start_plans(tickets)
    starts = [plan for plan in plans if isinstance(plan, _Start)]
    if not starts:
        return [plan for plan in plans if isinstance(plan, NotAllocatable)]
    with transaction.atomic(savepoint=False):
        assignees, owners = _assign(starts)
        tasks = Task.objects.bulk_create(
            [
                Task(
                    tenant=start.ticket.tenant,
                    ticket=start.ticket,
                    workflow=start.workflow,
                    workflow_version=start.version,
                    current_step_key=start.step["key"],
                    priority=start.ticket.priority,
                    ticket_owner_id=owner.user_id if owner else None,
                    ticket_owner_name=owner.full_name if owner else "",
                    target_resolution=start.ticket.received_at + sla_for(start.version, start.ticket.priority),
                )
                for start, owner in zip(starts, owners, strict=True)
            ]
        )
        items = items_assign_many(
            work=[
                ItemsFor(
                    task=task,
                    step=start.step,
                    role=start.role,
                    assignees=chosen,
                    ticket_number=start.ticket.ticket_number,
                    title=start.ticket.subject,
                )
                for start, task, chosen in zip(starts, tasks, assignees, strict=True)
            ],
            origin=ItemOrigin.SYSTEM,
            actor=actor,
        )
        for start, task, task_items in zip(starts, tasks, items, strict=True):
            audit_append(
                tenant=start.ticket.tenant,
                actor=actor,
                action=AuditAction.TASK_CREATED,
                target_type="task",
                target_id=task.pk,
                target_display=f"{start.ticket.ticket_number} {start.ticket.subject}"[:255],
                changes={
                    "workflow": [None, start.workflow.name],
                    "workflow_version": [None, start.version.number],
                    "step": [None, start.step["key"]],
                    "assignees": [None, [item.user_id for item in task_items]],
                    "ticket_owner": [None, task.ticket_owner_id],
                },
                correlation_id=(correlation_ids or {}).get(start.ticket.pk) or None,
            )
    started = iter(StartedTask(task=task, items=task_items) for task, task_items in zip(tasks, items, strict=True))
    return [next(started) if isinstance(plan, _Start) else plan for plan in plans]


def _start_plans(tickets: Sequence[Ticket]) -> list[_Start | NotAllocatable]:
    """Each ticket's workflow, start step and roles, or why it cannot start. Reads only."""
    matches: dict[tuple[int, str, str, str], Workflow | None] = {}
    for ticket in tickets:
        key = (ticket.tenant_id, ticket.department, ticket.category, ticket.sub_category)
        if key not in matches:
            matches[key] = workflow_match(
                tenant=ticket.tenant,
                department=ticket.department,
                category=ticket.category,
                sub_category=ticket.sub_category,
            )
    start_steps = {
        workflow.pk: next(step for step in workflow.current_version.definition["steps"] if step["is_start"])
        for workflow in matches.values()
        if workflow is not None and workflow.current_version is not None
    }
    # The start steps' roles and the ticket owners' role (Ticket Coordinator), read together, per tenant.
    role_pks: dict[int, set[int]] = {}
    for (tenant_id, *_), workflow in matches.items():
        if workflow is not None:
            step_role = start_steps[workflow.pk]["role"]
            role_pks.setdefault(tenant_id, set()).update([step_role["id"]] if step_role else [])
    rotations = {
        tenant_id: live_roles_with_rotations(
            tenant_id=tenant_id, filter=Q(pk__in=sorted(pks)) | Q(name__iexact=TICKET_OWNER_ROLE)
        )
        for tenant_id, pks in role_pks.items()
    }
    plans: list[_Start | NotAllocatable] = []
    for ticket in tickets:
        workflow = matches[(ticket.tenant_id, ticket.department, ticket.category, ticket.sub_category)]
        if workflow is None:
            plans.append(
                NotAllocatable(
                    f"no published workflow matches {ticket.department!r} / {ticket.category!r} / "
                    f"{ticket.sub_category!r}"
                )
            )
            continue
        version = workflow.current_version
        assert version is not None
        start = start_steps[workflow.pk]
        roles = rotations[ticket.tenant_id]
        start_role_pk = start["role"]["id"] if start["role"] else None
        role, members = next(((r, m) for r, m in roles if r.pk == start_role_pk), (None, []))
        if role is None:
            plans.append(NotAllocatable(f"the role of step {start['name']!r} no longer exists"))
            continue
        if not members:
            plans.append(NotAllocatable(f"nobody active holds the role {role.name!r} (step {start['name']!r})"))
            continue
        owner_role, owner_members = next(
            ((r, m) for r, m in roles if r.name.casefold() == TICKET_OWNER_ROLE.casefold()), (None, [])
        )
        plans.append(
            _Start(
                ticket=ticket,
                workflow=workflow,
                version=version,
                step=start,
                role=role,
                members=members,
                owner_role=owner_role,
                owner_members=owner_members,
            )
        )
    return plans


def _assign(starts: Sequence[_Start]) -> tuple[list[list[Assignee]], list[Assignee | None]]:
    """Each start's step assignees and ticket owner (None when the coordinator role is empty or missing).

    Hands out what starting the tasks one after the other would (per task:
    the step's assignees, then its owner), with one pointer move per role;
    roles are taken in pk order, so concurrent callers lock pointers in the
    same order.
    """
    assignees: list[list[Assignee]] = [[] for _ in starts]
    owners: list[Assignee | None] = [None for _ in starts]
    # role pk -> (role, members, [(start index, "step" | "owner", count)]), demands in task order.
    demands: dict[int, tuple[Role, list[Member], list[tuple[int, str, int]]]] = {}
    least_loaded: list[tuple[int, int]] = []
    for index, start in enumerate(starts):
        assignment = start.step.get("assignment", {})
        count = assignment.get("count", 1)
        if assignment.get("strategy") == "least_loaded":
            least_loaded.append((index, count))
        else:
            demands.setdefault(start.role.pk, (start.role, start.members, []))[2].append((index, "step", count))
        if start.owner_role is not None and start.owner_members:
            entry = demands.setdefault(start.owner_role.pk, (start.owner_role, start.owner_members, []))
            entry[2].append((index, "owner", 1))
    for role_pk in sorted({*demands, *(starts[index].role.pk for index, _ in least_loaded)}):
        # Items this batch gives the role by round-robin count as open for its least-loaded choices.
        handed_out: Counter[int] = Counter()
        if role_pk in demands:
            role, members, wanted = demands[role_pk]
            pieces = round_robin_next_many(role=role, counts=[count for _, _, count in wanted], members=members)
            for (index, kind, _), piece in zip(wanted, pieces, strict=True):
                if kind == "step":
                    assignees[index] = piece
                    handed_out.update(assignee.user_id for assignee in piece)
                else:
                    owners[index] = piece[0] if piece else None
        by_load = [(index, count) for index, count in least_loaded if starts[index].role.pk == role_pk]
        if by_load:
            role = starts[by_load[0][0]].role
            pieces = least_loaded_next_many(
                role=role,
                counts=[count for _, count in by_load],
                open_counts=partial(_open_items, role, handed_out),
            )
            for (index, _), piece in zip(by_load, pieces, strict=True):
                assignees[index] = piece
    return assignees, owners


# --- Acting on a task: transition, item status, escalate, transfer, assign, cancel ---------------
#
# Each service runs in its own transaction and locks the Task row first
# (SELECT ... FOR UPDATE), so two callers racing on one task are serialised:
# the second one re-reads the task and the items after the first committed
# and fails its checks instead of acting twice. A loser whose item the
# winner's move closed gets 409 task_moved (see _callers_item); anyone else
# fails as usual (403 not_assigned, 400).
# Every check runs before anything is written; notifications go through the
# outbox and leave only when the transaction commits.
#
# Choices the contract leaves open:
# - "Not visible" (404) is task.selectors.task_visible: another tenant's task, or,
#   for a non-admin, a task they neither hold an item on nor own the ticket of.
# - Moving the task off a step resolves the caller's item. Other people's
#   active items on that step (a step staffed with several assignees, an
#   escalation or manual assignment) are closed too (`resolved`, no
#   `acted_on`, a history note): any one assignee moves the task on, and
#   nobody keeps open work on a step the task has left.
# - Completing or cancelling the task closes every item still active on it
#   (`resolved`, no `acted_on`, a history note saying why): a finished task
#   holds no open work. Cancelling sends no ticket status (the contract has none).
# - Work starts (task `pending` -> `in_progress`, the stored ticket's status
#   "In Progress", and "In Progress" sent to the helpdesk once) on the first
#   transition or item status change by an assignee; escalation, transfer and
#   manual assignment do not start it.
# - Transfer and manual assignment accept any active member of a live role of
#   the tenant (the admin may hand work to someone outside the step's role);
#   the new item still records the step's role. A transfer moves the oldest
#   active item on the current step. Their items record who chose the member
#   (`assignment_reason` {"strategy": "transfer"|"manual", "by", ...}), not a
#   rotation position they never had.
# - A caller with no active item on the task whose latest item on it was
#   closed by somebody else's action (`resolved` without `acted_on`: the task
#   left that step, was completed or was cancelled) gets 409 task_moved rather
#   than 403 not_assigned: they were assigned, and lost a race or acted on a
#   stale page. Someone who never held an item, or handed theirs on
#   (reassigned, escalated) or resolved it themselves, still gets 403.


def _locked_task(*, task_id: int, user: Any) -> Task:
    """The task, locked for this transaction, if the caller may see it (task.selectors.task_visible); else 404."""
    from task.selectors import task_visible

    task = task_visible(tenant=user.tenant, user=user).select_for_update().filter(pk=task_id).first()
    if task is None:
        raise ApiError(ErrorCode.NOT_FOUND, "Task not found.", status_code=404)
    return task


def _active_items(task: Task, *, step_key: str | None = None) -> list[TaskItem]:
    items = TaskItem.objects.filter(task=task, status__in=ACTIVE_ITEM_STATUSES).order_by("id")
    if step_key is not None:
        items = items.filter(step_key=step_key)
    return list(items)


def _callers_item(task: Task, user: Any) -> TaskItem:
    """The caller's active item on the current step (the oldest if several).

    Raises 409 task_moved when the caller holds no active item on the task
    and their latest item on it was closed by somebody else's action (the
    loser of a race, or a stale page); 403 not_assigned otherwise.
    """
    mine = [item for item in _active_items(task, step_key=task.current_step_key) if item.user_id == user.user_id]
    if mine:
        return mine[0]
    # Only the refusal pays for this read.
    held = list(TaskItem.objects.filter(task=task, user_id=user.user_id).order_by("-id"))
    if held and not any(item.status in ACTIVE_ITEM_STATUSES for item in held):
        latest = held[0]
        if latest.status == ItemStatus.RESOLVED and latest.acted_on is None:
            raise ApiError(ErrorCode.TASK_MOVED, _moved_message(task, latest), status_code=409)
    raise ApiError(
        ErrorCode.NOT_ASSIGNED,
        "You hold no active item on the task's current step.",
        status_code=403,
    )


def _moved_message(task: Task, closed: TaskItem) -> str:
    if task.status in OPEN_STATUSES:
        step = step_of(task.workflow_version, task.current_step_key)
        name = step["name"] if step is not None else task.current_step_key
        now = f"it is now at step {name!r}"
    else:
        now = f"it is {task.status}"
    return f"The task has moved on: your item on step {closed.step_name!r} was closed by another action and {now}."


def _require_text(field: str, value: str, *, code: ErrorCode = ErrorCode.VALIDATION_ERROR) -> str:
    text = (value or "").strip()
    if not text:
        raise ApiError(code, f"{field.capitalize()} is required.", errors={field: ["This field may not be blank."]})
    return text


def _require_admin(user: Any) -> None:
    if not user.is_engine_admin:
        raise ApiError(ErrorCode.PERMISSION_DENIED, "Only an engine admin may do this.", status_code=403)


def _ticket_fields(task: Task) -> tuple[str, str]:
    """(ticket number, task title = the ticket's subject); empty for a task without a ticket."""
    ticket = task.ticket
    return (ticket.ticket_number, ticket.subject) if ticket is not None else ("", "")


def _item_set_status(item: TaskItem, status: ItemStatus, *, actor: Actor, notes: str = "", acted: bool = False) -> None:
    now = timezone.now()
    item.status = status
    fields = ["status"]
    if acted:
        item.acted_on = now
        item.notes = notes
        fields += ["acted_on", "notes"]
    item.save(update_fields=fields)
    TaskItemHistory.objects.create(
        tenant_id=item.tenant_id,
        item=item,
        status=status,
        at=now,
        actor_id=actor.id,
        actor_name=actor.name,
        notes=notes,
    )


def _close_items(items: list[TaskItem], *, actor: Actor, note: str) -> None:
    for item in items:
        _item_set_status(item, ItemStatus.RESOLVED, actor=actor, notes=note)


def _send_ticket_status(task: Task, status: str, dedupe_suffix: str) -> None:
    if task.ticket is None:
        return
    outbox_enqueue(
        task_name="send_ticket_status",
        args=[task.ticket.ticket_number, status],
        tenant=task.tenant,
        dedupe_key=f"ticket_status:{task.pk}:{dedupe_suffix}",
    )


def _work_started(task: Task) -> None:
    """First action by an assignee: the task and the stored ticket are in progress, and the helpdesk hears it once.

    Only a `pending` task has not been acted on yet (no action returns a task
    to `pending`), so the ticket row is written once, not on every action.
    """
    if task.status == TaskStatus.PENDING:
        task.status = TaskStatus.IN_PROGRESS
        if task.ticket is not None:
            from tickets.models import Ticket

            # A plain UPDATE of the one column: the rest of the row belongs to intake.
            Ticket.objects.filter(pk=task.ticket.pk).update(status="In Progress")
            task.ticket.status = "In Progress"
    _send_ticket_status(task, "In Progress", "in_progress")


def _task_save(task: Task, *fields: str) -> None:
    task.updated_at = timezone.now()
    task.save(update_fields=[*fields, "updated_at"])


@dataclass(frozen=True, kw_only=True)
class HandPicked(Assignee):
    """A member a person chose (transfer, manual assignment), not a rotation.

    An Assignee so that items_assign takes it; what it stores is `reason`,
    which names the choice and who made it instead of the round-robin
    position and load the base class describes (unused here).
    """

    position: int = 0
    how: str  # "transfer" or "manual": the reason's strategy
    by: Actor
    from_user_id: int | None = None  # transfer: who held the item before

    @classmethod
    def of(cls, member: RoleMember, *, how: str, by: Actor, from_user_id: int | None = None) -> HandPicked:
        return cls(
            user_id=member.user_id,
            full_name=member.full_name,
            email=member.email,
            how=how,
            by=by,
            from_user_id=from_user_id,
        )

    @property
    def reason(self) -> dict[str, Any]:
        reason: dict[str, Any] = {"strategy": self.how, "by": self.by.id, "by_name": self.by.name}
        if self.how == "transfer":
            reason["from_user_id"] = self.from_user_id
        return reason


def _known_member(tenant_id: int, user_id: int) -> RoleMember | None:
    """An active membership of the user in some live role of the tenant (the oldest), or None."""
    return (
        RoleMember.objects.filter(
            tenant_id=tenant_id,
            user_id=user_id,
            is_active=True,
            deleted_at__isnull=True,
            role__deleted_at__isnull=True,
        )
        .order_by("id")
        .first()
    )


def _audit(task: Task, actor: Actor, action: AuditAction, changes: dict[str, list[Any]]) -> None:
    number, title = _ticket_fields(task)
    audit_append(
        tenant=task.tenant,
        actor=actor,
        action=action,
        target_type="task",
        target_id=task.pk,
        target_display=f"{number} {title}".strip()[:255],
        changes=changes,
    )


@dataclass(frozen=True)
class ActionResult:
    task: Task
    items: list[TaskItem]  # the items this action created (empty when it created none)


def task_transition(*, task_id: int, user: Any, transition_id: int | None, notes: str) -> ActionResult:
    """Move the task along a transition of its own version, or finish it (`transition_id` None).

    Checks, in the contract's order, before anything changes: notes (400
    notes_required), visibility (404), the caller's active item on the current
    step (403 not_assigned), finishing only on a step without outgoing
    transitions (400 invalid_transition), the transition in the version (404),
    starting at the current step (400 invalid_transition), somebody to take the
    next step (503 no_assignee).
    """
    text = (notes or "").strip()
    if not text:
        raise ApiError(
            ErrorCode.NOTES_REQUIRED, "Notes are required.", errors={"notes": ["This field may not be blank."]}
        )
    actor = Actor.of(user)
    with transaction.atomic():
        task = _locked_task(task_id=task_id, user=user)
        item = _callers_item(task, user)
        version = task.workflow_version
        from_key = task.current_step_key
        from_step = step_of(version, from_key)
        assert from_step is not None
        if transition_id is None:
            if not is_end_step(version, from_key):
                raise ApiError(
                    ErrorCode.INVALID_TRANSITION,
                    f"Invalid transition: step {from_step['name']!r} has outgoing transitions; pick one.",
                )
            return _finish(task=task, item=item, step=from_step, actor=actor, notes=text)
        transition = transition_by_id(version, transition_id)
        if transition is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"Transition {transition_id} not found.", status_code=404)
        if transition["from"] != from_key:
            raise ApiError(
                ErrorCode.INVALID_TRANSITION,
                f"Invalid transition: {transition['name']!r} does not start at step {from_step['name']!r}.",
            )
        to_step = step_of(version, transition["to"])
        assert to_step is not None
        role = _live_role(task.tenant_id, to_step["role"])
        assignees = _pick(role, to_step) if role is not None else []
        if role is None or not assignees:
            raise ApiError(
                ErrorCode.NO_ASSIGNEE,
                f"Nobody active holds the role of step {to_step['name']!r}.",
                status_code=503,
            )

        _item_set_status(item, ItemStatus.RESOLVED, actor=actor, notes=text, acted=True)
        # The task has left this step: nobody else keeps open work on it (the
        # "mine" list would show a task they can no longer act on).
        others = [other for other in _active_items(task, step_key=from_key) if other.pk != item.pk]
        _close_items(others, actor=actor, note=f"Closed: {actor.name} moved the task on ({transition['name']}).")
        old_status = task.status
        _work_started(task)
        # Fresh `new` items on the next step: whatever was on hold is behind us.
        task.status = TaskStatus.IN_PROGRESS
        task.current_step_key = to_step["key"]
        _task_save(task, "status", "current_step_key")
        number, title = _ticket_fields(task)
        items = items_assign(
            task=task,
            step=to_step,
            role=role,
            assignees=assignees,
            origin=ItemOrigin.SYSTEM,
            actor=actor,
            ticket_number=number,
            title=title,
        )
        _audit(
            task,
            actor,
            AuditAction.TASK_TRANSITIONED,
            {
                "step": [from_key, to_step["key"]],
                "status": [old_status, task.status],
                "transition": [None, transition["name"]],
                "assignees": [None, [new.user_id for new in items]],
            },
        )
    return ActionResult(task=task, items=items)


def _finish(*, task: Task, item: TaskItem, step: dict[str, Any], actor: Actor, notes: str) -> ActionResult:
    """Complete the task from its last step (inside task_transition's transaction)."""
    _item_set_status(item, ItemStatus.RESOLVED, actor=actor, notes=notes, acted=True)
    _close_items(_active_items(task), actor=actor, note=f"Closed: {actor.name} completed the task.")
    old_status = task.status
    _work_started(task)
    task.status = TaskStatus.COMPLETED
    task.completed_at = timezone.now()
    _task_save(task, "status", "completed_at")
    if task.ticket is not None:
        task.ticket.status = "Resolved"
        task.ticket.save(update_fields=["status"])
    _send_ticket_status(task, "Resolved", "resolved")
    _audit(task, actor, AuditAction.TASK_COMPLETED, {"status": [old_status, task.status], "step": [step["key"], None]})
    return ActionResult(task=task, items=[])


def task_item_status(*, task_id: int, user: Any, status: str, notes: str = "") -> ActionResult:
    """Set the caller's active item on the current step to in_progress or on_hold.

    The task follows: on_hold when every active item on the task is on hold,
    else in_progress.
    """
    if status not in (ItemStatus.IN_PROGRESS, ItemStatus.ON_HOLD):
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            "Status must be in_progress or on_hold.",
            errors={"status": [f"{status!r} is not a valid choice."]},
        )
    actor = Actor.of(user)
    with transaction.atomic():
        task = _locked_task(task_id=task_id, user=user)
        item = _callers_item(task, user)
        old_item_status = item.status
        _item_set_status(item, ItemStatus(status), actor=actor, notes=(notes or "").strip())
        old_status = task.status
        _work_started(task)
        active = _active_items(task)
        task.status = (
            TaskStatus.ON_HOLD if all(a.status == ItemStatus.ON_HOLD for a in active) else TaskStatus.IN_PROGRESS
        )
        _task_save(task, "status")
        _audit(
            task,
            actor,
            AuditAction.TASK_ITEM_STATUS_CHANGED,
            {"item": [None, item.pk], "item_status": [old_item_status, status], "status": [old_status, task.status]},
        )
    return ActionResult(task=task, items=[])


def task_escalate(*, task_id: int, user: Any, reason: str) -> ActionResult:
    """Hand the caller's item on the current step to the step's escalation role.

    The old item becomes `escalated`; one member of the escalation role (by
    round-robin) gets a new item, origin `escalation`, with an assignment and
    an escalation notification. 400 when the step has no escalation role, 503
    no_assignee when nobody active holds it.
    """
    text = _require_text("reason", reason)
    actor = Actor.of(user)
    with transaction.atomic():
        task = _locked_task(task_id=task_id, user=user)
        item = _callers_item(task, user)
        step = step_of(task.workflow_version, task.current_step_key)
        assert step is not None
        if step.get("escalation_role") is None:
            raise ApiError(ErrorCode.INVALID_STATE, f"Step {step['name']!r} has no escalation role.")
        role = _live_role(task.tenant_id, step["escalation_role"])
        assignees = round_robin_next(role=role) if role is not None else []
        if role is None or not assignees:
            raise ApiError(
                ErrorCode.NO_ASSIGNEE,
                f"Nobody active holds the escalation role of step {step['name']!r}.",
                status_code=503,
            )
        _item_set_status(item, ItemStatus.ESCALATED, actor=actor, notes=text, acted=True)
        number, title = _ticket_fields(task)
        items = items_assign(
            task=task,
            step=step,
            role=role,
            assignees=assignees,
            origin=ItemOrigin.ESCALATION,
            actor=actor,
            ticket_number=number,
            title=title,
        )
        for new in items:
            outbox_enqueue(
                task_name="notifications.send_escalation_notification",
                kwargs={
                    "from_user_id": item.user_id,
                    "to_user_id": new.user_id,
                    "from_ticket_number": number,
                    "to_ticket_number": number,
                    "task_title": title,
                    "escalated_from_role": item.role_name,
                    "escalated_to_role": role.name,
                    "escalation_reason": text,
                    "escalated_by_id": user.user_id,
                    "escalated_by_name": user.display_name,
                },
                tenant=task.tenant,
                dedupe_key=f"escalation:{new.pk}",
            )
        _task_save(task)
        _audit(
            task,
            actor,
            AuditAction.TASK_ESCALATED,
            {
                "item": [item.pk, [new.pk for new in items]],
                "assignee": [item.user_id, [new.user_id for new in items]],
                "role": [item.role_name, role.name],
                "reason": [None, text],
            },
        )
    return ActionResult(task=task, items=items)


def task_transfer(*, task_id: int, user: Any, to_user_id: int, notes: str = "") -> ActionResult:
    """Move the oldest active item on the current step to another person (admin or ticket owner).

    The old item becomes `reassigned`; `to_user_id` (an active member of any
    live role of the tenant, else 400) gets a new item, origin `transferred`,
    on the same step and role, with an assignment and a transfer notification.
    """
    text = (notes or "").strip()
    actor = Actor.of(user)
    with transaction.atomic():
        task = _locked_task(task_id=task_id, user=user)
        if not (user.is_engine_admin or (task.ticket_owner_id is not None and task.ticket_owner_id == user.user_id)):
            raise ApiError(
                ErrorCode.PERMISSION_DENIED, "Only an admin or the ticket owner may transfer a task.", status_code=403
            )
        target = _known_member(task.tenant_id, to_user_id)
        if target is None:
            raise ApiError(
                ErrorCode.VALIDATION_ERROR,
                "The user is not an active member of any role.",
                errors={"to_user_id": [f"User {to_user_id} is not an active member of any role."]},
            )
        active = _active_items(task, step_key=task.current_step_key)
        if not active:
            raise ApiError(ErrorCode.INVALID_STATE, "The task has no active item on its current step to transfer.")
        if any(a.user_id == to_user_id for a in active):
            raise ApiError(
                ErrorCode.VALIDATION_ERROR,
                "The user already holds an active item on this step.",
                errors={"to_user_id": [f"User {to_user_id} already holds an active item on this step."]},
            )
        item = active[0]
        step = step_of(task.workflow_version, task.current_step_key)
        assert step is not None
        _item_set_status(item, ItemStatus.REASSIGNED, actor=actor, notes=text, acted=True)
        number, title = _ticket_fields(task)
        items = items_assign(
            task=task,
            step=step,
            role=item.role,
            assignees=[HandPicked.of(target, how="transfer", by=actor, from_user_id=item.user_id)],
            origin=ItemOrigin.TRANSFERRED,
            actor=actor,
            ticket_number=number,
            title=title,
        )
        new = items[0]
        outbox_enqueue(
            task_name="notifications.send_task_transfer_notification",
            args=[item.user_id, new.user_id, number, number, title, user.user_id, user.display_name, text],
            tenant=task.tenant,
            dedupe_key=f"transfer:{new.pk}",
        )
        _task_save(task)
        _audit(
            task,
            actor,
            AuditAction.TASK_TRANSFERRED,
            {"item": [item.pk, new.pk], "assignee": [item.user_id, new.user_id], "notes": [None, text]},
        )
    return ActionResult(task=task, items=items)


def task_assign(*, task_id: int, user: Any, user_id: int) -> ActionResult:
    """Admin: add an item (origin `manual`) for `user_id` on the current step, with its notification."""
    _require_admin(user)
    actor = Actor.of(user)
    with transaction.atomic():
        task = _locked_task(task_id=task_id, user=user)
        if task.status not in OPEN_STATUSES:
            raise ApiError(ErrorCode.INVALID_STATE, f"The task is {task.status}; nothing can be assigned.")
        target = _known_member(task.tenant_id, user_id)
        if target is None:
            raise ApiError(
                ErrorCode.VALIDATION_ERROR,
                "The user is not an active member of any role.",
                errors={"user_id": [f"User {user_id} is not an active member of any role."]},
            )
        if any(a.user_id == user_id for a in _active_items(task, step_key=task.current_step_key)):
            raise ApiError(
                ErrorCode.VALIDATION_ERROR,
                "The user already holds an active item on this step.",
                errors={"user_id": [f"User {user_id} already holds an active item on this step."]},
            )
        step = step_of(task.workflow_version, task.current_step_key)
        assert step is not None
        role = _live_role(task.tenant_id, step["role"])
        if role is None:
            raise ApiError(ErrorCode.INVALID_STATE, f"The role of step {step['name']!r} no longer exists.")
        number, title = _ticket_fields(task)
        items = items_assign(
            task=task,
            step=step,
            role=role,
            assignees=[HandPicked.of(target, how="manual", by=actor)],
            origin=ItemOrigin.MANUAL,
            actor=actor,
            ticket_number=number,
            title=title,
        )
        _task_save(task)
        _audit(task, actor, AuditAction.TASK_ASSIGNED, {"assignee": [None, user_id], "step": [None, step["key"]]})
    return ActionResult(task=task, items=items)


def task_cancel(*, task_id: int, user: Any, reason: str) -> ActionResult:
    """Admin: cancel an open task; its active items are closed (`resolved`, no `acted_on`, the reason noted)."""
    _require_admin(user)
    text = _require_text("reason", reason)
    actor = Actor.of(user)
    with transaction.atomic():
        task = _locked_task(task_id=task_id, user=user)
        if task.status not in OPEN_STATUSES:
            raise ApiError(ErrorCode.INVALID_STATE, f"The task is {task.status}; it cannot be cancelled.")
        _close_items(_active_items(task), actor=actor, note=f"Cancelled: {text}")
        old_status = task.status
        task.status = TaskStatus.CANCELLED
        _task_save(task, "status")
        _audit(task, actor, AuditAction.TASK_CANCELLED, {"status": [old_status, task.status], "reason": [None, text]})
    return ActionResult(task=task, items=[])
