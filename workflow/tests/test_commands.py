"""The workflow app's commands and its Celery job: seed_workflows2, workflow_export, workflow_import."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from audit.services import Actor
from role.models import Role, RoleMember
from role.tests.factories import RoleFactory
from step.models import Step
from workflow.models import Workflow, WorkflowStatus, WorkflowVersion
from workflow.seed import seed_standard_workflows
from workflow.tasks import seed_workflows_job
from workflow_api.core.messaging import WORKFLOW_SEED_QUEUE, task_routes
from workflow_api.core.models import InboundFailure, MessageCounter
from workflow_api.testing.services import require_broker, require_postgres
from workflow_api.testing.worker import (
    WorkerProcess,
    purge,
    running_worker,
    upstream_client,
    upstream_client_close,
    wait_until,
)

pytestmark = pytest.mark.django_db

SEED_JOB = "workflow.seed_workflows"


def _run(*args: str, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def _definition(workflow: Workflow) -> dict[str, Any]:
    assert workflow.current_version is not None
    return workflow.current_version.definition


def _written() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Role, RoleMember, Workflow, Step, WorkflowVersion, AuditEvent))


# --- seed_workflows2 -----------------------------------------------------------------------------


def test_seed_workflows2_seeds_the_default_tenant_and_prints_progress_and_a_summary(tenant):
    output = _run("seed_workflows2")

    assert Workflow.objects.filter(tenant=tenant, status=WorkflowStatus.PUBLISHED).count() == 7
    assert "Standard workflows for tenant 'default'" in output
    assert "  workflow Fibre Fault Repair: created and published (version 1)" in output
    assert "Summary: workflows 7 created, 0 already there, 0 skipped; roles 4 created, 0 reused" in output


def test_seed_workflows2_seeds_the_tenant_it_is_given(tenant, other_tenant):
    _run("seed_workflows2", "--tenant", other_tenant.slug)

    assert Workflow.objects.filter(tenant=other_tenant).count() == 7
    assert not Workflow.objects.filter(tenant=tenant).exists()


def test_seed_workflows2_refuses_an_unknown_tenant(db):
    with pytest.raises(CommandError, match="Unknown tenant 'nowhere'"):
        _run("seed_workflows2", "--tenant", "nowhere")

    assert not Workflow.objects.exists()


def test_seed_workflows2_dry_run_prints_the_plan_and_writes_nothing(tenant):
    before = _written()

    output = _run("seed_workflows2", "--dry-run", "--demo")

    assert _written() == before
    assert "would be created" in output
    assert "Dry run: nothing was written." in output


def test_seed_workflows2_demo_adds_demo_members(tenant):
    output = _run("seed_workflows2", "--demo")

    assert RoleMember.objects.filter(tenant=tenant, user_id__gte=101).count() == 6
    assert "demo members 6 added" in output


def test_seed_workflows2_twice_changes_nothing(tenant):
    _run("seed_workflows2", "--demo")
    before = _written()

    output = _run("seed_workflows2", "--demo")

    assert _written() == before
    assert "workflows 0 created, 7 already there" in output


# --- the workflow.seed_workflows job --------------------------------------------------------------


def test_the_seed_job_keeps_its_wire_name_and_is_routed_to_the_seed_queue():
    assert seed_workflows_job.name == "workflow.seed_workflows"
    assert task_routes()["workflow.seed_workflows"] == {"queue": WORKFLOW_SEED_QUEUE}


def test_the_seed_job_seeds_the_default_tenant_and_is_idempotent(tenant):
    first = seed_workflows_job.apply()
    after_first = _written()
    second = seed_workflows_job.apply()

    assert first.successful()
    assert second.successful()
    assert "workflows 7 created" in first.result
    assert "workflows 0 created, 7 already there" in second.result
    assert _written() == after_first
    assert Workflow.objects.filter(tenant=tenant, status=WorkflowStatus.PUBLISHED).count() == 7
    counts = dict(MessageCounter.objects.filter(task_name="workflow.seed_workflows").values_list("outcome", "count"))
    assert counts == {"applied": 1, "duplicate": 1}
    assert not InboundFailure.objects.exists()


# --- workflow_export ----------------------------------------------------------------------------


@pytest.fixture
def seeded(tenant):
    seed_standard_workflows(tenant=tenant, actor=Actor.system())
    return tenant


def test_workflow_export_writes_the_document_to_stdout_by_name(seeded):
    document = json.loads(_run("workflow_export", "Fibre Fault Repair"))

    assert document["format"] == "workflow_api.workflow/1"
    assert document["workflow"]["department"] == "Network Operations"
    assert [step["key"] for step in document["steps"]] == [
        "triage",
        "field-repair",
        "qa-verification",
        "handover-to-maintenance",
    ]
    assert {"from": "qa-verification", "to": "field-repair", "name": "Reject"} in document["transitions"]
    assert document["steps"][0]["role"] == {"role_id": None, "name": "Ticket Coordinator"}


def test_workflow_export_finds_a_workflow_by_id_and_writes_a_file(seeded, tmp_path):
    workflow = Workflow.objects.get(name="Asset Check Out")
    target = tmp_path / "check-out.json"

    output = _run("workflow_export", str(workflow.pk), "--output", str(target))

    assert output == ""
    assert json.loads(target.read_text(encoding="utf-8"))["workflow"]["name"] == "Asset Check Out"


def test_workflow_export_of_an_unknown_workflow_or_tenant_fails(seeded, other_tenant):
    workflow = Workflow.objects.get(name="Asset Check Out")

    with pytest.raises(CommandError, match="No workflow named 'Nope'"):
        _run("workflow_export", "Nope")
    with pytest.raises(CommandError, match="No workflow named"):
        _run("workflow_export", str(workflow.pk), "--tenant", other_tenant.slug)
    with pytest.raises(CommandError, match="Unknown tenant 'nowhere'"):
        _run("workflow_export", "Asset Check Out", "--tenant", "nowhere")


def test_workflow_export_to_an_unwritable_path_fails(seeded, tmp_path):
    with pytest.raises(CommandError, match="Cannot write"):
        _run("workflow_export", "Asset Check Out", "--output", str(tmp_path / "missing" / "x.json"))


# --- workflow_import ----------------------------------------------------------------------------


def _export(name: str, path: Path) -> Path:
    _run("workflow_export", name, "--output", str(path))
    return path


def test_an_exported_workflow_imports_into_another_tenant_by_role_name_and_publishes(seeded, other_tenant, tmp_path):
    source = _export("Fibre Fault Repair", tmp_path / "fibre.json")
    for role_id, name in ((31, "Ticket Coordinator"), (32, "asset manager"), (33, "Admin")):
        RoleFactory.create(tenant=other_tenant, role_id=role_id, name=name)

    output = _run("workflow_import", str(source), "--tenant", other_tenant.slug, "--publish")

    imported = Workflow.objects.get(tenant=other_tenant, name="Fibre Fault Repair")
    original = Workflow.objects.get(tenant=seeded, name="Fibre Fault Repair")
    assert imported.status == WorkflowStatus.PUBLISHED
    assert "published as version 1" in output

    def shape(workflow):
        definition = _definition(workflow)
        steps = [
            (step["key"], step["name"], step["role"]["name"].casefold(), step["is_start"], step["is_end"])
            for step in definition["steps"]
        ]
        return steps, definition["transitions"]

    assert shape(imported) == shape(original)
    assert {step["role"]["role_id"] for step in _definition(imported)["steps"]} == {31, 32, 33}


def test_importing_over_the_same_workflow_keeps_its_steps_and_its_version(seeded, tmp_path):
    source = _export("Asset Check In", tmp_path / "check-in.json")
    workflow = Workflow.objects.get(name="Asset Check In")
    step_ids = set(Step.objects.filter(workflow=workflow).values_list("pk", flat=True))

    output = _run("workflow_import", str(source), "--publish")

    assert set(Step.objects.filter(workflow=workflow).values_list("pk", flat=True)) == step_ids
    assert WorkflowVersion.objects.filter(workflow=workflow).count() == 1
    assert "unchanged, still version 1" in output


def test_a_workflow_document_can_be_read_from_standard_input(seeded, tmp_path, monkeypatch, other_tenant):
    text = _export("IT Support Access Request", tmp_path / "access.json").read_text(encoding="utf-8")
    RoleFactory.create(tenant=other_tenant, role_id=None, name="Asset Manager")
    monkeypatch.setattr("sys.stdin", io.StringIO(text))

    output = _run("workflow_import", "-", "--tenant", other_tenant.slug)

    imported = Workflow.objects.get(tenant=other_tenant, name="IT Support Access Request")
    assert imported.status == WorkflowStatus.DRAFT
    assert Step.objects.filter(workflow=imported, role__name="Asset Manager", role__role_id=None).count() == 1
    assert "Imported 'IT Support Access Request'" in output


def test_importing_a_missing_file_fails(db, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        _run("workflow_import", str(tmp_path / "nope.json"))


def test_importing_a_file_that_is_not_json_fails_with_the_position(db, tmp_path):
    source = tmp_path / "broken.json"
    source.write_text('{"format": "workflow_api.workflow/1",\n  "workflow": }', encoding="utf-8")

    with pytest.raises(CommandError, match=r"not JSON: Expecting value at line 2, column 15"):
        _run("workflow_import", str(source))


def test_importing_a_document_of_another_format_fails(db, tmp_path):
    source = tmp_path / "other.json"
    source.write_text(json.dumps({"format": "something/9"}), encoding="utf-8")

    with pytest.raises(CommandError, match="format"):
        _run("workflow_import", str(source))


def test_importing_a_bad_document_lists_every_field_error_and_writes_nothing(seeded, tmp_path):
    document = json.loads(_export("Asset Check In", tmp_path / "good.json").read_text(encoding="utf-8"))
    document["workflow"]["name"] = ""
    document["workflow"]["sla"]["low"] = -5
    document["steps"][0]["role"] = {"role_id": 999, "name": "Nobody"}
    document["steps"][1]["weight"] = "NaN"
    source = tmp_path / "bad.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    before = _written()

    with pytest.raises(CommandError) as failed:
        _run("workflow_import", str(source))

    message = str(failed.value)
    for where in ("workflow.name", "workflow.sla.low", "steps[0].role", "steps[1].weight"):
        assert f"  {where}: " in message
    assert _written() == before


def test_importing_a_graph_that_cannot_be_published_fails_with_its_problems_and_writes_nothing(seeded, tmp_path):
    document = json.loads(_export("Asset Check In", tmp_path / "good.json").read_text(encoding="utf-8"))
    document["workflow"]["name"] = "Broken Check In"
    document["workflow"]["category"] = "Broken"
    for step in document["steps"]:
        step["is_end"] = False
    source = tmp_path / "no-end.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    before = _written()

    with pytest.raises(CommandError, match="no_end_step: At least one step must be an end step"):
        _run("workflow_import", str(source), "--publish")

    assert _written() == before


# --- the message from the auth service, through RabbitMQ and a real worker ------------------------


@pytest.fixture(scope="module")
def seed_worker(django_db_setup, django_db_blocker) -> Iterator[WorkerProcess]:
    require_postgres()  # the worker is another process: SQLite's test database is in memory
    broker_url = require_broker()
    with django_db_blocker.unblock():
        purge(broker_url)  # every inbound queue: this worker consumes them all
        with running_worker(broker_url) as worker:
            yield worker


@pytest.mark.usefixtures("seed_worker")
@pytest.mark.broker
@pytest.mark.xdist_group("broker")
@pytest.mark.django_db(transaction=True)
def test_the_auth_services_seed_message_seeds_the_default_tenant_once(broker_url):
    client = upstream_client(broker_url)
    try:
        # As the auth service sends it: the wire name, its queue, no arguments; then a redelivery.
        client.send_task(SEED_JOB, queue=WORKFLOW_SEED_QUEUE)
        wait_until(lambda: Workflow.objects.filter(status=WorkflowStatus.PUBLISHED).count() == 7)
        client.send_task(SEED_JOB, queue=WORKFLOW_SEED_QUEUE)
        wait_until(lambda: MessageCounter.objects.filter(task_name=SEED_JOB, outcome="duplicate").exists())
    finally:
        upstream_client_close(client)

    assert WorkflowVersion.objects.count() == 7
    # Only what the seed writes: a role message retried late by an earlier test may still arrive.
    assert Role.objects.filter(tenant__slug="default", role_id__isnull=True).count() == 4
    assert not InboundFailure.objects.filter(task_name=SEED_JOB).exists()
