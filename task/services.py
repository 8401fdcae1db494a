"""Starting a ticket's task: workflow version, ticket owner, first assignments, SLA targets.

`task_start_for_ticket` is called by ticket allocation (tickets.services)
inside its transaction. It either starts the task completely — the Task
pinned to the matched workflow's current version at its start step, the
ticket owner by round-robin over the Ticket Coordinator role (none if the
role is empty), the start step's items by the step's strategy, item history,
the audit row and one assignment notification per item in the outbox — or
raises NotAllocatable with the reason and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from audit.models import AuditAction
from audit.services import Actor, audit_append
from role.assignment import Assignee, least_loaded_next, round_robin_next
from role.models import Role
from task.models import ACTIVE_ITEM_STATUSES, ItemOrigin, ItemStatus, Task, TaskItem, TaskItemHistory
from workflow.models import WorkflowVersion
from workflow.selectors import workflow_match
from workflow_api.core.outbox import outbox_enqueue

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


def _pick(role: Role, step: dict[str, Any]) -> list[Assignee]:
    count = step.get("assignment", {}).get("count", 1)
    if step.get("assignment", {}).get("strategy") == "least_loaded":
        open_counts = dict(
            TaskItem.objects.filter(tenant_id=role.tenant_id, role=role, status__in=ACTIVE_ITEM_STATUSES)
            .values_list("user_id")
            .annotate(n=Count("id"))
            .values_list("user_id", "n")
        )
        return least_loaded_next(role=role, count=count, open_counts=open_counts)
    return round_robin_next(role=role, count=count)


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
    now = timezone.now()
    target = item_target(version=task.workflow_version, step_key=step["key"], priority=task.priority, assigned_on=now)
    items = TaskItem.objects.bulk_create(
        [
            TaskItem(
                tenant_id=task.tenant_id,
                task=task,
                step_key=step["key"],
                step_name=step["name"],
                role=role,
                role_name=role.name,
                user_id=assignee.user_id,
                user_name=assignee.full_name,
                user_email=assignee.email,
                status=ItemStatus.NEW,
                origin=origin,
                assigned_on=now,
                target_resolution=target,
                assignment_reason=assignee.reason,
            )
            for assignee in assignees
        ]
    )
    TaskItemHistory.objects.bulk_create(
        [
            TaskItemHistory(
                tenant_id=task.tenant_id,
                item=item,
                status=ItemStatus.NEW,
                at=now,
                actor_id=actor.id,
                actor_name=actor.name,
            )
            for item in items
        ]
    )
    for item in items:
        outbox_enqueue(
            task_name="notifications.send_assignment_notification",
            args=[item.user_id, ticket_number, title, role.name],
            tenant=task.tenant,
            dedupe_key=f"assignment:{item.pk}",
        )
    return items


@dataclass(frozen=True)
class StartedTask:
    task: Task
    items: list[TaskItem]


def task_start_for_ticket(*, ticket: Ticket, actor: Actor) -> StartedTask:
    """Start the ticket's task, or raise NotAllocatable (nothing written). Joins the caller's transaction."""
    with transaction.atomic():
        workflow = workflow_match(
            tenant=ticket.tenant,
            department=ticket.department,
            category=ticket.category,
            sub_category=ticket.sub_category,
        )
        if workflow is None:
            raise NotAllocatable(
                f"no published workflow matches {ticket.department!r} / {ticket.category!r} / {ticket.sub_category!r}"
            )
        version = workflow.current_version
        assert version is not None
        start = next(step for step in version.definition["steps"] if step["is_start"])
        role = _live_role(ticket.tenant_id, start["role"])
        if role is None:
            raise NotAllocatable(f"the role of step {start['name']!r} no longer exists")
        assignees = _pick(role, start)
        if not assignees:
            raise NotAllocatable(f"nobody active holds the role {role.name!r} (step {start['name']!r})")

        owner_role = (
            Role.objects.filter(tenant_id=ticket.tenant_id, name__iexact=TICKET_OWNER_ROLE, deleted_at__isnull=True)
            .order_by("role_id", "id")
            .first()
        )
        # An empty (or missing) coordinator role leaves the task without an owner.
        owners = round_robin_next(role=owner_role) if owner_role is not None else []
        owner = owners[0] if owners else None

        task = Task.objects.create(
            tenant_id=ticket.tenant_id,
            ticket=ticket,
            workflow=workflow,
            workflow_version=version,
            current_step_key=start["key"],
            priority=ticket.priority,
            ticket_owner_id=owner.user_id if owner else None,
            ticket_owner_name=owner.full_name if owner else "",
            target_resolution=ticket.received_at + sla_for(version, ticket.priority),
        )
        items = items_assign(
            task=task,
            step=start,
            role=role,
            assignees=assignees,
            origin=ItemOrigin.SYSTEM,
            actor=actor,
            ticket_number=ticket.ticket_number,
            title=ticket.subject,
        )
        audit_append(
            tenant=ticket.tenant,
            actor=actor,
            action=AuditAction.TASK_CREATED,
            target_type="task",
            target_id=task.pk,
            target_display=f"{ticket.ticket_number} {ticket.subject}"[:255],
            changes={
                "workflow": [None, workflow.name],
                "workflow_version": [None, version.number],
                "step": [None, start["key"]],
                "assignees": [None, [item.user_id for item in items]],
                "ticket_owner": [None, task.ticket_owner_id],
            },
        )
    return StartedTask(task=task, items=items)
