"""The designer's writes: publishing versions, editing drafts, lifecycle, migrating running tasks."""

from __future__ import annotations

import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction

from audit.models import AuditAction, AuditEvent
from audit.services import Actor
from role.models import Role
from role.services import role_sync
from role.tests.factories import RoleFactory, role_data
from step.models import Step, Transition
from task.models import Task, TaskStatus
from task.rules import available_transitions, transitions_of
from task.services import task_transition
from task.tests.factories import TaskItemFactory, members
from workflow import services
from workflow.definition import ProblemCode, definition_hash
from workflow.models import Workflow, WorkflowStatus, WorkflowVersion
from workflow.services import (
    EditConflict,
    Graph,
    GraphEdge,
    GraphNode,
    WorkflowInvalid,
    workflow_create,
    workflow_delete,
    workflow_graph_replace,
    workflow_migrate,
    workflow_pause,
    workflow_problems,
    workflow_publish,
    workflow_retire,
    workflow_update,
    workflow_weights_set,
)
from workflow.tests.factories import StepFactory, TaskFactory, WorkflowFactory, three_step_workflow
from workflow_api.core.append_only import installed_triggers, trigger_names
from workflow_api.core.auth import TokenUser
from workflow_api.core.errors import ApiError, ErrorCode
from workflow_api.core.tenancy import default_tenant

pytestmark = pytest.mark.django_db

REFUSED = "is refused: the table is append-only"


def _graph(workflow: Workflow, *, drop: Collection[str] = (), add: Collection[GraphNode] = (), **renames: str) -> Graph:
    """The stored draft as a graph PUT, minus the steps keyed in `drop`, plus `add` (their edges too)."""
    steps = {step.pk: step for step in Step.objects.filter(workflow=workflow)}
    nodes = [
        GraphNode(
            id=str(step.pk),
            name=renames.get(step.key, step.name),
            role_id=None,
            role_pk=step.role_id,
            escalation_role_pk=step.escalation_role_id,
            weight=step.weight,
            is_start=step.is_start,
            is_end=step.is_end,
            x=step.x,
            y=step.y,
        )
        for step in steps.values()
        if step.key not in drop
    ]
    kept = {node.id for node in nodes}
    edges = [
        GraphEdge(id=str(t.pk), from_id=str(t.from_step_id), to_id=str(t.to_step_id), name=t.name)
        for t in Transition.objects.filter(workflow=workflow)
        if str(t.from_step_id) in kept and str(t.to_step_id) in kept
    ]
    return Graph(nodes=[*nodes, *add], edges=edges)


def _errors(error: ApiError) -> dict[str, Any]:
    assert error.errors is not None
    return error.errors


def _owner(workflow: Workflow) -> Role:
    """The role owning the start step of a three_step_workflow."""
    role = Step.objects.select_related("role").get(workflow=workflow, key="triage").role
    assert role is not None
    return role


def _audit(action: AuditAction, target_id: int | None = None) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(action=action)
    if target_id is not None:
        events = events.filter(target_id=str(target_id))
    return list(events)


OWNER_USER, RESOLVER_USER = 101, 201


def _staffed_workflow(**fields: Any) -> tuple[Workflow, Role, Role]:
    """A three_step_workflow whose owner role has member 101 and resolver role member 201."""
    owner, resolver = RoleFactory.create(name="Admin"), RoleFactory.create(name="Asset Manager")
    members(owner, OWNER_USER)
    members(resolver, RESOLVER_USER)
    return three_step_workflow(owner=owner, resolver=resolver, **fields), owner, resolver


def _task_at(version: WorkflowVersion, step_key: str, *, holder: int, role: Role) -> Task:
    """A running task on `version` at `step_key`, with `holder`'s new item there."""
    task = TaskFactory.create(workflow=version.workflow, workflow_version=version, current_step_key=step_key)
    TaskItemFactory.create(task=task, role=role, user_id=holder)
    return task


def _reloaded(task: Task) -> Task:
    return Task.objects.select_related("workflow_version").prefetch_related("items").get(pk=task.pk)


def _agent(user_id: int) -> TokenUser:
    return TokenUser(
        user_id=user_id, tenant=default_tenant(), full_name=f"User {user_id}", roles=frozenset({"tts:Agent"})
    )


def _transition(task: Task, name: str) -> int:
    """The id of the transition called `name` in the task's own version."""
    return next(t["id"] for t in transitions_of(_reloaded(task).workflow_version) if t["name"] == name)


# --- publishing ---------------------------------------------------------------------------


def test_publishing_creates_version_1_with_the_complete_definition(tenant, actor):
    admin = RoleFactory.create(tenant=tenant, name="Admin", role_id=10)
    manager = RoleFactory.create(tenant=tenant, name="Asset Manager", role_id=12)
    workflow = three_step_workflow(
        owner=admin,
        resolver=manager,
        name="Asset Check In",
        department=" Asset Department ",
        category="Asset Check In",
        sub_category="Check In",
    )
    Step.objects.filter(workflow=workflow, key="resolve").update(escalation_role=admin, weight=Decimal("2.50"))

    result = workflow_publish(workflow=workflow, actor=actor)

    version = result.version
    assert result.created is True
    assert version.number == 1
    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.PUBLISHED
    assert workflow.current_version == version
    definition = version.definition
    steps = {step["key"]: step for step in definition["steps"]}
    assert set(steps) == {"triage", "resolve", "finalize"}
    assert steps["resolve"]["role"] == {"id": manager.pk, "role_id": 12, "name": "Asset Manager"}
    assert steps["resolve"]["escalation_role"] == {"id": admin.pk, "role_id": 10, "name": "Admin"}
    assert steps["resolve"]["weight"] == "2.5"
    assert [key for key, step in steps.items() if step["is_start"]] == ["triage"]
    assert [key for key, step in steps.items() if step["is_end"]] == ["finalize"]
    assert sorted((t["from"], t["to"], t["name"]) for t in definition["transitions"]) == [
        ("resolve", "finalize", "Approve"),
        ("resolve", "triage", "Reject"),
        ("triage", "resolve", "Submit"),
    ]
    assert definition["sla"] == {"urgent": 4 * 3600, "high": 8 * 3600, "medium": 2 * 86400, "low": 5 * 86400}
    assert definition["workflow"]["sub_category"] == "Check In"
    assert (version.match_department, version.match_category, version.match_sub_category) == (
        "asset department",
        "asset check in",
        "check in",
    )
    assert version.content_hash == definition_hash(definition)
    assert (version.published_by_id, version.published_by_name) == (actor.id, actor.name)
    [event] = _audit(AuditAction.WORKFLOW_PUBLISHED, workflow.pk)
    assert event.changes == {"status": ["draft", "published"], "current_version": [None, 1]}
    assert (event.actor_id, event.actor_name) == (actor.id, actor.name)


def test_publishing_an_unchanged_definition_creates_no_new_version_and_no_audit_row(tenant, actor):
    workflow = three_step_workflow()
    first = workflow_publish(workflow=workflow, actor=actor)

    again = workflow_publish(workflow=workflow, actor=actor)

    assert again.created is False
    assert again.version == first.version
    assert WorkflowVersion.objects.filter(workflow=workflow).count() == 1
    assert len(_audit(AuditAction.WORKFLOW_PUBLISHED, workflow.pk)) == 1


def test_moving_steps_on_the_canvas_then_publishing_keeps_the_current_version(tenant, actor):
    workflow = three_step_workflow()
    first = workflow_publish(workflow=workflow, actor=actor).version
    Step.objects.filter(workflow=workflow).update(x=999, y=555)

    result = workflow_publish(workflow=workflow, actor=actor)

    assert (result.created, result.version) == (False, first)


def test_publishing_a_changed_definition_creates_version_2_and_keeps_version_1(tenant, actor):
    workflow = three_step_workflow()
    first = workflow_publish(workflow=workflow, actor=actor).version
    resolve = Step.objects.get(workflow=workflow, key="resolve")
    workflow_weights_set(workflow=workflow, weights={resolve.pk: Decimal("3")}, actor=actor)

    result = workflow_publish(workflow=workflow, actor=actor)

    assert result.created is True
    assert result.version.number == 2
    assert result.version.content_hash != first.content_hash
    workflow.refresh_from_db()
    assert workflow.current_version == result.version
    first.refresh_from_db()
    assert next(s for s in first.definition["steps"] if s["key"] == "resolve")["weight"] == "1"
    assert [e.changes["current_version"] for e in _audit(AuditAction.WORKFLOW_PUBLISHED, workflow.pk)] == [
        [1, 2],
        [None, 1],
    ]


def test_a_task_on_version_1_keeps_version_1s_transitions_and_finishes_on_them_after_version_2_drops_them(
    tenant, actor
):
    workflow, owner, resolver = _staffed_workflow()
    first = workflow_publish(workflow=workflow, actor=actor).version
    task = _task_at(first, "resolve", holder=RESOLVER_USER, role=resolver)
    # Version 2: `finalize` is gone, `Approve` is renamed `Sign off` and leads to a new `close`; `Reject` is gone.
    resolve = Step.objects.get(workflow=workflow, key="resolve")
    close = GraphNode(id="close", key="close", name="Close", role_id=None, role_pk=owner.pk, is_end=True)
    graph = _graph(workflow, drop={"finalize"}, add=[close])
    graph.edges = [e for e in graph.edges if e.from_id != str(resolve.pk)]
    graph.edges.append(GraphEdge(id="sign-off", from_id=str(resolve.pk), to_id="close", name="Sign off"))
    workflow_graph_replace(workflow=workflow, graph=graph, actor=actor)
    second = workflow_publish(workflow=workflow, actor=actor).version
    assert {(t["from"], t["name"], t["to"]) for t in second.definition["transitions"]} == {
        ("triage", "Submit", "resolve"),
        ("resolve", "Sign off", "close"),
    }

    task = _reloaded(task)
    offered = available_transitions(task, RESOLVER_USER)

    assert task.workflow_version == first
    assert sorted((t["name"], t["to_step"]) for t in offered) == [("Approve", "finalize"), ("Reject", "triage")]
    approve = next(t["id"] for t in offered if t["name"] == "Approve")
    task_transition(task_id=task.pk, user=_agent(RESOLVER_USER), transition_id=approve, notes="Looks right")
    assert _reloaded(task).current_step_key == "finalize"
    task_transition(task_id=task.pk, user=_agent(OWNER_USER), transition_id=None, notes="Done")
    task = _reloaded(task)
    assert (task.status, task.current_step_key, task.workflow_version) == (TaskStatus.COMPLETED, "finalize", first)


@pytest.mark.parametrize("stop", [workflow_pause, workflow_retire], ids=["paused", "retired"])
def test_a_task_of_a_paused_or_retired_workflow_still_runs_to_completion(tenant, actor, stop):
    workflow, owner, _ = _staffed_workflow()
    version = workflow_publish(workflow=workflow, actor=actor).version
    task = _task_at(version, "triage", holder=OWNER_USER, role=owner)

    stop(workflow=workflow, actor=actor)
    task_transition(task_id=task.pk, user=_agent(OWNER_USER), transition_id=_transition(task, "Submit"), notes="a")
    task_transition(task_id=task.pk, user=_agent(RESOLVER_USER), transition_id=_transition(task, "Approve"), notes="b")
    task_transition(task_id=task.pk, user=_agent(OWNER_USER), transition_id=None, notes="c")

    task = _reloaded(task)
    assert (task.status, task.current_step_key, task.workflow_version) == (TaskStatus.COMPLETED, "finalize", version)
    assert task.completed_at is not None
    workflow.refresh_from_db()
    assert workflow.status == ("paused" if stop is workflow_pause else "retired")


def test_a_refused_publish_lists_every_problem_and_writes_no_version_and_no_audit_row(tenant, actor):
    workflow = three_step_workflow()
    Step.objects.filter(workflow=workflow, key="resolve").update(role=None)
    Workflow.objects.filter(pk=workflow.pk).update(category="")

    with pytest.raises(WorkflowInvalid) as refused:
        workflow_publish(workflow=workflow, actor=actor)

    assert refused.value.error_code == ErrorCode.WORKFLOW_INVALID
    assert {p["code"] for p in _errors(refused.value)["problems"]} == {"missing_role", "match_keys_incomplete"}
    assert next(p for p in _errors(refused.value)["problems"] if p["code"] == "missing_role")["step"] == str(
        Step.objects.get(workflow=workflow, key="resolve").pk
    )
    assert not WorkflowVersion.objects.filter(workflow=workflow).exists()
    assert _audit(AuditAction.WORKFLOW_PUBLISHED) == []
    workflow.refresh_from_db()
    assert (workflow.status, workflow.current_version) == (WorkflowStatus.DRAFT, None)


@pytest.mark.parametrize(
    ("department", "category", "sub_category"),
    [
        ("Asset Department", "Asset Check In", "Check In"),
        ("  asset department ", "ASSET CHECK IN", " check in"),
    ],
    ids=["same keys", "same keys in other case and spacing"],
)
def test_publish_refuses_a_second_workflow_matching_the_same_tickets(tenant, actor, department, category, sub_category):
    first = three_step_workflow(department="Asset Department", category="Asset Check In", sub_category="Check In")
    workflow_publish(workflow=first, actor=actor)
    second = three_step_workflow(department=department, category=category, sub_category=sub_category)

    with pytest.raises(WorkflowInvalid) as refused:
        workflow_publish(workflow=second, actor=actor)

    [problem] = refused.value.problems
    assert problem.code == ProblemCode.AMBIGUOUS_MATCH
    assert first.name in problem.message
    assert not WorkflowVersion.objects.filter(workflow=second).exists()
    assert _audit(AuditAction.WORKFLOW_PUBLISHED, second.pk) == []


def test_a_blank_sub_category_fallback_does_not_clash_with_a_specific_one(tenant, actor):
    specific = three_step_workflow(department="IT", category="Access", sub_category="VPN")
    fallback = three_step_workflow(department="IT", category="Access", sub_category="")

    workflow_publish(workflow=specific, actor=actor)

    assert workflow_publish(workflow=fallback, actor=actor).created is True


def test_a_paused_workflow_does_not_block_another_from_its_keys_but_cannot_resume_over_it(tenant, actor):
    old = three_step_workflow(department="IT", category="Access")
    workflow_publish(workflow=old, actor=actor)
    workflow_pause(workflow=old, actor=actor)
    new = three_step_workflow(department="IT", category="Access")
    workflow_publish(workflow=new, actor=actor)

    with pytest.raises(WorkflowInvalid) as refused:
        workflow_publish(workflow=old, actor=actor)

    assert [p.code for p in refused.value.problems] == [ProblemCode.AMBIGUOUS_MATCH]
    old.refresh_from_db()
    assert old.status == WorkflowStatus.PAUSED


@pytest.mark.parametrize(
    ("field", "code"),
    [("role", ProblemCode.UNKNOWN_ROLE), ("escalation_role", ProblemCode.UNKNOWN_ESCALATION_ROLE)],
    ids=["owning role", "escalation role"],
)
def test_a_role_deleted_after_it_was_given_to_a_step_blocks_publishing(tenant, actor, field, code):
    workflow = three_step_workflow()
    doomed = RoleFactory.create(tenant=tenant, name="Field Crew")
    Step.objects.filter(workflow=workflow, key="resolve").update(**{field: doomed})
    assert workflow_problems(workflow) == []
    role_sync(payload=role_data(role_id=doomed.role_id, name=doomed.name, action="delete"))

    with pytest.raises(WorkflowInvalid) as refused:
        workflow_publish(workflow=workflow, actor=actor)

    resolve = Step.objects.get(workflow=workflow, key="resolve")
    [problem] = refused.value.problems
    assert (problem.code, problem.step) == (code, str(resolve.pk))
    assert "Field Crew" in problem.message
    assert workflow_problems(workflow) == refused.value.problems
    assert not WorkflowVersion.objects.filter(workflow=workflow).exists()
    assert _audit(AuditAction.WORKFLOW_PUBLISHED, workflow.pk) == []


def _publish_without_waiting_for_locks(workflow: Workflow, actor: Actor) -> None:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '500ms'")
        workflow_publish(workflow=workflow, actor=actor)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_while_one_publish_is_open_another_of_the_tenant_waits_so_both_cannot_claim_the_same_tickets(
    postgres, tenant, actor
):
    first = three_step_workflow(name="First", department="IT", category="Access")
    second = three_step_workflow(name="Second", department=" it ", category="ACCESS")
    written, release = threading.Event(), threading.Event()
    checked: list[str] = []
    real_check, real_wake = services._conflicting_workflow, services.tickets_wake_waiting

    def check(workflow: Workflow) -> str | None:
        checked.append(workflow.name)
        return real_check(workflow)

    def wake_then_hold_the_first_publish_open(*, tenant: Any) -> bool:
        woken = real_wake(tenant=tenant)
        if not written.is_set():  # the first publish: its version is written, not yet committed
            written.set()
            assert release.wait(timeout=30)
        return woken

    def publish_first() -> int:
        try:
            return workflow_publish(workflow=first, actor=actor).version.number
        finally:
            connection.close()

    with (
        mock.patch.object(services, "_conflicting_workflow", check),
        mock.patch.object(services, "tickets_wake_waiting", wake_then_hold_the_first_publish_open),
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        first_publish = pool.submit(publish_first)
        try:
            assert written.wait(timeout=30)
            # A lock timeout instead of waiting: the second publish must be stopped
            # before it looks for a conflict, since the first has not committed yet.
            with pytest.raises(OperationalError, match="lock timeout"):
                _publish_without_waiting_for_locks(second, actor)
            assert checked == ["First"]
        finally:
            release.set()
        assert first_publish.result(timeout=30) == 1

        with pytest.raises(WorkflowInvalid) as refused:
            workflow_publish(workflow=second, actor=actor)

    assert [p.code for p in refused.value.problems] == [ProblemCode.AMBIGUOUS_MATCH]
    assert checked == ["First", "Second"]
    assert list(Workflow.objects.filter(status=WorkflowStatus.PUBLISHED).values_list("name", flat=True)) == ["First"]
    assert not WorkflowVersion.objects.filter(workflow=second).exists()


# --- versions are immutable ----------------------------------------------------------------


def test_saving_a_stored_version_again_raises_and_changes_nothing(tenant, actor):
    version = workflow_publish(workflow=three_step_workflow(), actor=actor).version
    version.content_hash = "0" * 64

    with pytest.raises(ValueError, match="cannot be changed"):
        version.save()

    assert WorkflowVersion.objects.get(pk=version.pk).content_hash != "0" * 64


@pytest.mark.postgres
def test_a_queryset_update_of_a_version_is_refused_by_the_database(postgres, tenant, actor):
    version = workflow_publish(workflow=three_step_workflow(), actor=actor).version

    with pytest.raises(IntegrityError, match=f"UPDATE on workflow_workflowversion {REFUSED}"), transaction.atomic():
        WorkflowVersion.objects.filter(pk=version.pk).update(definition={"steps": []})

    assert WorkflowVersion.objects.get(pk=version.pk).definition["steps"]


@pytest.mark.postgres
def test_deleting_an_old_version_is_refused_by_the_database(postgres, tenant, actor):
    workflow = three_step_workflow()
    first = workflow_publish(workflow=workflow, actor=actor).version
    workflow_update(workflow=workflow, actor=actor, description="changed")
    workflow_publish(workflow=workflow, actor=actor)

    with pytest.raises(IntegrityError, match=f"DELETE on workflow_workflowversion {REFUSED}"), transaction.atomic():
        WorkflowVersion.objects.filter(pk=first.pk).delete()

    assert WorkflowVersion.objects.filter(pk=first.pk).exists()


VERSIONS = WorkflowVersion._meta.db_table


def test_the_migrations_install_the_append_only_triggers_on_the_version_table(tenant):
    # SQLite has no TRUNCATE, so no trigger for it (its `DELETE FROM` is caught by the DELETE one).
    expected = trigger_names(VERSIONS) if connection.vendor == "postgresql" else trigger_names(VERSIONS)[:2]

    assert installed_triggers(connection, VERSIONS) == set(expected)


def test_emptying_the_version_table_is_refused_by_the_database(tenant, actor):
    version = workflow_publish(workflow=three_step_workflow(), actor=actor).version
    if connection.vendor == "postgresql":
        # CASCADE, or PostgreSQL refuses first because workflows reference their current version.
        operation, sql = "TRUNCATE", f"TRUNCATE {VERSIONS} CASCADE"
        _run_deferred_checks()
    else:
        operation, sql = "DELETE", f"DELETE FROM {VERSIONS}"  # SQLite's TRUNCATE

    with (
        pytest.raises(IntegrityError, match=f"{operation} on {VERSIONS} {REFUSED}"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)

    assert WorkflowVersion.objects.filter(pk=version.pk).exists()


@pytest.mark.postgres
def test_truncating_the_workflow_table_with_cascade_cannot_empty_the_version_table(postgres, tenant, actor):
    version = workflow_publish(workflow=three_step_workflow(), actor=actor).version
    _run_deferred_checks()

    with (
        pytest.raises(IntegrityError, match=f"TRUNCATE on {VERSIONS} {REFUSED}"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"TRUNCATE {Workflow._meta.db_table} CASCADE")

    assert WorkflowVersion.objects.filter(pk=version.pk).exists()


def _run_deferred_checks() -> None:
    # PostgreSQL refuses to truncate a table with pending trigger events (the
    # deferred foreign-key checks of this test's inserts) before the
    # append-only trigger is asked; run them now so that trigger answers.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


# --- editing the draft ------------------------------------------------------------------------


def test_editing_a_published_workflow_edits_its_draft_and_leaves_the_current_version_alone(tenant, actor):
    workflow = three_step_workflow(department="IT", category="Access")
    version = workflow_publish(workflow=workflow, actor=actor).version
    definition = version.definition

    workflow_update(workflow=workflow, actor=actor, department="Facilities", name="Renamed")
    workflow_graph_replace(workflow=workflow, graph=_graph(workflow, resolve="Resolve quickly"), actor=actor)

    workflow.refresh_from_db()
    assert (workflow.department, workflow.name, workflow.status) == ("Facilities", "Renamed", "published")
    assert Step.objects.get(workflow=workflow, key="resolve").name == "Resolve quickly"
    assert workflow.current_version == version
    stored = WorkflowVersion.objects.get(pk=version.pk)
    assert stored.definition == definition
    assert stored.match_department == "it"


def test_an_edit_based_on_a_stale_edit_version_is_refused_and_writes_nothing(tenant, actor):
    workflow = three_step_workflow(description="Original")
    read_at = workflow.edit_version
    workflow_update(workflow=workflow, actor=Actor(id=7, name="First Designer"), description="First")
    audit_rows = AuditEvent.objects.count()

    with pytest.raises(EditConflict) as conflict:
        workflow_update(workflow=workflow, actor=actor, expected_edit_version=read_at, description="Second")

    assert conflict.value.status_code == 409
    assert conflict.value.error_code == ErrorCode.EDIT_CONFLICT
    workflow.refresh_from_db()
    assert (workflow.description, workflow.edit_version) == ("First", read_at + 1)
    assert AuditEvent.objects.count() == audit_rows


def test_a_graph_replace_based_on_a_stale_edit_version_is_refused_and_keeps_the_graph(tenant, actor):
    workflow = three_step_workflow()
    stale = workflow.edit_version
    workflow_update(workflow=workflow, actor=actor, description="Someone else saved")

    with pytest.raises(EditConflict):
        workflow_graph_replace(
            workflow=workflow, graph=_graph(workflow, drop={"finalize"}), actor=actor, expected_edit_version=stale
        )

    assert set(Step.objects.filter(workflow=workflow).values_list("key", flat=True)) == {
        "triage",
        "resolve",
        "finalize",
    }
    assert Transition.objects.filter(workflow=workflow).count() == 3


def test_an_edit_with_the_current_edit_version_is_saved_and_bumps_it(tenant, actor):
    workflow = three_step_workflow()

    updated = workflow_update(
        workflow=workflow, actor=actor, expected_edit_version=workflow.edit_version, description="New"
    )

    assert updated.edit_version == workflow.edit_version + 1
    [event] = _audit(AuditAction.WORKFLOW_UPDATED, workflow.pk)
    assert event.changes["description"][1] == "New"


def test_a_graph_replace_keeps_stored_step_ids_and_keys_and_names_new_steps_by_key(tenant, actor):
    workflow = three_step_workflow()
    before = dict(Step.objects.filter(workflow=workflow).values_list("key", "pk"))
    owner = _owner(workflow)
    extra = GraphNode(id="new-1", name="Double check", role_id=owner.role_id)

    workflow_graph_replace(workflow=workflow, graph=_graph(workflow, add=[extra]), actor=actor)

    after = dict(Step.objects.filter(workflow=workflow).values_list("key", "pk"))
    assert {key: after[key] for key in before} == before
    assert Step.objects.get(workflow=workflow, key="double-check").role == owner


def test_a_graph_can_name_a_seeded_role_that_has_no_auth_id_by_its_pk(tenant, actor):
    workflow = three_step_workflow()
    seeded = RoleFactory.create(tenant=tenant, role_id=None, name="Ticket Coordinator")
    extra = GraphNode(id="new-1", key="dispatch", name="Dispatch", role_id=None, role_pk=seeded.pk)

    workflow_graph_replace(workflow=workflow, graph=_graph(workflow, add=[extra]), actor=actor)

    assert Step.objects.get(workflow=workflow, key="dispatch").role == seeded


def test_a_graph_naming_unknown_roles_or_duplicate_keys_is_refused_and_writes_nothing(tenant, actor, other_tenant):
    workflow = three_step_workflow()
    elsewhere = RoleFactory.create(tenant=other_tenant, name="Admin")
    bad = [
        GraphNode(id="a", key="triage", name="Clash", role_id=None, role_pk=_owner(workflow).pk),
        GraphNode(id="b", name="Ghost", role_id=987654),
        GraphNode(id="c", name="Foreign", role_id=None, role_pk=elsewhere.pk),
    ]
    audit_rows = AuditEvent.objects.count()

    with pytest.raises(WorkflowInvalid) as refused:
        workflow_graph_replace(workflow=workflow, graph=_graph(workflow, add=bad), actor=actor)

    codes = sorted((p.code, p.step) for p in refused.value.problems)
    assert codes == [
        (ProblemCode.DUPLICATE_STEP, "a"),
        (ProblemCode.UNKNOWN_ROLE, "b"),
        (ProblemCode.UNKNOWN_ROLE, "c"),
    ]
    assert Step.objects.filter(workflow=workflow).count() == 3
    assert AuditEvent.objects.count() == audit_rows


def test_weights_for_unknown_steps_or_below_zero_are_refused_and_nothing_is_set(tenant, actor):
    workflow = three_step_workflow()
    resolve = Step.objects.get(workflow=workflow, key="resolve")
    foreign = StepFactory.create()

    with pytest.raises(ApiError) as refused:
        workflow_weights_set(
            workflow=workflow,
            weights={resolve.pk: Decimal("4"), foreign.pk: Decimal("1"), -1: Decimal("1")},
            actor=actor,
        )
    with pytest.raises(ApiError) as negative:
        workflow_weights_set(workflow=workflow, weights={resolve.pk: Decimal("-1")}, actor=actor)

    assert set(_errors(refused.value)["steps"]) == {str(foreign.pk), "-1"}
    assert _errors(negative.value)["steps"] == {str(resolve.pk): ["Weight must be 0 or more."]}
    resolve.refresh_from_db()
    assert resolve.weight == Decimal("1")


# --- migrating running tasks ---------------------------------------------------------------


@pytest.fixture
def two_versions(tenant, actor):
    """Version 1: triage -> resolve -> finalize. Version 2 replaces `finalize` with `close`."""
    workflow = three_step_workflow()
    first = workflow_publish(workflow=workflow, actor=actor).version
    owner = _owner(workflow)
    resolve = Step.objects.get(workflow=workflow, key="resolve")
    close = GraphNode(id="close", key="close", name="Close", role_id=None, role_pk=owner.pk, is_end=True)
    graph = _graph(workflow, drop={"finalize"}, add=[close])
    graph.edges.append(GraphEdge(id="e-close", from_id=str(resolve.pk), to_id="close", name="Approve"))
    workflow_graph_replace(workflow=workflow, graph=graph, actor=actor)
    second = workflow_publish(workflow=workflow, actor=actor).version
    return workflow, first, second


def test_a_migration_dry_run_lists_moves_and_blockers_and_changes_nothing(two_versions, actor):
    workflow, first, second = two_versions
    movable = TaskFactory.create(workflow=workflow, workflow_version=first, current_step_key="resolve")
    stuck = TaskFactory.create(workflow=workflow, workflow_version=first, current_step_key="finalize")
    TaskFactory.create(workflow=workflow, workflow_version=first, current_step_key="finalize", status="completed")
    TaskFactory.create(workflow=workflow, workflow_version=second, current_step_key="close")

    plan = workflow_migrate(workflow=workflow, version_number=2, dry_run=True, actor=actor)

    assert (plan.target_version, plan.applied) == (2, False)
    assert [(m.task_id, m.from_version, m.step_key) for m in plan.moves] == [(movable.pk, 1, "resolve")]
    [blocker] = plan.blockers
    assert (blocker.task_id, blocker.from_version, blocker.step_key) == (stuck.pk, 1, "finalize")
    assert "finalize" in blocker.reason
    movable.refresh_from_db()
    assert movable.workflow_version == first
    assert _audit(AuditAction.TASK_MIGRATED) == []


def test_applying_a_migration_moves_the_mappable_tasks_audits_each_and_leaves_the_blockers(two_versions, actor):
    workflow, first, second = two_versions
    movable = [
        TaskFactory.create(workflow=workflow, workflow_version=first, current_step_key=key)
        for key in ("triage", "resolve")
    ]
    stuck = TaskFactory.create(workflow=workflow, workflow_version=first, current_step_key="finalize")

    plan = workflow_migrate(workflow=workflow, version_number=2, dry_run=False, actor=actor)

    assert plan.applied is True
    assert sorted(m.task_id for m in plan.moves) == sorted(t.pk for t in movable)
    for task in movable:
        task.refresh_from_db()
        assert task.workflow_version == second
    stuck.refresh_from_db()
    assert stuck.workflow_version == first
    events = _audit(AuditAction.TASK_MIGRATED)
    assert sorted(e.target_id for e in events) == sorted(str(t.pk) for t in movable)
    assert all(e.changes == {"workflow_version": [1, 2]} and e.actor_id == actor.id for e in events)


def test_a_task_that_changes_while_a_migration_is_applied_is_not_moved_and_is_reported_as_a_blocker(
    two_versions, actor
):
    workflow, first, second = two_versions
    moved_first, changed = (
        TaskFactory.create(workflow=workflow, workflow_version=first, current_step_key="resolve") for _ in "ab"
    )
    real_audit = services.audit_append

    def audit_then_finish_the_other_task(**kwargs: Any) -> None:
        real_audit(**kwargs)
        # Between the first move and the second, the other task is completed.
        Task.objects.filter(pk=changed.pk).update(status=TaskStatus.COMPLETED)

    with mock.patch.object(services, "audit_append", side_effect=audit_then_finish_the_other_task):
        plan = workflow_migrate(workflow=workflow, version_number=2, dry_run=False, actor=actor)

    assert [m.task_id for m in plan.moves] == [moved_first.pk]
    [blocker] = plan.blockers
    assert (blocker.task_id, blocker.from_version, blocker.step_key) == (changed.pk, 1, "resolve")
    assert "changed while the migration ran" in blocker.reason
    changed.refresh_from_db()
    moved_first.refresh_from_db()
    assert (moved_first.workflow_version, changed.workflow_version) == (second, first)
    assert [e.target_id for e in _audit(AuditAction.TASK_MIGRATED)] == [str(moved_first.pk)]


def test_migrating_to_a_version_that_does_not_exist_is_not_found(two_versions, actor):
    workflow, _, _ = two_versions

    with pytest.raises(ApiError) as missing:
        workflow_migrate(workflow=workflow, version_number=9, dry_run=True, actor=actor)

    assert (missing.value.status_code, missing.value.error_code) == (404, ErrorCode.NOT_FOUND)


# --- pause, retire, delete -----------------------------------------------------------------------


def test_pausing_then_publishing_resumes_the_same_version_and_both_are_audited(tenant, actor):
    workflow = three_step_workflow()
    version = workflow_publish(workflow=workflow, actor=actor).version

    paused = workflow_pause(workflow=workflow, actor=actor)
    resumed = workflow_publish(workflow=workflow, actor=actor)

    assert paused.status == WorkflowStatus.PAUSED
    assert (resumed.created, resumed.version) == (False, version)
    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.PUBLISHED
    assert [e.changes["status"] for e in _audit(AuditAction.WORKFLOW_PAUSED, workflow.pk)] == [["published", "paused"]]
    assert _audit(AuditAction.WORKFLOW_PUBLISHED, workflow.pk)[0].changes["status"] == ["paused", "published"]


def test_retiring_keeps_running_tasks_on_their_version(tenant, actor):
    workflow = three_step_workflow()
    version = workflow_publish(workflow=workflow, actor=actor).version
    task = TaskFactory.create(workflow=workflow)

    retired = workflow_retire(workflow=workflow, actor=actor)

    assert retired.status == WorkflowStatus.RETIRED
    task.refresh_from_db()
    assert (task.workflow_version, task.status) == (version, TaskStatus.IN_PROGRESS)
    assert len(_audit(AuditAction.WORKFLOW_RETIRED, workflow.pk)) == 1


@pytest.mark.parametrize("change", [workflow_pause, workflow_retire])
def test_a_never_published_workflow_cannot_be_paused_or_retired(tenant, actor, change):
    workflow = three_step_workflow()

    with pytest.raises(ApiError) as refused:
        change(workflow=workflow, actor=actor)

    assert (refused.value.status_code, refused.value.error_code) == (409, ErrorCode.INVALID_STATE)
    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.DRAFT


def test_deleting_a_workflow_that_tasks_reference_is_refused(tenant, actor):
    workflow = three_step_workflow()
    workflow_publish(workflow=workflow, actor=actor)
    TaskFactory.create(workflow=workflow, status=TaskStatus.COMPLETED)

    with pytest.raises(ApiError) as refused:
        workflow_delete(workflow=workflow, actor=actor)

    assert (refused.value.status_code, refused.value.error_code) == (409, ErrorCode.WORKFLOW_IN_USE)
    workflow.refresh_from_db()
    assert workflow.deleted_at is None
    assert Step.objects.filter(workflow=workflow).count() == 3


def test_a_deleted_workflow_is_hidden_keeps_its_versions_and_frees_its_name(tenant, actor):
    workflow = three_step_workflow(name="Asset Check In")
    version = workflow_publish(workflow=workflow, actor=actor).version

    workflow_delete(workflow=workflow, actor=actor)
    again = workflow_create(tenant=tenant, actor=actor, name="Asset Check In", department="IT", category="Access")

    workflow.refresh_from_db()
    assert workflow.deleted_at is not None
    assert not Step.objects.filter(workflow=workflow).exists()
    assert WorkflowVersion.objects.filter(pk=version.pk).exists()
    assert again.pk != workflow.pk
    assert len(_audit(AuditAction.WORKFLOW_DELETED, workflow.pk)) == 1


def test_creating_a_workflow_with_a_name_in_use_is_refused_with_a_field_error(tenant, actor):
    WorkflowFactory.create(name="Asset Check In")

    with pytest.raises(ApiError) as refused:
        workflow_create(tenant=tenant, actor=actor, name="Asset Check In", department="IT", category="Access")

    assert refused.value.error_code == ErrorCode.VALIDATION_ERROR
    assert "name" in _errors(refused.value)
    assert Workflow.objects.filter(name="Asset Check In").count() == 1


# --- audit rows are written in the service's own transaction -------------------------------------


def _published(actor):
    workflow = three_step_workflow()
    workflow_publish(workflow=workflow, actor=actor)
    return workflow


SERVICES = {
    "create": (
        lambda actor: None,
        lambda w, actor, tenant: workflow_create(tenant=tenant, actor=actor, name="New", department="D", category="C"),
        AuditAction.WORKFLOW_CREATED,
    ),
    "update": (
        lambda actor: three_step_workflow(),
        lambda w, actor, tenant: workflow_update(workflow=w, actor=actor, description="Changed"),
        AuditAction.WORKFLOW_UPDATED,
    ),
    "graph replace": (
        lambda actor: three_step_workflow(),
        lambda w, actor, tenant: workflow_graph_replace(workflow=w, graph=Graph(), actor=actor),
        AuditAction.WORKFLOW_GRAPH_REPLACED,
    ),
    "weights": (
        lambda actor: three_step_workflow(),
        lambda w, actor, tenant: workflow_weights_set(
            workflow=w, weights={Step.objects.get(workflow=w, key="resolve").pk: Decimal("5")}, actor=actor
        ),
        AuditAction.WORKFLOW_UPDATED,
    ),
    "publish": (
        lambda actor: three_step_workflow(),
        lambda w, actor, tenant: workflow_publish(workflow=w, actor=actor),
        AuditAction.WORKFLOW_PUBLISHED,
    ),
    "pause": (
        _published,
        lambda w, actor, tenant: workflow_pause(workflow=w, actor=actor),
        AuditAction.WORKFLOW_PAUSED,
    ),
    "retire": (
        _published,
        lambda w, actor, tenant: workflow_retire(workflow=w, actor=actor),
        AuditAction.WORKFLOW_RETIRED,
    ),
    "delete": (
        _published,
        lambda w, actor, tenant: workflow_delete(workflow=w, actor=actor),
        AuditAction.WORKFLOW_DELETED,
    ),
}


def _state() -> tuple:
    """Everything the workflow services write, as comparable values."""
    return (
        list(Workflow.objects.order_by("pk").values()),
        list(Step.objects.order_by("pk").values()),
        list(Transition.objects.order_by("pk").values()),
        list(WorkflowVersion.objects.order_by("pk").values_list("pk", flat=True)),
        AuditEvent.objects.count(),
    )


@pytest.mark.parametrize("name", list(SERVICES))
def test_each_service_writes_its_audit_row_with_the_actor(tenant, actor, name):
    prepare, run, action = SERVICES[name]
    workflow = prepare(actor)
    before = AuditEvent.objects.filter(action=action).count()

    result = run(workflow, actor, tenant)

    target: Any = workflow if workflow is not None else result
    events = AuditEvent.objects.filter(action=action, target_type="workflow", target_id=str(target.pk))
    assert AuditEvent.objects.filter(action=action).count() == before + 1
    assert events.filter(actor_id=actor.id, actor_name=actor.name).exists()


@pytest.mark.parametrize("name", list(SERVICES))
def test_when_the_audit_row_cannot_be_written_the_service_writes_nothing(tenant, actor, name):
    prepare, run, _ = SERVICES[name]
    workflow = prepare(actor)
    before = _state()

    with (
        mock.patch("workflow.services.audit_append", side_effect=RuntimeError("audit down")),
        pytest.raises(RuntimeError, match="audit down"),
    ):
        run(workflow, actor, tenant)

    assert _state() == before


def test_when_a_migration_audit_row_cannot_be_written_no_task_is_moved(two_versions, actor):
    workflow, first, _ = two_versions
    tasks = [TaskFactory.create(workflow=workflow, workflow_version=first, current_step_key="resolve") for _ in "ab"]
    calls = []

    def fail_on_second(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise RuntimeError("audit down")

    with (
        mock.patch("workflow.services.audit_append", side_effect=fail_on_second),
        pytest.raises(RuntimeError, match="audit down"),
    ):
        workflow_migrate(workflow=workflow, version_number=2, dry_run=False, actor=actor)

    for task in tasks:
        task.refresh_from_db()
        assert task.workflow_version == first
