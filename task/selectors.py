"""Reads of tasks for the API and the admin, always scoped to one tenant and to what the caller may see.

Visibility: an engine admin sees every task of the tenant; anyone else sees
the tasks on which they hold an item (any status, so finished work stays
visible) or whose ticket they own. Everything else is "not found".

Cost: a list is the count, one query for the page and one for the step
names of the versions on the page (`task_steps`), whatever the page size;
the detail is three (task, items, their history). The list selectors return
the lean, filterable rows (the tenant's tasks, visibility, newest first);
`task_rows` adds the ticket and workflow columns a list row shows, and the
list's paginator (task.api.pagination) applies it to the page only, so the
count never joins tables it does not filter on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import audit_timeline
from task.models import ACTIVE_ITEM_STATUSES, OPEN_STATUSES, Task, TaskItem, TaskItemHistory
from workflow.models import WorkflowVersion
from workflow_api.core.auth import TokenUser
from workflow_api.core.models import Tenant


@dataclass(frozen=True)
class StepRef:
    """A step of a workflow version as the API shows it: {id: key, name, role}."""

    key: str
    name: str
    role: str | None


def _items_of(tenant: Tenant, user_id: int, *, active: bool) -> Exists:
    # The tenant too: an item is always of its task's tenant, and it lets the (tenant, user, status)
    # index find the caller's items by all three columns.
    items = TaskItem.objects.for_tenant(tenant).filter(task=OuterRef("pk"), user_id=user_id)
    if active:
        items = items.filter(status__in=ACTIVE_ITEM_STATUSES)
    return Exists(items)


def task_rows(queryset: QuerySet[Task]) -> QuerySet[Task]:
    """`queryset` with the columns a list row shows from the ticket and the workflow, order kept.

    Annotated rather than joined in whole: the ticket's snapshot is large and a
    row needs two fields of it. Apply it to the rows that are shown, not to a
    queryset that is counted: `count()` keeps the joins of the annotations.
    """
    return queryset.annotate(
        ticket_number=F("ticket__ticket_number"),
        ticket_subject=F("ticket__subject"),
        workflow_name=F("workflow__name"),
    )


def task_visible(*, tenant: Tenant, user: TokenUser) -> QuerySet[Task]:
    """The tenant's tasks the caller may see (see the module docstring), unordered rows."""
    tasks = Task.objects.for_tenant(tenant)
    if user.is_engine_admin:
        return tasks
    return tasks.filter(Q(ticket_owner_id=user.user_id) | _items_of(tenant, user.user_id, active=False))


def task_list_for_user(*, tenant: Tenant, user: TokenUser) -> QuerySet[Task]:
    """`GET /tasks/`: the visible tasks, newest first (without the row columns: `task_rows`)."""
    return task_visible(tenant=tenant, user=user).order_by("-id")


def task_list_mine(*, tenant: Tenant, user: TokenUser) -> QuerySet[Task]:
    """Tasks where the caller holds an active (new, in_progress, on_hold) item, newest first (`task_rows`)."""
    tasks = Task.objects.for_tenant(tenant)
    return tasks.filter(_items_of(tenant, user.user_id, active=True)).order_by("-id")


def task_list_owned(*, tenant: Tenant, user: TokenUser) -> QuerySet[Task]:
    """Tasks whose ticket owner is the caller, newest first (`task_rows`)."""
    return Task.objects.for_tenant(tenant).filter(ticket_owner_id=user.user_id).order_by("-id")


# --- Filters the list offers (task.api.filters calls these) ---------------------------


def tasks_with_active_assignee(queryset: QuerySet[Task], tenant: Tenant, user_id: int) -> QuerySet[Task]:
    return queryset.filter(_items_of(tenant, user_id, active=True))


def tasks_with_active_role(queryset: QuerySet[Task], role_name: str) -> QuerySet[Task]:
    items = TaskItem.objects.filter(task=OuterRef("pk"), role_name__iexact=role_name, status__in=ACTIVE_ITEM_STATUSES)
    return queryset.filter(Exists(items))


def tasks_overdue(queryset: QuerySet[Task]) -> QuerySet[Task]:
    """Open tasks whose target resolution has passed."""
    return queryset.filter(status__in=OPEN_STATUSES, target_resolution__lt=timezone.now())


def tasks_matching(queryset: QuerySet[Task], text: str) -> QuerySet[Task]:
    """Ticket number or subject containing `text`, any letter case."""
    return queryset.filter(Q(ticket__ticket_number__icontains=text) | Q(ticket__subject__icontains=text))


# --- Steps, detail, history -----------------------------------------------------------


def task_steps(tasks: list[Task]) -> dict[tuple[int, str], StepRef]:
    """The steps of the versions `tasks` run on, by (version id, step key): one query for any number of tasks."""
    version_ids = {task.workflow_version_id for task in tasks}
    if not version_ids:
        return {}
    steps: dict[tuple[int, str], StepRef] = {}
    for version_id, definition in (
        WorkflowVersion.objects.filter(pk__in=version_ids).order_by().values_list("id", "definition")
    ):
        for step in definition["steps"]:
            role = step.get("role")
            steps[(version_id, step["key"])] = StepRef(
                key=step["key"], name=step["name"], role=role["name"] if role else None
            )
    return steps


def task_current_step(task: Task) -> StepRef:
    """The task's current step read from its own (already loaded) workflow version."""
    step: dict[str, Any] | None = next(
        (step for step in task.workflow_version.definition["steps"] if step["key"] == task.current_step_key), None
    )
    if step is None:  # a version never loses a step; keep the key visible if it ever did
        return StepRef(key=task.current_step_key, name=task.current_step_key, role=None)
    role = step.get("role")
    return StepRef(key=step["key"], name=step["name"], role=role["name"] if role else None)


def task_get(*, tenant: Tenant, user: TokenUser, task_id: int) -> Task | None:
    """One visible task with its version, items and their history (three queries), or None."""
    items = TaskItem.objects.order_by("id").prefetch_related(
        Prefetch("history", queryset=TaskItemHistory.objects.order_by("at", "id"))
    )
    return (
        task_rows(task_visible(tenant=tenant, user=user))
        .select_related("workflow_version")
        .prefetch_related(Prefetch("items", queryset=items))
        .filter(pk=task_id)
        .first()
    )


def task_history(*, tenant: Tenant, task: Task) -> QuerySet[AuditEvent]:
    """The task's audit timeline, oldest first."""
    return audit_timeline(tenant=tenant, target_type="task", target_id=task.pk)
