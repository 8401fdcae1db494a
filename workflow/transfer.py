"""Workflows as portable JSON: export from one installation, import into another.

The document names roles by the auth service's `role_id` and by name, so it
resolves in a tenant whose roles came from the same auth service (by id) or
were seeded (by name). Importing creates the workflow, or replaces the draft
of the tenant's workflow with that name, and can publish it in the same go.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import F

from audit.models import AuditAction
from audit.services import Actor, audit_append
from role.models import Role
from step.models import AssignmentStrategy, Step, Transition
from workflow.models import PRIORITIES, CompletionAction, Workflow
from workflow.services import (
    Graph,
    GraphEdge,
    GraphNode,
    PublishResult,
    lock_tenant_for_publishing,
    workflow_create,
    workflow_graph_replace,
    workflow_publish,
    workflow_update,
)
from workflow_api.core.errors import ApiError, ErrorCode
from workflow_api.core.models import Tenant

FORMAT = "workflow_api.workflow/1"


def workflow_export(*, workflow: Workflow) -> dict[str, Any]:
    """The draft as a self-contained document (see `workflow_import`)."""
    steps = list(Step.objects.filter(workflow=workflow).select_related("role", "escalation_role").order_by("id"))
    key_of = {step.pk: step.key for step in steps}

    def role(value: Role | None) -> dict[str, Any] | None:
        return {"role_id": value.role_id, "name": value.name} if value else None

    return {
        "format": FORMAT,
        "workflow": {
            "name": workflow.name,
            "description": workflow.description,
            "department": workflow.department,
            "category": workflow.category,
            "sub_category": workflow.sub_category,
            "completion_action": workflow.completion_action,
            "sla": {p: int(getattr(workflow, f"sla_{p}").total_seconds()) for p in PRIORITIES},
        },
        "steps": [
            {
                "key": step.key,
                "name": step.name,
                "instruction": step.instruction,
                "role": role(step.role),
                "escalation_role": role(step.escalation_role),
                "weight": str(step.weight),
                "is_start": step.is_start,
                "is_end": step.is_end,
                "x": step.x,
                "y": step.y,
                "assignment_strategy": step.assignment_strategy,
                "assignee_count": step.assignee_count,
            }
            for step in steps
        ],
        "transitions": [
            {"from": key_of[t.from_step_id], "to": key_of[t.to_step_id], "name": t.name}
            for t in Transition.objects.filter(workflow=workflow).order_by("id")
        ],
    }


class _Errors:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, where: str, message: str) -> None:
        self.errors.setdefault(where, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            where, messages = next(iter(self.errors.items()))
            raise ApiError(ErrorCode.VALIDATION_ERROR, f"{where}: {messages[0]}", errors=self.errors)


def _text(doc: dict[str, Any], name: str, where: str, errors: _Errors, *, required: bool = True) -> str:
    value = doc.get(name, "" if not required else None)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        errors.add(f"{where}.{name}", "must be a non-empty string" if required else "must be a string")
        return ""
    return value


def _position(doc: dict[str, Any], name: str) -> int:
    value = doc.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _resolve_role(tenant: Tenant, ref: Any, where: str, errors: _Errors) -> int | None:
    """The engine's pk of the referenced role in this tenant (by auth id, else by name).

    By name, a synced role is preferred to a seeded one (which has no auth id yet).
    """
    if ref is None:
        return None
    if not isinstance(ref, dict):
        errors.add(where, "must be an object {role_id, name} or null")
        return None
    live = Role.objects.filter(tenant=tenant, deleted_at__isnull=True)
    role = None
    if isinstance(ref.get("role_id"), int) and not isinstance(ref.get("role_id"), bool):
        role = live.filter(role_id=ref["role_id"]).first()
    if role is None and isinstance(ref.get("name"), str):
        role = live.filter(name__iexact=ref["name"].strip()).order_by(F("role_id").asc(nulls_last=True), "id").first()
    if role is None:
        errors.add(where, f"no role with role_id {ref.get('role_id')!r} or name {ref.get('name')!r} in this tenant")
        return None
    return role.pk


def _parse(tenant: Tenant, document: Any) -> tuple[dict[str, Any], Graph]:
    errors = _Errors()
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"format: expected a workflow document with format {FORMAT!r}.",
            errors={"format": [f"must be {FORMAT!r}"]},
        )
    head = document.get("workflow")
    if not isinstance(head, dict):
        raise ApiError(ErrorCode.VALIDATION_ERROR, "workflow: must be an object.", errors={"workflow": ["required"]})
    fields: dict[str, Any] = {
        "name": _text(head, "name", "workflow", errors),
        "description": _text(head, "description", "workflow", errors, required=False),
        "department": _text(head, "department", "workflow", errors),
        "category": _text(head, "category", "workflow", errors),
        "sub_category": _text(head, "sub_category", "workflow", errors, required=False),
        "completion_action": _text(head, "completion_action", "workflow", errors, required=False),
    }
    if fields["completion_action"] not in CompletionAction.values:
        errors.add("workflow.completion_action", f"must be one of {CompletionAction.values}")
    sla = head.get("sla")
    if not isinstance(sla, dict):
        errors.add("workflow.sla", "must be an object of seconds per priority")
        sla = {}
    for priority in PRIORITIES:
        seconds = sla.get(priority)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            errors.add(f"workflow.sla.{priority}", "must be a positive number of seconds")
        else:
            fields[f"sla_{priority}"] = timedelta(seconds=seconds)

    nodes = []
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, list):
        errors.add("steps", "must be a list")
        raw_steps = []
    for index, raw in enumerate(raw_steps):
        where = f"steps[{index}]"
        if not isinstance(raw, dict):
            errors.add(where, "must be an object")
            continue
        key = _text(raw, "key", where, errors)
        try:
            weight = Decimal(str(raw.get("weight", "1")))
        except InvalidOperation:
            weight = Decimal("NaN")
        if isinstance(raw.get("weight"), bool) or not weight.is_finite():
            # NaN would make validation itself fail (NaN cannot be compared).
            errors.add(f"{where}.weight", "must be a number")
            weight = Decimal("1")
        strategy = raw.get("assignment_strategy", AssignmentStrategy.ROUND_ROBIN)
        if strategy not in AssignmentStrategy.values:
            errors.add(f"{where}.assignment_strategy", f"must be one of {AssignmentStrategy.values}")
        count = raw.get("assignee_count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            errors.add(f"{where}.assignee_count", "must be a whole number of at least 1")
            count = 1
        nodes.append(
            GraphNode(
                id=key,
                key=key,
                name=_text(raw, "name", where, errors),
                instruction=_text(raw, "instruction", where, errors, required=False),
                role_id=None,
                role_pk=_resolve_role(tenant, raw.get("role"), f"{where}.role", errors),
                escalation_role_pk=_resolve_role(
                    tenant, raw.get("escalation_role"), f"{where}.escalation_role", errors
                ),
                weight=weight,
                is_start=raw.get("is_start") is True,
                is_end=raw.get("is_end") is True,
                x=_position(raw, "x"),
                y=_position(raw, "y"),
                assignment_strategy=strategy,
                assignee_count=count,
            )
        )
    edges = []
    raw_transitions = document.get("transitions")
    if not isinstance(raw_transitions, list):
        errors.add("transitions", "must be a list")
        raw_transitions = []
    for index, raw in enumerate(raw_transitions):
        where = f"transitions[{index}]"
        if not isinstance(raw, dict):
            errors.add(where, "must be an object")
            continue
        edges.append(
            GraphEdge(
                id=f"t{index}",
                from_id=_text(raw, "from", where, errors),
                to_id=_text(raw, "to", where, errors),
                name=_text(raw, "name", where, errors),
            )
        )
    errors.raise_if_any()
    return fields, Graph(nodes=nodes, edges=edges)


def workflow_import(
    *, tenant: Tenant, document: Any, actor: Actor, publish: bool = False
) -> tuple[Workflow, PublishResult | None]:
    """Create (or replace the draft of) the workflow the document describes; optionally publish it.

    All or nothing: a bad document raises ApiError (400, field errors) and a
    graph that cannot be stored or published raises WorkflowInvalid; nothing
    is written in either case.
    """
    fields, graph = _parse(tenant, document)
    with transaction.atomic():
        if publish:
            # Publishing locks the tenant before any workflow row; so must we, before
            # workflow_update locks this workflow's row, or a concurrent publish deadlocks.
            lock_tenant_for_publishing(tenant.pk)
        existing = Workflow.objects.filter(tenant=tenant, name=fields["name"], deleted_at__isnull=True).first()
        if existing is None:
            workflow = workflow_create(tenant=tenant, actor=actor, **fields)
        else:
            workflow = workflow_update(workflow=existing, actor=actor, **fields)
            # Stored steps are matched to the document's by key, so they keep their ids.
            by_key = {step.key: str(step.pk) for step in Step.objects.filter(workflow=workflow)}
            for node in graph.nodes:
                node.id = by_key.get(node.key or "", node.id)
            for edge in graph.edges:
                edge.from_id = by_key.get(edge.from_id, edge.from_id)
                edge.to_id = by_key.get(edge.to_id, edge.to_id)
        workflow = workflow_graph_replace(workflow=workflow, graph=graph, actor=actor)
        audit_append(
            tenant=tenant,
            actor=actor,
            action=AuditAction.WORKFLOW_IMPORTED,
            target_type="workflow",
            target_id=workflow.pk,
            target_display=workflow.name,
            changes={"steps": [None, len(graph.nodes)], "transitions": [None, len(graph.edges)]},
        )
        result = workflow_publish(workflow=workflow, actor=actor) if publish else None
    return workflow, result
