"""Reads for the designer's API and admin, and the one matching query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import (
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
)

from step.models import Step, Transition
from task.models import ItemStatus, Task, TaskItem, TaskStatus
from workflow.definition import normalise_key
from workflow.models import PRIORITIES, Workflow, WorkflowStatus, WorkflowVersion
from workflow_api.core.models import Tenant


def workflow_list(*, tenant: Tenant) -> QuerySet[Workflow]:
    return Workflow.objects.for_tenant(tenant).filter(deleted_at__isnull=True).select_related("current_version")


def workflow_match(*, tenant: Tenant, department: str, category: str, sub_category: str | None) -> Workflow | None:
    """The published workflow for a ticket's routing keys, or None. One query.

    All three keys equal wins; else the workflow with equal department and
    category and a blank sub-category. Comparisons ignore letter case and
    surrounding spaces. Publishing refuses a second workflow with the same
    keys, so at most one row can tie; the id order makes even that
    deterministic.
    """
    sub = normalise_key(sub_category)
    # At most one exact and one blank-sub-category candidate (publishing sees
    # to it), so the preference is applied here rather than in an ORDER BY
    # CASE: this runs for every ticket, and that expression costs more to
    # build than the query costs to run.
    candidates = WorkflowVersion.objects.for_tenant(tenant).filter(
        match_department=normalise_key(department),
        match_category=normalise_key(category),
        match_sub_category__in=[sub, ""],
        workflow__status=WorkflowStatus.PUBLISHED,
        workflow__deleted_at__isnull=True,
        workflow__current_version=F("pk"),
    )
    version = min(
        candidates.select_related("workflow"),
        key=lambda candidate: (candidate.match_sub_category != sub, candidate.workflow_id),
        default=None,
    )
    if version is None:
        return None
    workflow = version.workflow
    workflow.current_version = version
    return workflow


def workflow_graph(*, workflow: Workflow) -> dict[str, Any]:
    """The draft graph in the API's shape (node ids are step ids; roles by the auth service's id)."""
    steps = Step.objects.filter(workflow=workflow).select_related("role", "escalation_role").order_by("id")
    transitions = Transition.objects.filter(workflow=workflow).order_by("id")
    return {
        "nodes": [
            {
                "id": step.pk,
                "key": step.key,
                "name": step.name,
                "role_id": step.role.role_id if step.role else None,
                "role_pk": step.role_id,
                "role_name": step.role.name if step.role else None,
                "escalate_to_role_id": step.escalation_role.role_id if step.escalation_role else None,
                "escalate_to_role_pk": step.escalation_role_id,
                "weight": step.weight,
                "is_start": step.is_start,
                "is_end": step.is_end,
                "instruction": step.instruction,
                "x": step.x,
                "y": step.y,
                "assignment_strategy": step.assignment_strategy,
                "assignee_count": step.assignee_count,
            }
            for step in steps
        ],
        "edges": [{"id": t.pk, "from": t.from_step_id, "to": t.to_step_id, "name": t.name} for t in transitions],
        "edit_version": workflow.edit_version,
    }


@dataclass(frozen=True)
class VersionDiff:
    steps_added: list[str]
    steps_removed: list[str]
    steps_changed: dict[str, dict[str, list[Any]]]
    transitions_added: list[str]
    transitions_removed: list[str]
    other_changed: dict[str, list[Any]]


def _transition_label(t: dict[str, Any]) -> str:
    return f"{t['from']} —{t['name']}→ {t['to']}"


def version_diff(*, old: dict[str, Any], new: dict[str, Any]) -> VersionDiff:
    """What changed between two definitions: steps by key, transitions by (from, to, name)."""
    old_steps = {s["key"]: s for s in old["steps"]}
    new_steps = {s["key"]: s for s in new["steps"]}
    changed: dict[str, dict[str, list[Any]]] = {}
    for key in sorted(old_steps.keys() & new_steps.keys()):
        fields = {
            name: [old_steps[key].get(name), new_steps[key].get(name)]
            for name in sorted(old_steps[key].keys() | new_steps[key].keys())
            if name not in ("x", "y") and old_steps[key].get(name) != new_steps[key].get(name)
        }
        if fields:
            changed[key] = fields
    old_t = {_transition_label(t) for t in old["transitions"]}
    new_t = {_transition_label(t) for t in new["transitions"]}
    other = {
        f"workflow.{name}": [old["workflow"].get(name), new["workflow"].get(name)]
        for name in sorted(old["workflow"].keys() | new["workflow"].keys())
        if old["workflow"].get(name) != new["workflow"].get(name)
    }
    other.update(
        {
            f"sla.{p}": [old["sla"].get(p), new["sla"].get(p)]
            for p in PRIORITIES
            if old["sla"].get(p) != new["sla"].get(p)
        }
    )
    return VersionDiff(
        steps_added=sorted(new_steps.keys() - old_steps.keys()),
        steps_removed=sorted(old_steps.keys() - new_steps.keys()),
        steps_changed=changed,
        transitions_added=sorted(new_t - old_t),
        transitions_removed=sorted(old_t - new_t),
        other_changed=other,
    )


def _average_seconds_per_step(workflow: Workflow) -> dict[str, float]:
    """{step key: mean seconds from assignment to the assignee's action}, over the items that finished a step.

    An item finishes a step when its assignee moves the task on or completes it
    (`resolved` with `acted_on`). Items handed on by escalation or transfer, or
    closed because someone else acted, are left out: they did not finish the
    step. Keys are step keys of any version the tasks ran on; a step nobody
    has finished yet has no entry. One query.
    """
    rows = (
        TaskItem.objects.filter(task__workflow=workflow, status=ItemStatus.RESOLVED, acted_on__isnull=False)
        .values("step_key")
        .annotate(
            average=Avg(
                ExpressionWrapper(F("acted_on") - F("assigned_on"), output_field=DurationField()),
                output_field=DurationField(),
            )
        )
        .order_by("step_key")
        .values_list("step_key", "average")
    )
    return {key: average.total_seconds() for key, average in rows if average is not None}


def workflow_statistics(*, workflow: Workflow) -> dict[str, Any]:
    """Task counts by status and by current step, and the average time an assignee takes per step."""
    by_status = dict(
        Task.objects.filter(workflow=workflow).values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    by_step = dict(
        Task.objects.filter(
            workflow=workflow, status__in=[TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.ON_HOLD]
        )
        .values_list("current_step_key")
        .annotate(n=Count("id"))
        .values_list("current_step_key", "n")
    )
    return {
        "workflow": workflow.pk,
        "tasks_total": sum(by_status.values()),
        "tasks_by_status": {status: by_status.get(status, 0) for status in TaskStatus.values},
        "open_tasks_by_step": {step.key: by_step.get(step.key, 0) for step in Step.objects.filter(workflow=workflow)},
        "average_seconds_per_step": _average_seconds_per_step(workflow),
    }


def workflows_referencing_role(*, tenant: Tenant, role_pk: int) -> QuerySet[Workflow]:
    return (
        workflow_list(tenant=tenant).filter(Q(steps__role_id=role_pk) | Q(steps__escalation_role_id=role_pk)).distinct()
    )
