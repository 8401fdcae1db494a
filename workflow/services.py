"""Every write a workflow designer makes: create, edit, graph, publish, lifecycle, migration, import.

Each service owns its transaction and writes its audit row inside it.
Edits of the draft are optimistic: a caller passes the `edit_version` it
read; if someone saved in between, EditConflict is raised and nothing is
written (the admin shows it as a form error, the API as 409).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify

from audit.models import AuditAction
from audit.services import Actor, audit_append
from role.models import Role
from step.models import Step, Transition
from task.models import OPEN_STATUSES, Task
from tickets.services import tickets_wake_waiting
from workflow.definition import (
    STRUCTURAL_CODES,
    Draft,
    DraftStep,
    DraftTransition,
    Problem,
    RoleRef,
    definition_hash,
    definition_of,
    draft_validate,
    normalise_key,
    sla_problems,
)
from workflow.models import PRIORITIES, Workflow, WorkflowStatus, WorkflowVersion
from workflow_api.core.errors import ApiError, ErrorCode
from workflow_api.core.models import Tenant

WORKFLOW_FIELDS = (
    "name",
    "description",
    "department",
    "category",
    "sub_category",
    "completion_action",
    *(f"sla_{priority}" for priority in PRIORITIES),
)


class EditConflict(ApiError):
    def __init__(self, workflow: Workflow) -> None:
        super().__init__(
            ErrorCode.EDIT_CONFLICT,
            f"Workflow {workflow.name!r} was changed by someone else since you loaded it "
            f"(now at edit version {workflow.edit_version}). Reload it and apply your change again.",
            status_code=409,
        )


class WorkflowInvalid(ApiError):
    def __init__(self, problems: list[Problem], message: str = "The workflow is not valid.") -> None:
        super().__init__(ErrorCode.WORKFLOW_INVALID, message, errors={"problems": [p.as_dict() for p in problems]})
        self.problems = problems


# --- reading the stored draft -------------------------------------------------


def _role_ref(role: Role | None) -> RoleRef | None:
    return RoleRef(pk=role.pk, role_id=role.role_id, name=role.name) if role is not None else None


def _live_role_ref(role: Role | None) -> RoleRef | None:
    return _role_ref(role) if role is not None and role.deleted_at is None else None


def _deleted_role_name(role: Role | None) -> str | None:
    """A stored step may still point at a role the auth service deleted since: a problem, not a role."""
    return role.name if role is not None and role.deleted_at is not None else None


def draft_from_db(workflow: Workflow) -> Draft:
    steps = list(Step.objects.filter(workflow=workflow).select_related("role", "escalation_role").order_by("id"))
    transitions = list(Transition.objects.filter(workflow=workflow).order_by("id"))
    return Draft(
        department=workflow.department,
        category=workflow.category,
        sub_category=workflow.sub_category,
        sla=dict(workflow.sla()),  # type: ignore[arg-type]
        steps=[
            DraftStep(
                ref=str(step.pk),
                key=step.key,
                name=step.name,
                role=_live_role_ref(step.role),
                unknown_role=_deleted_role_name(step.role),
                escalation_role=_live_role_ref(step.escalation_role),
                unknown_escalation_role=_deleted_role_name(step.escalation_role),
                weight=step.weight,
                is_start=step.is_start,
                is_end=step.is_end,
                instruction=step.instruction,
                x=step.x,
                y=step.y,
                assignment_strategy=step.assignment_strategy,
                assignee_count=step.assignee_count,
            )
            for step in steps
        ],
        transitions=[
            DraftTransition(ref=str(t.pk), from_ref=str(t.from_step_id), to_ref=str(t.to_step_id), name=t.name)
            for t in transitions
        ],
    )


def _conflicting_workflow(workflow: Workflow) -> str | None:
    """The name of another published workflow of the tenant with the same matching keys."""
    other = (
        Workflow.objects.filter(
            tenant_id=workflow.tenant_id,
            status=WorkflowStatus.PUBLISHED,
            deleted_at__isnull=True,
            current_version__match_department=normalise_key(workflow.department),
            current_version__match_category=normalise_key(workflow.category),
            current_version__match_sub_category=normalise_key(workflow.sub_category),
        )
        .exclude(pk=workflow.pk)
        .values_list("name", flat=True)
        .first()
    )
    return other


def workflow_problems(workflow: Workflow) -> list[Problem]:
    """Everything that stops the stored draft from being published."""
    return draft_validate(draft_from_db(workflow), conflicting_workflow=_conflicting_workflow(workflow))


# --- optimistic locking ---------------------------------------------------------


def _lock_for_edit(*, workflow_id: int, expected_edit_version: int | None) -> Workflow:
    """Lock the row; refuse if the caller's copy is stale; bump the edit version."""
    workflow = Workflow.objects.select_for_update().get(pk=workflow_id, deleted_at__isnull=True)
    if expected_edit_version is not None and expected_edit_version != workflow.edit_version:
        raise EditConflict(workflow)
    Workflow.objects.filter(pk=workflow.pk).update(edit_version=F("edit_version") + 1, updated_at=timezone.now())
    workflow.edit_version += 1
    return workflow


def _audit_workflow(workflow: Workflow, *, actor: Actor, action: AuditAction, changes: dict[str, Any]) -> None:
    audit_append(
        tenant=workflow.tenant,
        actor=actor,
        action=action,
        target_type="workflow",
        target_id=workflow.pk,
        target_display=workflow.name,
        changes=changes,
    )


def _snapshot(workflow: Workflow) -> dict[str, Any]:
    return {name: getattr(workflow, name) for name in WORKFLOW_FIELDS}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {key: [str(before[key]), str(after[key])] for key in after if before[key] != after[key]}


# --- create / edit -------------------------------------------------------------


def workflow_create(*, tenant: Tenant, actor: Actor, **fields: Any) -> Workflow:
    """Create a draft workflow. `fields` are Workflow fields (name, department, sla_high, …)."""
    unknown = set(fields) - set(WORKFLOW_FIELDS)
    if unknown:
        raise ValueError(f"unknown workflow fields: {sorted(unknown)}")
    with transaction.atomic():
        _refuse_duplicate_name(tenant=tenant, name=fields.get("name", ""), exclude_pk=None)
        workflow = Workflow(tenant=tenant, **fields)
        _refuse_bad_sla(workflow)
        workflow.save()
        _audit_workflow(
            workflow,
            actor=actor,
            action=AuditAction.WORKFLOW_CREATED,
            changes={key: [None, str(value)] for key, value in _snapshot(workflow).items()},
        )
    return workflow


def _refuse_bad_sla(workflow: Workflow) -> None:
    """The SLA is checked on every save, not only at publish: urgent < high < medium < low."""
    problems = sla_problems(dict(workflow.sla()))  # type: ignore[arg-type]
    if problems:
        raise ApiError(ErrorCode.VALIDATION_ERROR, f"sla: {problems[0].message}", errors={"sla": [problems[0].message]})


def _refuse_duplicate_name(*, tenant: Tenant, name: str, exclude_pk: int | None) -> None:
    clash = Workflow.objects.filter(tenant=tenant, name=name, deleted_at__isnull=True)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"name: a workflow named {name!r} already exists.",
            errors={"name": [f"A workflow named {name!r} already exists."]},
        )


def workflow_update(
    *, workflow: Workflow, actor: Actor, expected_edit_version: int | None = None, **fields: Any
) -> Workflow:
    """Change the draft's own fields (not its graph). Raises EditConflict on a stale edit."""
    unknown = set(fields) - set(WORKFLOW_FIELDS)
    if unknown:
        raise ValueError(f"unknown workflow fields: {sorted(unknown)}")
    with transaction.atomic():
        locked = _lock_for_edit(workflow_id=workflow.pk, expected_edit_version=expected_edit_version)
        if "name" in fields:
            _refuse_duplicate_name(tenant=locked.tenant, name=fields["name"], exclude_pk=locked.pk)
        before = _snapshot(locked)
        for name, value in fields.items():
            setattr(locked, name, value)
        _refuse_bad_sla(locked)
        locked.updated_at = timezone.now()
        locked.save()
        changes = _changes(before, _snapshot(locked))
        if changes:
            _audit_workflow(locked, actor=actor, action=AuditAction.WORKFLOW_UPDATED, changes=changes)
    return locked


# --- the graph -------------------------------------------------------------------


@dataclass
class GraphNode:
    """A node of a graph PUT: `id` is a stored step id, or any string the client picked for a new one."""

    id: str
    name: str
    role_id: int | None  # the auth service's role id
    escalate_to_role_id: int | None = None
    weight: Decimal = Decimal("1")
    is_start: bool = False
    is_end: bool = False
    instruction: str = ""
    x: int = 0
    y: int = 0
    key: str | None = None
    assignment_strategy: str = "round_robin"
    assignee_count: int = 1
    # The engine's own Role pk, used when `role_id` / `escalate_to_role_id` is not given:
    # a seeded role has no auth-service id until a sync adopts it.
    role_pk: int | None = None
    escalation_role_pk: int | None = None


@dataclass
class GraphEdge:
    id: str
    from_id: str
    to_id: str
    name: str


@dataclass
class Graph:
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)


def _unique_key(base: str, taken: set[str]) -> str:
    base = slugify(base)[:90] or "step"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    taken.add(key)
    return key


def _draft_from_graph(workflow: Workflow, graph: Graph, existing: dict[str, Step]) -> Draft:
    role_ids = {n.role_id for n in graph.nodes} | {n.escalate_to_role_id for n in graph.nodes}
    role_pks = {n.role_pk for n in graph.nodes} | {n.escalation_role_pk for n in graph.nodes}
    candidates = Role.objects.filter(
        Q(role_id__in=[r for r in role_ids if r is not None]) | Q(pk__in=[r for r in role_pks if r is not None]),
        tenant_id=workflow.tenant_id,
        deleted_at__isnull=True,
    )
    roles = {role.role_id: role for role in candidates if role.role_id is not None}
    roles_by_pk = {role.pk: role for role in candidates}

    def resolve(role_id: int | None, role_pk: int | None) -> tuple[Role | None, Any]:
        """The role a node names, and what to call it in a problem when it does not exist."""
        if role_id is not None:
            role = roles.get(role_id)
            return role, None if role is not None else role_id
        if role_pk is not None:
            role = roles_by_pk.get(role_pk)
            return role, None if role is not None else f"#{role_pk}"
        return None, None

    taken = {step.key for step in existing.values() if step.key}
    taken |= {node.key for node in graph.nodes if node.key}
    steps = []
    for node in graph.nodes:
        stored = existing.get(node.id)
        key = stored.key if stored is not None else (slugify(node.key) if node.key else _unique_key(node.name, taken))
        role, unknown_role = resolve(node.role_id, node.role_pk)
        escalation, unknown_escalation = resolve(node.escalate_to_role_id, node.escalation_role_pk)
        steps.append(
            DraftStep(
                ref=node.id,
                key=key,
                name=node.name,
                role=_role_ref(role),
                unknown_role=unknown_role,
                escalation_role=_role_ref(escalation),
                unknown_escalation_role=unknown_escalation,
                weight=node.weight,
                is_start=node.is_start,
                is_end=node.is_end,
                instruction=node.instruction,
                x=node.x,
                y=node.y,
                assignment_strategy=node.assignment_strategy,
                assignee_count=node.assignee_count,
            )
        )
    return Draft(
        department=workflow.department,
        category=workflow.category,
        sub_category=workflow.sub_category,
        sla=dict(workflow.sla()),  # type: ignore[arg-type]
        steps=steps,
        transitions=[DraftTransition(ref=e.id, from_ref=e.from_id, to_ref=e.to_id, name=e.name) for e in graph.edges],
    )


def workflow_graph_replace(
    *, workflow: Workflow, graph: Graph, actor: Actor, expected_edit_version: int | None = None
) -> Workflow:
    """Replace the draft graph. Stored steps keep their id and key; others are created or removed.

    A graph that cannot be stored (unknown role, dangling or self-loop edge,
    duplicate ids, negative weight) raises WorkflowInvalid listing every such
    problem; problems that only block publishing are allowed in a draft.
    """
    with transaction.atomic():
        locked = _lock_for_edit(workflow_id=workflow.pk, expected_edit_version=expected_edit_version)
        existing = {str(step.pk): step for step in Step.objects.filter(workflow=locked)}
        draft = _draft_from_graph(locked, graph, existing)
        structural = [p for p in draft_validate(draft) if p.code in STRUCTURAL_CODES]
        if structural:
            raise WorkflowInvalid(structural, "The graph cannot be stored.")
        before = {"steps": sorted(s.key for s in existing.values()), "transitions": locked.transitions.count()}

        Transition.objects.filter(workflow=locked).delete()
        kept = {step.ref for step in draft.steps if step.ref in existing}
        Step.objects.filter(workflow=locked).exclude(pk__in=[int(ref) for ref in kept]).delete()
        stored_by_ref: dict[str, Step] = {}
        for draft_step in draft.steps:
            step = existing.get(draft_step.ref) or Step(tenant_id=locked.tenant_id, workflow=locked)
            step.key = draft_step.key
            step.name = draft_step.name
            step.instruction = draft_step.instruction
            step.role_id = draft_step.role.pk if draft_step.role else None
            step.escalation_role_id = draft_step.escalation_role.pk if draft_step.escalation_role else None
            step.weight = draft_step.weight
            step.is_start = draft_step.is_start
            step.is_end = draft_step.is_end
            step.x, step.y = draft_step.x, draft_step.y
            step.assignment_strategy = draft_step.assignment_strategy
            step.assignee_count = draft_step.assignee_count
            step.save()
            stored_by_ref[draft_step.ref] = step
        Transition.objects.bulk_create(
            [
                Transition(
                    tenant_id=locked.tenant_id,
                    workflow=locked,
                    from_step=stored_by_ref[t.from_ref],
                    to_step=stored_by_ref[t.to_ref],
                    name=t.name,
                )
                for t in draft.transitions
            ]
        )
        after = {"steps": sorted(s.key for s in stored_by_ref.values()), "transitions": len(draft.transitions)}
        _audit_workflow(
            locked,
            actor=actor,
            action=AuditAction.WORKFLOW_GRAPH_REPLACED,
            changes={key: [before[key], after[key]] for key in after if before[key] != after[key]},
        )
    return locked


def workflow_weights_set(
    *, workflow: Workflow, weights: dict[int, Decimal], actor: Actor, expected_edit_version: int | None = None
) -> Workflow:
    """Set step weights by step id. Unknown step ids or negative weights -> 400, nothing written."""
    with transaction.atomic():
        locked = _lock_for_edit(workflow_id=workflow.pk, expected_edit_version=expected_edit_version)
        steps = {step.pk: step for step in Step.objects.select_for_update().filter(workflow=locked)}
        errors = {}
        for step_id, weight in weights.items():
            if step_id not in steps:
                errors[str(step_id)] = ["No such step in this workflow."]
            elif weight < 0:
                errors[str(step_id)] = ["Weight must be 0 or more."]
        if errors:
            raise ApiError(ErrorCode.VALIDATION_ERROR, "steps: some weights cannot be set.", errors={"steps": errors})
        changes = {}
        for step_id, weight in weights.items():
            step = steps[step_id]
            if step.weight != weight:
                changes[step.key] = [str(step.weight), str(weight)]
                step.weight = weight
                step.save(update_fields=["weight"])
        if changes:
            _audit_workflow(
                locked,
                actor=actor,
                action=AuditAction.WORKFLOW_UPDATED,
                changes={f"weight:{key}": value for key, value in changes.items()},
            )
    return locked


# --- publishing and lifecycle ------------------------------------------------------


@dataclass(frozen=True)
class PublishResult:
    version: WorkflowVersion
    created: bool  # False when the definition was unchanged and the current version was kept


def lock_tenant_for_publishing(tenant_id: int) -> None:
    """Serialise the publishes of one tenant: hold its row FOR NO KEY UPDATE until commit.

    The "no other published workflow with the same matching keys" check is a
    read of *other* workflows' rows; without a common lock two publishes of
    different workflows with the same keys could each miss the other and
    both commit. The tenant row is the lock the seed takes too, and it is
    always taken before any workflow row, so callers that lock both (seed,
    import, publish) cannot deadlock. NO KEY UPDATE does not block the
    KEY SHARE locks that inserts referencing the tenant take. (On SQLite,
    which has no row locks, writers are serialised by the database anyway.)
    """
    Tenant.objects.select_for_update(no_key=True).filter(pk=tenant_id).first()


def workflow_publish(*, workflow: Workflow, actor: Actor) -> PublishResult:
    """Validate the draft, freeze it as a new version if its content changed, and make it current.

    One transaction: the version row, the workflow's status and current
    version, and the audit row. Raises WorkflowInvalid with every problem.
    Publishing also resumes a paused or retired workflow.

    Locking: the tenant row first (lock_tenant_for_publishing: publishes of
    one tenant run one at a time, so the ambiguous-match check sees every
    committed publish), then the workflow row.
    """
    with transaction.atomic():
        lock_tenant_for_publishing(workflow.tenant_id)
        locked = Workflow.objects.select_for_update().get(pk=workflow.pk, deleted_at__isnull=True)
        draft = draft_from_db(locked)
        problems = draft_validate(draft, conflicting_workflow=_conflicting_workflow(locked))
        if problems:
            raise WorkflowInvalid(
                problems, f"Workflow {locked.name!r} cannot be published: {len(problems)} problem(s)."
            )
        definition = definition_of(
            draft, name=locked.name, description=locked.description, completion_action=locked.completion_action
        )
        content_hash = definition_hash(definition)
        current = locked.current_version
        created = current is None or current.content_hash != content_hash
        if created:
            number = (
                WorkflowVersion.objects.filter(workflow=locked)
                .order_by("-number")
                .values_list("number", flat=True)
                .first()
                or 0
            ) + 1
            version = WorkflowVersion.objects.create(
                tenant_id=locked.tenant_id,
                workflow=locked,
                number=number,
                definition=definition,
                content_hash=content_hash,
                match_department=normalise_key(locked.department),
                match_category=normalise_key(locked.category),
                match_sub_category=normalise_key(locked.sub_category),
                published_by_id=actor.id,
                published_by_name=actor.name,
            )
        else:
            assert current is not None
            version = current
        old_status = locked.status
        if not created and old_status == WorkflowStatus.PUBLISHED:
            return PublishResult(version=version, created=False)
        Workflow.objects.filter(pk=locked.pk).update(
            current_version=version, status=WorkflowStatus.PUBLISHED, updated_at=timezone.now()
        )
        locked.current_version, locked.status = version, WorkflowStatus.PUBLISHED
        _audit_workflow(
            locked,
            actor=actor,
            action=AuditAction.WORKFLOW_PUBLISHED,
            changes={
                "status": [old_status, WorkflowStatus.PUBLISHED],
                "current_version": [current.number if current else None, version.number],
            },
        )
        # Tickets that matched nothing so far may match this workflow now.
        tickets_wake_waiting(tenant=locked.tenant)
    return PublishResult(version=version, created=created)


def _set_status(*, workflow: Workflow, actor: Actor, status: WorkflowStatus, action: AuditAction) -> Workflow:
    with transaction.atomic():
        locked = Workflow.objects.select_for_update().get(pk=workflow.pk, deleted_at__isnull=True)
        if locked.status == status:
            return locked
        if locked.current_version_id is None:
            raise ApiError(
                ErrorCode.INVALID_STATE,
                f"Workflow {locked.name!r} has never been published, so it cannot be {status.label.lower()}.",
                status_code=409,
            )
        old = locked.status
        Workflow.objects.filter(pk=locked.pk).update(status=status, updated_at=timezone.now())
        locked.status = status
        _audit_workflow(locked, actor=actor, action=action, changes={"status": [old, status]})
    return locked


def workflow_pause(*, workflow: Workflow, actor: Actor) -> Workflow:
    """No new tickets are matched to it; running tasks go on. Publish resumes it."""
    return _set_status(workflow=workflow, actor=actor, status=WorkflowStatus.PAUSED, action=AuditAction.WORKFLOW_PAUSED)


def workflow_retire(*, workflow: Workflow, actor: Actor) -> Workflow:
    """No new tickets; running tasks finish on their version."""
    return _set_status(
        workflow=workflow, actor=actor, status=WorkflowStatus.RETIRED, action=AuditAction.WORKFLOW_RETIRED
    )


def workflow_delete(*, workflow: Workflow, actor: Actor) -> None:
    """Delete a workflow no task references. Its versions stay (append-only); the workflow is hidden."""
    with transaction.atomic():
        locked = Workflow.objects.select_for_update().get(pk=workflow.pk, deleted_at__isnull=True)
        if Task.objects.filter(workflow=locked).exists():
            raise ApiError(
                ErrorCode.WORKFLOW_IN_USE,
                f"Workflow {locked.name!r} has tasks; retire it instead so they can finish.",
                status_code=409,
            )
        Transition.objects.filter(workflow=locked).delete()
        Step.objects.filter(workflow=locked).delete()
        Workflow.objects.filter(pk=locked.pk).update(
            deleted_at=timezone.now(), status=WorkflowStatus.RETIRED, updated_at=timezone.now()
        )
        _audit_workflow(
            locked, actor=actor, action=AuditAction.WORKFLOW_DELETED, changes={"status": [locked.status, "deleted"]}
        )


# --- migrating running tasks ---------------------------------------------------------


@dataclass(frozen=True)
class TaskMove:
    task_id: int
    from_version: int
    step_key: str


@dataclass(frozen=True)
class MigrationBlocker:
    task_id: int
    from_version: int
    step_key: str
    reason: str


@dataclass(frozen=True)
class MigrationPlan:
    target_version: int
    moves: list[TaskMove]
    blockers: list[MigrationBlocker]
    applied: bool


def workflow_migrate(*, workflow: Workflow, version_number: int, dry_run: bool, actor: Actor) -> MigrationPlan:
    """Move running tasks of older versions onto `version_number`, step by step key.

    The plan lists, per open task, the step it maps to; a task whose step key
    no longer exists in the target version is a blocker and stays where it
    is. A dry run changes nothing. Applying moves every mappable task in one
    transaction (rows locked, compare-and-set on version, step and status)
    and audits each; a task the compare-and-set misses is not moved and is
    returned among the blockers.
    """
    target = WorkflowVersion.objects.filter(workflow=workflow, number=version_number).first()
    if target is None:
        raise ApiError(
            ErrorCode.NOT_FOUND, f"Workflow {workflow.name!r} has no version {version_number}.", status_code=404
        )
    target_keys = {step["key"] for step in target.definition["steps"]}
    with transaction.atomic():
        tasks = Task.objects.filter(workflow=workflow, status__in=OPEN_STATUSES).exclude(workflow_version=target)
        tasks = tasks.select_related("workflow_version").order_by("id")
        if not dry_run:
            tasks = tasks.select_for_update(of=("self",))
        moves, blockers = [], []
        seen_version: dict[int, int] = {}
        for task in tasks:
            seen_version[task.pk] = task.workflow_version_id
            if task.workflow_version.number > target.number:
                blockers.append(
                    MigrationBlocker(
                        task.pk, task.workflow_version.number, task.current_step_key, "already on a newer version"
                    )
                )
            elif task.current_step_key in target_keys:
                moves.append(TaskMove(task.pk, task.workflow_version.number, task.current_step_key))
            else:
                blockers.append(
                    MigrationBlocker(
                        task.pk,
                        task.workflow_version.number,
                        task.current_step_key,
                        f"step {task.current_step_key!r} does not exist in version {target.number}",
                    )
                )
        if not dry_run:
            applied: list[TaskMove] = []
            for move in moves:
                # Compare-and-set on what the plan saw. The rows are locked, so a
                # miss means the task was changed inside this very transaction
                # (or by a database without row locks): it is not moved, not
                # audited, and reported as a blocker so that a rerun can take it.
                moved = Task.objects.filter(
                    pk=move.task_id,
                    workflow_version_id=seen_version[move.task_id],
                    current_step_key=move.step_key,
                    status__in=OPEN_STATUSES,
                ).update(workflow_version=target, updated_at=timezone.now())
                if moved != 1:
                    blockers.append(
                        MigrationBlocker(
                            move.task_id,
                            move.from_version,
                            move.step_key,
                            "changed while the migration ran; plan again",
                        )
                    )
                    continue
                applied.append(move)
                audit_append(
                    tenant=workflow.tenant,
                    actor=actor,
                    action=AuditAction.TASK_MIGRATED,
                    target_type="task",
                    target_id=move.task_id,
                    target_display=f"{workflow.name} task {move.task_id}",
                    changes={"workflow_version": [move.from_version, target.number]},
                )
            moves = applied
    return MigrationPlan(target_version=target.number, moves=moves, blockers=blockers, applied=not dry_run)
