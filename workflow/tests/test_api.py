"""The workflow designer's REST API (api.md "Workflows"), end to end through HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from role.services import role_sync
from role.tests.factories import role_data
from step.models import Step
from task.models import ItemStatus, Task, TaskStatus
from task.tests.factories import TaskItemFactory
from workflow.definition import STRUCTURAL_CODES, ProblemCode
from workflow.models import Workflow, WorkflowStatus, WorkflowVersion
from workflow.tests.factories import GraphEdgeDataFactory, GraphNodeDataFactory, TaskFactory, WorkflowFactory
from workflow_api.testing.tokens import admin_token

pytestmark = pytest.mark.django_db

WORKFLOWS = "/api/v1/workflows/"
ADMIN, ASSET_MANAGER, BUDGET_MANAGER = 10, 12, 13


def url(workflow_id: int, suffix: str = "") -> str:
    return f"{WORKFLOWS}{workflow_id}/{suffix}"


def node(**fields: Any) -> dict[str, Any]:
    return GraphNodeDataFactory.build(**fields)


def edge(source: str, target: str, name: str, **fields: Any) -> dict[str, Any]:
    return GraphEdgeDataFactory.build(from_=source, to=target, name=name, **fields)


def three_steps(*, resolver: int = ASSET_MANAGER, resolve_name: str = "Resolve Ticket") -> dict[str, Any]:
    """Triage → Resolve → Finalize, with Reject back to Triage (the standard asset workflows' shape)."""
    return {
        "nodes": [
            node(id="triage", name="Triage Ticket", role_id=ADMIN, is_start=True),
            node(id="resolve", name=resolve_name, role_id=resolver, escalate_to_role_id=ADMIN, weight=3),
            node(id="finalize", name="Finalize Ticket", role_id=ADMIN, is_end=True),
        ],
        "edges": [
            edge("triage", "resolve", "Submit"),
            edge("resolve", "finalize", "Approve"),
            edge("resolve", "triage", "Reject"),
        ],
    }


def put_graph(client: APIClient, workflow_id: int, graph: dict[str, Any]) -> dict[str, Any]:
    response = client.put(url(workflow_id, "graph/"), graph, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def publish(client: APIClient, workflow_id: int, expected_status: int = 201) -> dict[str, Any]:
    response = client.post(url(workflow_id, "publish/"))
    assert response.status_code == expected_status, response.json()
    return response.json()


def stored_ids(graph: dict[str, Any]) -> dict[str, int]:
    return {n["name"]: n["id"] for n in graph["nodes"]}


def audit_actions(workflow_id: int) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_type="workflow", target_id=str(workflow_id))
        .order_by("id")
        .values_list("action", flat=True)
    )


# --- create, read, update, delete --------------------------------------------------------


def test_an_admin_creates_a_draft_with_slas_given_as_iso_durations_or_seconds(admin_client, tenant):
    response = admin_client.post(
        WORKFLOWS,
        {
            "name": "Asset Check In",
            "description": "Returning equipment",
            "department": "Asset Department",
            "category": "Asset Check In",
            "sub_category": "Check In",
            "sla": {"urgent": "PT4H", "high": 8 * 3600, "medium": "P2D", "low": 5 * 86400},
            "completion_action": "notify_owner",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft"
    assert body["current_version"] is None
    assert body["sla"] == {
        "urgent": "P0DT04H00M00S",
        "high": "P0DT08H00M00S",
        "medium": "P2DT00H00M00S",
        "low": "P5DT00H00M00S",
    }
    assert body["completion_action"] == "notify_owner"
    stored = Workflow.objects.get(pk=body["id"])
    assert (stored.sla_urgent, stored.sla_high) == (timedelta(hours=4), timedelta(hours=8))
    assert stored.tenant == tenant
    assert audit_actions(stored.pk) == [AuditAction.WORKFLOW_CREATED]


def test_an_iso_duration_read_back_from_the_api_is_accepted_as_input(admin_client, tenant):
    workflow = WorkflowFactory.create(sla_urgent=timedelta(hours=1, minutes=30))
    sla = admin_client.get(url(workflow.pk)).json()["sla"]

    response = admin_client.patch(url(workflow.pk), {"sla": sla}, format="json")

    assert response.status_code == 200, response.json()
    workflow.refresh_from_db()
    assert workflow.sla_urgent == timedelta(hours=1, minutes=30)


def test_a_workflow_created_without_slas_gets_the_default_ones(admin_client, tenant):
    response = admin_client.post(WORKFLOWS, {"name": "Plain", "department": "IT", "category": "Access"}, format="json")

    assert response.status_code == 201
    assert response.json()["sla"]["urgent"] == "P0DT04H00M00S"
    assert response.json()["sla"]["low"] == "P5DT00H00M00S"


@pytest.mark.parametrize(
    "bad", ["soon", "", "P1Y", -60, 0, "PT0S", "-PT4H", True, 1.5, None, ["PT4H"], 10**20, "P99999999999D", "P3651D"]
)
def test_an_unreadable_or_non_positive_sla_is_a_400_naming_the_priority(admin_client, tenant, bad):
    response = admin_client.post(
        WORKFLOWS,
        {"name": "Bad SLA", "department": "IT", "category": "Access", "sla": {"urgent": bad, "low": "P5D"}},
        format="json",
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert set(body["errors"]) == {"sla"}
    assert set(body["errors"]["sla"]) == {"urgent"}
    assert not Workflow.objects.filter(name="Bad SLA").exists()


def test_slas_out_of_order_are_refused_on_create_and_on_patch(admin_client, tenant):
    out_of_order = {"urgent": "PT8H", "high": "PT4H", "medium": "P2D", "low": "P5D"}
    response = admin_client.post(
        WORKFLOWS, {"name": "Upside down", "department": "IT", "category": "Access", "sla": out_of_order}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"]["sla"] == ["SLAs must satisfy urgent < high < medium < low."]
    assert not Workflow.objects.filter(name="Upside down").exists()

    workflow = WorkflowFactory.create(name="Right way up")
    response = admin_client.patch(f"{WORKFLOWS}{workflow.pk}/", {"sla": {"urgent": "P6D"}}, format="json")

    assert response.status_code == 400
    assert "sla" in response.json()["errors"]
    workflow.refresh_from_db()
    assert workflow.sla_urgent == timedelta(hours=4)


def test_a_duplicate_name_in_the_tenant_is_a_400_with_a_field_error(admin_client, tenant, other_tenant):
    WorkflowFactory.create(name="Asset Check In")
    WorkflowFactory.create(name="Asset Check Out", tenant=other_tenant)

    clash = admin_client.post(WORKFLOWS, {"name": "Asset Check In", "department": "A", "category": "B"}, format="json")
    other_tenants_name = admin_client.post(
        WORKFLOWS, {"name": "Asset Check Out", "department": "A", "category": "B"}, format="json"
    )

    assert clash.status_code == 400
    assert clash.json()["code"] == "validation_error"
    assert "already exists" in clash.json()["errors"]["name"][0]
    assert other_tenants_name.status_code == 201


def test_required_fields_missing_are_listed_together(admin_client, tenant):
    response = admin_client.post(WORKFLOWS, {"description": "no name"}, format="json")

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"name", "department", "category"}


def test_renaming_onto_another_workflows_name_is_a_400(admin_client, tenant):
    WorkflowFactory.create(name="Taken")
    workflow = WorkflowFactory.create(name="Mine")

    response = admin_client.patch(url(workflow.pk), {"name": "Taken"}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()["errors"]
    workflow.refresh_from_db()
    assert workflow.name == "Mine"


def test_patch_changes_only_the_fields_given_and_bumps_the_edit_version(admin_client, tenant):
    workflow = WorkflowFactory.create(description="old", sla_low=timedelta(days=5))
    before = admin_client.get(url(workflow.pk)).json()

    response = admin_client.patch(
        url(workflow.pk),
        {"description": "new", "sla": {"low": "P6D"}, "edit_version": before["edit_version"]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["description"] == "new"
    assert body["name"] == before["name"]
    assert body["sla"]["low"] == "P6DT00H00M00S"
    assert body["sla"]["urgent"] == before["sla"]["urgent"]
    assert body["edit_version"] == before["edit_version"] + 1
    event = AuditEvent.objects.get(target_id=str(workflow.pk), action=AuditAction.WORKFLOW_UPDATED)
    assert set(event.changes) == {"description", "sla_low"}


def test_a_patch_based_on_a_stale_edit_version_is_a_409_and_changes_nothing(admin_client, tenant):
    workflow = WorkflowFactory.create(description="first")
    read = admin_client.get(url(workflow.pk)).json()["edit_version"]
    assert admin_client.patch(url(workflow.pk), {"description": "second"}, format="json").status_code == 200

    response = admin_client.patch(url(workflow.pk), {"description": "third", "edit_version": read}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "edit_conflict"
    workflow.refresh_from_db()
    assert workflow.description == "second"


def test_status_cannot_be_set_through_patch(admin_client, tenant):
    workflow = WorkflowFactory.create()

    response = admin_client.patch(url(workflow.pk), {"status": "published"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "draft"
    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.DRAFT


def test_put_on_a_workflow_is_not_allowed(admin_client, tenant):
    workflow = WorkflowFactory.create()

    assert admin_client.put(url(workflow.pk), {"name": "x"}, format="json").status_code == 405


def test_readers_may_read_but_not_write(user_client, tenant, roles):
    workflow = WorkflowFactory.create()

    assert user_client.get(WORKFLOWS).status_code == 200
    for path in ("", "graph/", "validate/", "weights/", "statistics/", "versions/", "export/"):
        assert user_client.get(url(workflow.pk, path)).status_code == 200, path
    refused = [
        user_client.post(WORKFLOWS, {"name": "x", "department": "a", "category": "b"}, format="json"),
        user_client.patch(url(workflow.pk), {"name": "y"}, format="json"),
        user_client.delete(url(workflow.pk)),
        user_client.put(url(workflow.pk, "graph/"), three_steps(), format="json"),
        user_client.put(url(workflow.pk, "weights/"), {"steps": []}, format="json"),
        user_client.post(url(workflow.pk, "publish/")),
        user_client.post(url(workflow.pk, "pause/")),
        user_client.post(url(workflow.pk, "retire/")),
        user_client.post(url(workflow.pk, "versions/1/migrate/"), {"dry_run": True}, format="json"),
        user_client.post(f"{WORKFLOWS}import/", {}, format="json"),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert {r.json()["code"] for r in refused} == {"permission_denied"}
    workflow.refresh_from_db()
    assert workflow.deleted_at is None
    assert Step.objects.count() == 0


def test_anonymous_callers_are_refused(api_client, tenant):
    workflow = WorkflowFactory.create()

    assert api_client.get(WORKFLOWS).status_code == 401
    assert api_client.get(url(workflow.pk)).status_code == 401
    assert api_client.post(url(workflow.pk, "publish/")).status_code == 401


def test_another_tenants_workflow_is_not_found(admin_client, tenant, other_tenant):
    theirs = WorkflowFactory.create(tenant=other_tenant)

    assert admin_client.get(WORKFLOWS).json()["count"] == 0
    for path in ("", "graph/", "validate/", "weights/", "statistics/", "versions/", "export/"):
        response = admin_client.get(url(theirs.pk, path))
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
    assert admin_client.patch(url(theirs.pk), {"name": "mine"}, format="json").status_code == 404
    assert admin_client.delete(url(theirs.pk)).status_code == 404
    assert admin_client.post(url(theirs.pk, "publish/")).status_code == 404
    theirs.refresh_from_db()
    assert theirs.deleted_at is None


def test_the_other_tenants_admin_sees_only_their_own_workflows(tenant, other_tenant):
    WorkflowFactory.create(name="Ours")
    WorkflowFactory.create(name="Theirs", tenant=other_tenant)
    acme = APIClient()
    acme.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token(tenant=other_tenant.slug)}")

    assert [w["name"] for w in acme.get(WORKFLOWS).json()["results"]] == ["Theirs"]


def test_a_workflow_without_tasks_is_deleted_and_then_not_found(admin_client, tenant):
    workflow = WorkflowFactory.create(name="Short-lived")

    response = admin_client.delete(url(workflow.pk))

    assert response.status_code == 204
    assert admin_client.get(url(workflow.pk)).status_code == 404
    assert admin_client.get(url(workflow.pk, "graph/")).status_code == 404
    assert admin_client.get(WORKFLOWS).json()["count"] == 0
    assert AuditAction.WORKFLOW_DELETED in audit_actions(workflow.pk)
    # The name is free again.
    again = admin_client.post(WORKFLOWS, {"name": "Short-lived", "department": "a", "category": "b"}, format="json")
    assert again.status_code == 201


def test_a_workflow_with_tasks_cannot_be_deleted(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    put_graph(admin_client, workflow.pk, three_steps())
    publish(admin_client, workflow.pk)
    Task.objects.create(
        tenant=tenant,
        workflow=workflow,
        workflow_version=WorkflowVersion.objects.get(workflow=workflow),
        current_step_key="triage-ticket",
        status=TaskStatus.COMPLETED,
    )

    response = admin_client.delete(url(workflow.pk))

    assert response.status_code == 409
    assert response.json()["code"] == "workflow_in_use"
    assert admin_client.get(url(workflow.pk)).status_code == 200


# --- the list --------------------------------------------------------------------------------


def test_the_list_filters_by_status_department_and_category_and_searches_names(admin_client, tenant):
    WorkflowFactory.create(name="Asset Check In", department="Asset Department", category="Asset Check In")
    WorkflowFactory.create(name="Asset Check Out", department="Asset Department", category="Asset Check Out")
    WorkflowFactory.create(
        name="Budget", department="Budget Department", category="Budget", status=WorkflowStatus.PAUSED
    )

    def names(**query: Any) -> list[str]:
        response = admin_client.get(WORKFLOWS, query)
        assert response.status_code == 200, response.json()
        return [row["name"] for row in response.json()["results"]]

    assert names() == ["Asset Check In", "Asset Check Out", "Budget"]
    assert names(status="paused") == ["Budget"]
    assert names(department="asset department") == ["Asset Check In", "Asset Check Out"]
    assert names(category="Asset Check Out") == ["Asset Check Out"]
    assert names(search="check") == ["Asset Check In", "Asset Check Out"]
    assert names(ordering="-name") == ["Budget", "Asset Check Out", "Asset Check In"]
    assert admin_client.get(WORKFLOWS, {"status": "bogus"}).status_code == 400


def test_the_list_asks_the_database_a_fixed_number_of_times(admin_client, tenant, roles, django_assert_max_num_queries):
    for n in range(8):
        workflow = WorkflowFactory.create(name=f"Workflow {n}")
        if n % 2:
            put_graph(admin_client, workflow.pk, three_steps())
            publish(admin_client, workflow.pk)

    with django_assert_max_num_queries(3):
        response = admin_client.get(WORKFLOWS)

    rows = response.json()["results"]
    assert len(rows) == 8
    assert [row["current_version"] for row in rows] == [None, 1] * 4


# --- the graph --------------------------------------------------------------------------------


def test_a_graph_put_with_client_ids_answers_with_the_stored_ids(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()

    body = put_graph(admin_client, workflow.pk, three_steps())

    steps = {step.name: step for step in Step.objects.filter(workflow=workflow)}
    assert stored_ids(body) == {name: step.pk for name, step in steps.items()}
    triage, resolve, finalize = (steps[n].pk for n in ("Triage Ticket", "Resolve Ticket", "Finalize Ticket"))
    assert sorted((e["from"], e["to"], e["name"]) for e in body["edges"]) == sorted(
        [(triage, resolve, "Submit"), (resolve, finalize, "Approve"), (resolve, triage, "Reject")]
    )
    assert all(isinstance(e["id"], int) for e in body["edges"])
    resolve_node = next(n for n in body["nodes"] if n["id"] == resolve)
    assert resolve_node["role_id"] == ASSET_MANAGER
    assert resolve_node["escalate_to_role_id"] == ADMIN
    assert resolve_node["weight"] == 3
    assert resolve_node["key"] == "resolve-ticket"
    assert admin_client.get(url(workflow.pk, "graph/")).json() == body
    assert body["edit_version"] == Workflow.objects.get(pk=workflow.pk).edit_version
    assert AuditAction.WORKFLOW_GRAPH_REPLACED in audit_actions(workflow.pk)


def test_putting_the_graph_again_keeps_step_ids_and_keys_even_when_steps_are_renamed(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    first = put_graph(admin_client, workflow.pk, three_steps())
    ids = stored_ids(first)
    keys = {n["id"]: n["key"] for n in first["nodes"]}
    nodes = [{**n, "id": str(n["id"])} for n in first["nodes"]]
    nodes[1]["name"] = "Resolve on site"
    nodes.append(node(id="extra", name="Double-check", role_id=BUDGET_MANAGER))
    edges = [{"id": str(e["id"]), "from": e["from"], "to": e["to"], "name": e["name"]} for e in first["edges"]]
    edges.append(edge(str(ids["Resolve Ticket"]), "extra", "Escalate"))
    edges.append(edge("extra", str(ids["Finalize Ticket"]), "Confirm"))

    second = put_graph(admin_client, workflow.pk, {"nodes": nodes, "edges": edges})

    again = {n["id"]: n for n in second["nodes"]}
    for step_id, key in keys.items():
        assert again[step_id]["key"] == key
    assert again[ids["Resolve Ticket"]]["name"] == "Resolve on site"
    assert again[ids["Resolve Ticket"]]["key"] == "resolve-ticket"
    new = [n for n in second["nodes"] if n["id"] not in keys]
    assert [(n["name"], n["key"]) for n in new] == [("Double-check", "double-check")]
    assert len(second["edges"]) == 5


def test_a_step_left_out_of_the_put_is_removed(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    first = put_graph(admin_client, workflow.pk, three_steps())
    ids = stored_ids(first)

    second = put_graph(
        admin_client,
        workflow.pk,
        {
            "nodes": [
                node(id=str(ids["Triage Ticket"]), name="Triage Ticket", role_id=ADMIN, is_start=True),
                node(id=str(ids["Finalize Ticket"]), name="Finalize Ticket", role_id=ADMIN, is_end=True),
            ],
            "edges": [edge(str(ids["Triage Ticket"]), str(ids["Finalize Ticket"]), "Submit")],
        },
    )

    assert set(stored_ids(second).values()) == {ids["Triage Ticket"], ids["Finalize Ticket"]}
    assert not Step.objects.filter(pk=ids["Resolve Ticket"]).exists()


def test_a_graph_with_a_self_loop_a_dangling_edge_and_an_unknown_role_is_refused_listing_every_problem(
    admin_client, tenant, roles
):
    workflow = WorkflowFactory.create()
    graph = three_steps()
    graph["nodes"][1]["role_id"] = 999
    graph["edges"].append(edge("resolve", "resolve", "Again", id="loop"))
    graph["edges"].append(edge("resolve", "nowhere", "Lost", id="dangling"))

    response = admin_client.put(url(workflow.pk, "graph/"), graph, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "workflow_invalid"
    problems = body["errors"]["problems"]
    assert {(p["code"], p.get("step"), p.get("transition")) for p in problems} == {
        ("unknown_role", "resolve", None),
        ("self_loop", None, "loop"),
        ("dangling_transition", None, "dangling"),
    }
    assert "nowhere" in next(p["message"] for p in problems if p["code"] == "dangling_transition")
    assert Step.objects.filter(workflow=workflow).count() == 0
    assert AuditAction.WORKFLOW_GRAPH_REPLACED not in audit_actions(workflow.pk)


def test_two_new_steps_with_the_same_key_are_refused_not_a_server_error(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    graph = three_steps()
    graph["nodes"][0]["key"] = "same"
    graph["nodes"][1]["key"] = "same"

    response = admin_client.put(url(workflow.pk, "graph/"), graph, format="json")

    assert response.status_code == 400
    assert [p["code"] for p in response.json()["errors"]["problems"]] == ["duplicate_step"]
    assert Step.objects.filter(workflow=workflow).count() == 0


def test_a_new_step_may_not_take_the_key_of_a_kept_step(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    first = put_graph(admin_client, workflow.pk, three_steps())
    nodes = [{**n, "id": str(n["id"])} for n in first["nodes"]]
    nodes.append(node(id="copy", name="Copy", role_id=ADMIN, key="triage-ticket"))
    edges = [{**e, "id": str(e["id"]), "from": str(e["from"]), "to": str(e["to"])} for e in first["edges"]]

    response = admin_client.put(url(workflow.pk, "graph/"), {"nodes": nodes, "edges": edges}, format="json")

    assert response.status_code == 400
    assert [p["code"] for p in response.json()["errors"]["problems"]] == ["duplicate_step"]
    assert Step.objects.filter(workflow=workflow).count() == 3


def test_a_malformed_graph_payload_is_a_400_with_field_errors(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()

    response = admin_client.put(
        url(workflow.pk, "graph/"),
        {
            "nodes": [{"id": "a", "role_id": "Admin", "weight": "heavy"}, {"name": "no id", "key": "not a slug!"}],
            "edges": [{"id": "e", "from": "a"}],
        },
        format="json",
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert response.json()["code"] == "validation_error"
    assert set(errors["nodes"]["0"]) == {"name", "role_id", "weight"}
    assert set(errors["nodes"]["1"]) == {"id", "key"}
    assert set(errors["edges"]["0"]) == {"to", "name"}


def test_a_graph_put_without_nodes_or_edges_is_a_400(admin_client, tenant):
    workflow = WorkflowFactory.create()

    response = admin_client.put(url(workflow.pk, "graph/"), {}, format="json")

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"nodes", "edges"}


def test_a_graph_put_based_on_a_stale_edit_version_is_a_409(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    read = admin_client.get(url(workflow.pk, "graph/")).json()["edit_version"]
    put_graph(admin_client, workflow.pk, three_steps())

    stale = admin_client.put(
        url(workflow.pk, "graph/"), {**three_steps(resolve_name="Overwrite"), "edit_version": read}, format="json"
    )
    fresh = admin_client.put(
        url(workflow.pk, "graph/"), {**three_steps(resolve_name="Mine"), "edit_version": read + 1}, format="json"
    )

    assert stale.status_code == 409
    assert stale.json()["code"] == "edit_conflict"
    assert fresh.status_code == 200, fresh.json()
    assert "Mine" in stored_ids(fresh.json())


def test_a_draft_may_be_stored_with_problems_that_only_block_publishing(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()

    body = put_graph(admin_client, workflow.pk, {"nodes": [node(id="a", name="Lonely", role_id=None)], "edges": []})

    assert [n["name"] for n in body["nodes"]] == ["Lonely"]


# --- validation and publishing --------------------------------------------------------------


def test_validate_lists_every_problem_of_the_draft(admin_client, tenant, roles):
    workflow = WorkflowFactory.create(sla_urgent=timedelta(days=9))
    graph = three_steps()
    graph["nodes"][1]["role_id"] = None
    graph["nodes"][2]["is_end"] = False
    body = put_graph(admin_client, workflow.pk, graph)
    resolve = stored_ids(body)["Resolve Ticket"]

    response = admin_client.get(url(workflow.pk, "validate/"))

    assert response.status_code == 200
    result = response.json()
    assert result["valid"] is False
    codes = {(e["code"], e.get("step")) for e in result["errors"]}
    assert ("missing_role", str(resolve)) in codes
    assert ("no_end_step", None) in codes
    assert ("sla_not_ordered", None) in codes
    assert all(e["message"] for e in result["errors"])


def test_validate_says_valid_for_a_publishable_draft(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    put_graph(admin_client, workflow.pk, three_steps())

    assert admin_client.get(url(workflow.pk, "validate/")).json() == {"valid": True, "errors": []}


def test_an_empty_workflow_is_not_valid(admin_client, tenant):
    workflow = WorkflowFactory.create()

    result = admin_client.get(url(workflow.pk, "validate/")).json()

    assert result["valid"] is False
    assert [e["code"] for e in result["errors"]] == ["no_steps"]


def test_publishing_creates_version_1_and_makes_it_current(admin_client, tenant, roles):
    workflow = WorkflowFactory.create(name="Asset Check In")
    put_graph(admin_client, workflow.pk, three_steps())

    body = publish(admin_client, workflow.pk)

    assert body["number"] == 1
    assert body["created"] is True
    assert len(body["content_hash"]) == 64
    assert body["published_by"] == {"user_id": 21, "name": "Li Wei"}
    definition = body["definition"]
    assert [s["key"] for s in definition["steps"]] == ["finalize-ticket", "resolve-ticket", "triage-ticket"]
    resolve = next(s for s in definition["steps"] if s["key"] == "resolve-ticket")
    assert resolve["role"]["role_id"] == ASSET_MANAGER
    assert resolve["role"]["name"] == "Asset Manager"
    assert {(t["from"], t["to"], t["name"]) for t in definition["transitions"]} == {
        ("triage-ticket", "resolve-ticket", "Submit"),
        ("resolve-ticket", "finalize-ticket", "Approve"),
        ("resolve-ticket", "triage-ticket", "Reject"),
    }
    shown = admin_client.get(url(workflow.pk)).json()
    assert (shown["status"], shown["current_version"]) == ("published", 1)
    assert AuditAction.WORKFLOW_PUBLISHED in audit_actions(workflow.pk)


def test_publishing_an_unchanged_definition_creates_no_new_version(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    graph = put_graph(admin_client, workflow.pk, three_steps())
    first = publish(admin_client, workflow.pk)
    # Moving nodes on the canvas is drawing, not behaviour.
    moved = [{**n, "id": str(n["id"]), "x": n["x"] + 50} for n in graph["nodes"]]
    edges = [{**e, "id": str(e["id"]), "from": str(e["from"]), "to": str(e["to"])} for e in graph["edges"]]
    put_graph(admin_client, workflow.pk, {"nodes": moved, "edges": edges})

    again = publish(admin_client, workflow.pk, expected_status=200)

    assert again["created"] is False
    assert again["number"] == 1
    assert again["content_hash"] == first["content_hash"]
    assert WorkflowVersion.objects.filter(workflow=workflow).count() == 1
    assert audit_actions(workflow.pk).count(AuditAction.WORKFLOW_PUBLISHED) == 1


def test_publishing_after_a_change_creates_version_2_and_version_1_stays_as_it_was(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    put_graph(admin_client, workflow.pk, three_steps())
    publish(admin_client, workflow.pk)
    v1 = admin_client.get(url(workflow.pk, "versions/1/")).json()
    graph = admin_client.get(url(workflow.pk, "graph/")).json()
    nodes = [{**n, "id": str(n["id"])} for n in graph["nodes"]]
    next(n for n in nodes if n["key"] == "resolve-ticket")["role_id"] = BUDGET_MANAGER
    edges = [{**e, "id": str(e["id"]), "from": str(e["from"]), "to": str(e["to"])} for e in graph["edges"]]
    put_graph(admin_client, workflow.pk, {"nodes": nodes, "edges": edges})

    v2 = publish(admin_client, workflow.pk)

    assert (v2["number"], v2["created"]) == (2, True)
    assert v2["content_hash"] != v1["content_hash"]
    assert admin_client.get(url(workflow.pk)).json()["current_version"] == 2
    assert admin_client.get(url(workflow.pk, "versions/1/")).json() == v1
    old_resolver = next(s for s in v1["definition"]["steps"] if s["key"] == "resolve-ticket")["role"]["name"]
    assert old_resolver == "Asset Manager"

    versions = admin_client.get(url(workflow.pk, "versions/")).json()
    assert versions["count"] == 2
    assert [v["number"] for v in versions["results"]] == [2, 1]
    assert "definition" not in versions["results"][0]

    diff = admin_client.get(url(workflow.pk, "versions/2/diff/"), {"against": 1}).json()
    assert (diff["against"], diff["number"]) == (1, 2)
    assert diff["steps_added"] == diff["steps_removed"] == []
    assert list(diff["steps_changed"]) == ["resolve-ticket"]
    assert diff["steps_changed"]["resolve-ticket"]["role"][1]["name"] == "Budget Manager"


def test_the_diff_needs_an_existing_version_to_compare_with(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    put_graph(admin_client, workflow.pk, three_steps())
    publish(admin_client, workflow.pk)

    assert admin_client.get(url(workflow.pk, "versions/1/diff/")).status_code == 400
    assert admin_client.get(url(workflow.pk, "versions/1/diff/"), {"against": 7}).status_code == 404
    assert admin_client.get(url(workflow.pk, "versions/7/")).status_code == 404


def test_publishing_an_invalid_draft_is_a_400_listing_the_problems(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    graph = three_steps()
    graph["nodes"][0]["is_start"] = False
    put_graph(admin_client, workflow.pk, graph)

    response = admin_client.post(url(workflow.pk, "publish/"))

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "workflow_invalid"
    assert "no_start_step" in {p["code"] for p in body["errors"]["problems"]}
    assert WorkflowVersion.objects.filter(workflow=workflow).count() == 0
    assert admin_client.get(url(workflow.pk)).json()["status"] == "draft"


# --- every problem code, through the API ------------------------------------------------------
#
# Each scenario arranges a workflow (through the API, or in the database where
# the API refuses to store such a state: SLAs and matching keys are checked on
# every save) and returns the graph to PUT. Structural codes must make the PUT
# itself a 400; the others are stored, reported by validate/ and refused by publish/.

Arrange = Callable[[APIClient, Workflow], dict[str, Any]]
PROBLEM_SCENARIOS: dict[ProblemCode, Arrange] = {}


def scenario(code: ProblemCode) -> Callable[[Arrange], Arrange]:
    def register(arrange: Arrange) -> Arrange:
        PROBLEM_SCENARIOS[code] = arrange
        return arrange

    return register


def _three_steps_where(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    graph = three_steps()
    change(graph)
    return graph


@scenario(ProblemCode.NO_STEPS)
def _no_steps(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return {"nodes": [], "edges": []}


@scenario(ProblemCode.NO_START_STEP)
def _no_start_step(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return _three_steps_where(lambda g: g["nodes"][0].update(is_start=False))


@scenario(ProblemCode.MULTIPLE_START_STEPS)
def _two_start_steps(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return _three_steps_where(lambda g: g["nodes"][1].update(is_start=True))


@scenario(ProblemCode.NO_END_STEP)
def _no_end_step(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return _three_steps_where(lambda g: g["nodes"][2].update(is_end=False))


@scenario(ProblemCode.UNREACHABLE_STEP)
def _an_island(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return _three_steps_where(lambda g: g["nodes"].append(node(id="island", role_id=ADMIN, is_end=True)))


@scenario(ProblemCode.NO_PATH_TO_END)
def _a_dead_end(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    def change(graph: dict[str, Any]) -> None:
        graph["nodes"].append(node(id="parked", role_id=ADMIN))
        graph["edges"].append(edge("resolve", "parked", "Park"))

    return _three_steps_where(change)


@scenario(ProblemCode.MISSING_ROLE)
def _no_owner(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return _three_steps_where(lambda g: g["nodes"][1].update(role_id=None))


@scenario(ProblemCode.UNKNOWN_ROLE)
def _unknown_owner(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return _three_steps_where(lambda g: g["nodes"][1].update(role_id=999))


@scenario(ProblemCode.UNKNOWN_ESCALATION_ROLE)
def _unknown_escalation(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return _three_steps_where(lambda g: g["nodes"][1].update(escalate_to_role_id=999))


@scenario(ProblemCode.NEGATIVE_WEIGHT)
def _negative_weight(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return _three_steps_where(lambda g: g["nodes"][1].update(weight=-1))


@scenario(ProblemCode.DUPLICATE_STEP)
def _same_key_twice(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    def change(graph: dict[str, Any]) -> None:
        graph["nodes"][0]["key"] = graph["nodes"][1]["key"] = "same"

    return _three_steps_where(change)


@scenario(ProblemCode.DANGLING_TRANSITION)
def _edge_to_nowhere(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return _three_steps_where(lambda g: g["edges"].append(edge("resolve", "nowhere", "Lost")))


@scenario(ProblemCode.SELF_LOOP)
def _self_loop(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return _three_steps_where(lambda g: g["edges"].append(edge("resolve", "resolve", "Again")))


@scenario(ProblemCode.DUPLICATE_TRANSITION)
def _submit_twice(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return _three_steps_where(lambda g: g["edges"].append(edge("triage", "resolve", " SUBMIT ")))


@scenario(ProblemCode.END_STEP_HAS_OUTGOING)
def _reopen_from_the_end(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    return _three_steps_where(lambda g: g["edges"].append(edge("finalize", "triage", "Reopen")))


@scenario(ProblemCode.SLA_INCOMPLETE)
def _zero_sla(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    Workflow.objects.filter(pk=workflow.pk).update(sla_low=timedelta(0))
    return three_steps()


@scenario(ProblemCode.SLA_NOT_ORDERED)
def _sla_upside_down(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    Workflow.objects.filter(pk=workflow.pk).update(sla_urgent=timedelta(days=9))
    return three_steps()


@scenario(ProblemCode.MATCH_KEYS_INCOMPLETE)
def _blank_category(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    Workflow.objects.filter(pk=workflow.pk).update(category="  ")
    return three_steps()


@scenario(ProblemCode.AMBIGUOUS_MATCH)
def _keys_already_published(client: APIClient, workflow: Workflow) -> dict[str, Any]:
    other = WorkflowFactory.create(department=workflow.department.upper(), category=f" {workflow.category} ")
    put_graph(client, other.pk, three_steps())
    publish(client, other.pk)
    return three_steps()


def problem_codes(problems: list[dict[str, Any]]) -> set[str]:
    return {problem["code"] for problem in problems}


def test_every_problem_code_has_an_api_scenario_and_the_structural_ones_are_those_a_put_refuses():
    assert set(PROBLEM_SCENARIOS) == set(ProblemCode)
    assert set(STRUCTURAL) | set(PUBLISH_BLOCKING) == set(ProblemCode)
    assert set(STRUCTURAL) == STRUCTURAL_CODES


STRUCTURAL = sorted(STRUCTURAL_CODES)
PUBLISH_BLOCKING = sorted(set(ProblemCode) - STRUCTURAL_CODES)


@pytest.mark.parametrize("code", STRUCTURAL, ids=str)
def test_a_graph_with_a_structural_problem_is_refused_by_the_put_naming_that_code(admin_client, tenant, roles, code):
    workflow = WorkflowFactory.create()
    graph = PROBLEM_SCENARIOS[code](admin_client, workflow)

    response = admin_client.put(url(workflow.pk, "graph/"), graph, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "workflow_invalid"
    assert problem_codes(response.json()["errors"]["problems"]) == {code}
    assert not Step.objects.filter(workflow=workflow).exists()
    assert AuditAction.WORKFLOW_GRAPH_REPLACED not in audit_actions(workflow.pk)


@pytest.mark.parametrize("code", PUBLISH_BLOCKING, ids=str)
def test_a_draft_with_a_publish_blocking_problem_is_stored_reported_by_validate_and_refused_by_publish(
    admin_client, tenant, roles, code
):
    workflow = WorkflowFactory.create()
    graph = PROBLEM_SCENARIOS[code](admin_client, workflow)
    put_graph(admin_client, workflow.pk, graph)

    validated = admin_client.get(url(workflow.pk, "validate/")).json()
    refused = admin_client.post(url(workflow.pk, "publish/"))

    assert validated["valid"] is False
    assert problem_codes(validated["errors"]) == {code}
    assert refused.status_code == 400
    assert refused.json()["code"] == "workflow_invalid"
    assert refused.json()["errors"]["problems"] == validated["errors"]
    assert not WorkflowVersion.objects.filter(workflow=workflow).exists()
    assert admin_client.get(url(workflow.pk)).json()["status"] == "draft"


@pytest.mark.parametrize(
    ("role_id", "role_name", "code"),
    [(ASSET_MANAGER, "Asset Manager", "unknown_role"), (BUDGET_MANAGER, "Budget Manager", "unknown_escalation_role")],
    ids=["owning role", "escalation role"],
)
def test_a_role_deleted_after_the_graph_was_stored_is_reported_and_blocks_publishing(
    admin_client, tenant, roles, role_id, role_name, code
):
    workflow = WorkflowFactory.create()
    graph = _three_steps_where(
        lambda g: g["nodes"][1].update(role_id=ASSET_MANAGER, escalate_to_role_id=BUDGET_MANAGER)
    )
    resolve = stored_ids(put_graph(admin_client, workflow.pk, graph))["Resolve Ticket"]
    assert admin_client.get(url(workflow.pk, "validate/")).json()["valid"] is True

    role_sync(payload=role_data(role_id=role_id, name=role_name, action="delete"))
    validated = admin_client.get(url(workflow.pk, "validate/")).json()
    refused = admin_client.post(url(workflow.pk, "publish/"))

    assert [(e["code"], e["step"]) for e in validated["errors"]] == [(code, str(resolve))]
    assert role_name in validated["errors"][0]["message"]
    assert refused.status_code == 400
    assert refused.json()["errors"]["problems"] == validated["errors"]
    assert not WorkflowVersion.objects.filter(workflow=workflow).exists()


def test_a_second_workflow_with_the_same_matching_keys_cannot_be_published(admin_client, tenant, roles):
    first = WorkflowFactory.create(department="IT", category="Access", sub_category="")
    second = WorkflowFactory.create(department=" it ", category="ACCESS", sub_category="")
    for workflow in (first, second):
        put_graph(admin_client, workflow.pk, three_steps())
    publish(admin_client, first.pk)

    response = admin_client.post(url(second.pk, "publish/"))

    assert response.status_code == 400
    assert [p["code"] for p in response.json()["errors"]["problems"]] == ["ambiguous_match"]


def test_versions_of_a_never_published_workflow_are_an_empty_list(admin_client, tenant):
    workflow = WorkflowFactory.create()

    assert admin_client.get(url(workflow.pk, "versions/")).json()["count"] == 0


# --- lifecycle -----------------------------------------------------------------------------------


def test_a_never_published_workflow_cannot_be_paused_or_retired(admin_client, tenant):
    workflow = WorkflowFactory.create()

    for action in ("pause/", "retire/"):
        response = admin_client.post(url(workflow.pk, action))
        assert response.status_code == 409, action
        assert response.json()["code"] == "invalid_state"
    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.DRAFT


def test_a_published_workflow_is_paused_retired_and_resumed_by_publishing(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    put_graph(admin_client, workflow.pk, three_steps())
    publish(admin_client, workflow.pk)

    paused = admin_client.post(url(workflow.pk, "pause/"))
    retired = admin_client.post(url(workflow.pk, "retire/"))
    resumed = publish(admin_client, workflow.pk, expected_status=200)

    assert paused.status_code == 200
    assert (paused.json()["status"], paused.json()["current_version"]) == ("paused", 1)
    assert retired.status_code == 200
    assert retired.json()["status"] == "retired"
    assert resumed["created"] is False
    assert admin_client.get(url(workflow.pk)).json()["status"] == "published"
    actions = audit_actions(workflow.pk)
    assert AuditAction.WORKFLOW_PAUSED in actions
    assert AuditAction.WORKFLOW_RETIRED in actions


# --- weights and statistics ---------------------------------------------------------------------------


def test_weights_are_read_with_step_names_and_keys_and_set_by_step_id(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    ids = stored_ids(put_graph(admin_client, workflow.pk, three_steps()))

    before = admin_client.get(url(workflow.pk, "weights/")).json()
    response = admin_client.put(
        url(workflow.pk, "weights/"),
        {
            "steps": [
                {"step_id": ids["Triage Ticket"], "weight": 5},
                {"step_id": ids["Resolve Ticket"], "weight": "0.5"},
            ]
        },
        format="json",
    )

    assert {(s["name"], s["key"], s["weight"]) for s in before["steps"]} == {
        ("Triage Ticket", "triage-ticket", 1),
        ("Resolve Ticket", "resolve-ticket", 3),
        ("Finalize Ticket", "finalize-ticket", 1),
    }
    assert response.status_code == 200, response.json()
    after = {s["step_id"]: s["weight"] for s in response.json()["steps"]}
    assert after == {ids["Triage Ticket"]: 5, ids["Resolve Ticket"]: 0.5, ids["Finalize Ticket"]: 1}
    assert response.json()["edit_version"] == before["edit_version"] + 1
    assert Step.objects.get(pk=ids["Resolve Ticket"]).weight == Decimal("0.5")
    assert admin_client.get(url(workflow.pk, "weights/")).json() == response.json()


@pytest.mark.parametrize(
    "bad",
    [
        {"step_id": 999999, "weight": 2},
        {"step_id": "first", "weight": 2},
        {"weight": 2},
        {"step_id": 999999, "weight": "heavy"},
        {"step_id": 999999, "weight": 1234567.5},
    ],
)
def test_weights_for_unknown_steps_or_unreadable_values_are_a_400_and_change_nothing(admin_client, tenant, roles, bad):
    workflow = WorkflowFactory.create()
    finalize = stored_ids(put_graph(admin_client, workflow.pk, three_steps()))["Finalize Ticket"]

    response = admin_client.put(
        url(workflow.pk, "weights/"), {"steps": [{"step_id": finalize, "weight": 9}, bad]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert set(response.json()["errors"]) == {"steps"}
    assert Step.objects.get(pk=finalize).weight == 1


def test_an_empty_weights_list_is_a_400(admin_client, tenant):
    workflow = WorkflowFactory.create()

    response = admin_client.put(url(workflow.pk, "weights/"), {"steps": []}, format="json")

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"steps"}


def test_an_unknown_step_id_is_named_in_the_weights_error(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    put_graph(admin_client, workflow.pk, three_steps())
    elsewhere = WorkflowFactory.create()
    foreign = stored_ids(put_graph(admin_client, elsewhere.pk, three_steps()))["Triage Ticket"]

    response = admin_client.put(
        url(workflow.pk, "weights/"), {"steps": [{"step_id": foreign, "weight": 2}]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"steps": {str(foreign): ["No such step in this workflow."]}}


def test_a_weight_given_twice_or_negative_is_a_400(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    triage = stored_ids(put_graph(admin_client, workflow.pk, three_steps()))["Triage Ticket"]

    twice = admin_client.put(
        url(workflow.pk, "weights/"),
        {"steps": [{"step_id": triage, "weight": 2}, {"step_id": triage, "weight": 3}]},
        format="json",
    )
    negative = admin_client.put(
        url(workflow.pk, "weights/"), {"steps": [{"step_id": triage, "weight": -1}]}, format="json"
    )

    assert twice.status_code == 400
    assert negative.status_code == 400
    assert negative.json()["errors"] == {"steps": {str(triage): ["Weight must be 0 or more."]}}
    assert Step.objects.get(pk=triage).weight == 1


def test_statistics_count_tasks_by_status_and_open_tasks_by_step(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    put_graph(admin_client, workflow.pk, three_steps())
    publish(admin_client, workflow.pk)
    version = WorkflowVersion.objects.get(workflow=workflow)
    for key, status in (
        ("triage-ticket", TaskStatus.PENDING),
        ("resolve-ticket", TaskStatus.IN_PROGRESS),
        ("resolve-ticket", TaskStatus.ON_HOLD),
        ("finalize-ticket", TaskStatus.COMPLETED),
    ):
        Task.objects.create(
            tenant=tenant, workflow=workflow, workflow_version=version, current_step_key=key, status=status
        )

    body = admin_client.get(url(workflow.pk, "statistics/")).json()

    assert body["workflow"] == workflow.pk
    assert body["tasks_total"] == 4
    assert body["tasks_by_status"] == {
        "pending": 1,
        "in_progress": 1,
        "on_hold": 1,
        "completed": 1,
        "cancelled": 0,
    }
    assert body["open_tasks_by_step"] == {"triage-ticket": 1, "resolve-ticket": 2, "finalize-ticket": 0}


def test_statistics_average_the_time_from_assignment_to_action_per_step_over_the_items_that_finished_it(
    admin_client, tenant, roles
):
    workflow = WorkflowFactory.create()
    put_graph(admin_client, workflow.pk, three_steps())
    publish(admin_client, workflow.pk)
    elsewhere = WorkflowFactory.create()
    put_graph(admin_client, elsewhere.pk, three_steps())
    publish(admin_client, elsewhere.pk)
    start = timezone.now() - timedelta(days=1)

    def item(on: Workflow, step_key: str, status: str, seconds: int | None) -> None:
        TaskItemFactory.create(
            task=TaskFactory.create(workflow=on, current_step_key=step_key),
            role=roles["Admin"],
            status=status,
            assigned_on=start,
            acted_on=None if seconds is None else start + timedelta(seconds=seconds),
        )

    item(workflow, "triage-ticket", ItemStatus.RESOLVED, 60)
    item(workflow, "triage-ticket", ItemStatus.RESOLVED, 180)
    item(workflow, "resolve-ticket", ItemStatus.RESOLVED, 3600)
    # Not counted: handed on, closed by someone else's action, still open, another workflow's.
    item(workflow, "resolve-ticket", ItemStatus.ESCALATED, 10)
    item(workflow, "resolve-ticket", ItemStatus.REASSIGNED, 10)
    item(workflow, "resolve-ticket", ItemStatus.RESOLVED, None)
    item(workflow, "finalize-ticket", ItemStatus.IN_PROGRESS, None)
    item(elsewhere, "triage-ticket", ItemStatus.RESOLVED, 9999)

    body = admin_client.get(url(workflow.pk, "statistics/")).json()

    assert body["average_seconds_per_step"] == {"triage-ticket": 120.0, "resolve-ticket": 3600.0}


def test_statistics_of_a_workflow_without_finished_steps_have_no_averages(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    put_graph(admin_client, workflow.pk, three_steps())

    assert admin_client.get(url(workflow.pk, "statistics/")).json()["average_seconds_per_step"] == {}


# --- migrating running tasks -------------------------------------------------------------------------------


@pytest.fixture
def two_versions(admin_client, tenant, roles) -> Workflow:
    """Version 1: triage → resolve → finalize. Version 2 drops finalize; resolve is the end."""
    workflow = WorkflowFactory.create()
    graph = put_graph(admin_client, workflow.pk, three_steps())
    publish(admin_client, workflow.pk)
    by_key = {n["key"]: n for n in graph["nodes"]}
    put_graph(
        admin_client,
        workflow.pk,
        {
            "nodes": [
                {**by_key["triage-ticket"], "id": str(by_key["triage-ticket"]["id"])},
                {**by_key["resolve-ticket"], "id": str(by_key["resolve-ticket"]["id"]), "is_end": True},
            ],
            "edges": [edge(str(by_key["triage-ticket"]["id"]), str(by_key["resolve-ticket"]["id"]), "Submit")],
        },
    )
    publish(admin_client, workflow.pk)
    return workflow


def _task_on_v1(tenant, workflow: Workflow, key: str) -> Task:
    return Task.objects.create(
        tenant=tenant,
        workflow=workflow,
        workflow_version=WorkflowVersion.objects.get(workflow=workflow, number=1),
        current_step_key=key,
        status=TaskStatus.IN_PROGRESS,
    )


def test_a_migration_dry_run_plans_the_moves_lists_the_blockers_and_changes_nothing(admin_client, tenant, two_versions):
    mappable = _task_on_v1(tenant, two_versions, "resolve-ticket")
    stranded = _task_on_v1(tenant, two_versions, "finalize-ticket")

    response = admin_client.post(url(two_versions.pk, "versions/2/migrate/"), {"dry_run": True}, format="json")

    assert response.status_code == 200, response.json()
    plan = response.json()
    assert plan["target_version"] == 2
    assert plan["applied"] is False
    assert plan["moves"] == [{"task_id": mappable.pk, "from_version": 1, "step_key": "resolve-ticket"}]
    assert len(plan["blockers"]) == 1
    blocker = plan["blockers"][0]
    assert (blocker["task_id"], blocker["from_version"], blocker["step_key"]) == (stranded.pk, 1, "finalize-ticket")
    assert "finalize-ticket" in blocker["reason"]
    assert set(Task.objects.values_list("workflow_version__number", flat=True)) == {1}
    assert not AuditEvent.objects.filter(action=AuditAction.TASK_MIGRATED).exists()


def test_applying_a_migration_moves_the_mappable_tasks_audits_each_and_leaves_blockers(
    admin_client, tenant, two_versions
):
    mappable = _task_on_v1(tenant, two_versions, "resolve-ticket")
    stranded = _task_on_v1(tenant, two_versions, "finalize-ticket")

    response = admin_client.post(url(two_versions.pk, "versions/2/migrate/"), {"dry_run": False}, format="json")

    assert response.status_code == 200, response.json()
    plan = response.json()
    assert plan["applied"] is True
    assert [m["task_id"] for m in plan["moves"]] == [mappable.pk]
    assert [b["task_id"] for b in plan["blockers"]] == [stranded.pk]
    mappable.refresh_from_db()
    stranded.refresh_from_db()
    assert mappable.workflow_version.number == 2
    assert mappable.current_step_key == "resolve-ticket"
    assert stranded.workflow_version.number == 1
    events = AuditEvent.objects.filter(action=AuditAction.TASK_MIGRATED)
    assert [(e.target_id, e.changes) for e in events] == [(str(mappable.pk), {"workflow_version": [1, 2]})]
    assert events[0].actor_id == 21

    # Running it again finds nothing more to move.
    again = admin_client.post(url(two_versions.pk, "versions/2/migrate/"), {"dry_run": False}, format="json").json()
    assert again["moves"] == []
    assert [b["task_id"] for b in again["blockers"]] == [stranded.pk]


@pytest.mark.parametrize("body", [{}, {"dry_run": "yes"}, {"dry_run": None}, {"dry_run": 1}, {"dry_run": "false"}])
def test_migrate_needs_dry_run_as_a_boolean(admin_client, tenant, two_versions, body):
    task = _task_on_v1(tenant, two_versions, "resolve-ticket")

    response = admin_client.post(url(two_versions.pk, "versions/2/migrate/"), body, format="json")

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"dry_run"}
    task.refresh_from_db()
    assert task.workflow_version.number == 1


def test_migrating_to_a_version_that_does_not_exist_is_a_404(admin_client, tenant, two_versions):
    response = admin_client.post(url(two_versions.pk, "versions/3/migrate/"), {"dry_run": True}, format="json")

    assert response.status_code == 404


def test_the_api_reports_tenant_isolation_for_version_endpoints(admin_client, tenant, other_tenant, two_versions):
    acme = APIClient()
    acme.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token(tenant=other_tenant.slug)}")

    assert acme.get(url(two_versions.pk, "versions/1/")).status_code == 404
    assert acme.get(url(two_versions.pk, "versions/2/diff/"), {"against": 1}).status_code == 404
    assert acme.post(url(two_versions.pk, "versions/2/migrate/"), {"dry_run": True}, format="json").status_code == 404


def test_a_deleted_workflows_versions_are_not_found(admin_client, tenant, roles):
    workflow = WorkflowFactory.create()
    put_graph(admin_client, workflow.pk, three_steps())
    publish(admin_client, workflow.pk)
    assert admin_client.delete(url(workflow.pk)).status_code == 204

    assert admin_client.get(url(workflow.pk, "versions/")).status_code == 404
    assert admin_client.get(url(workflow.pk, "versions/1/")).status_code == 404
    assert admin_client.post(url(workflow.pk, "publish/")).status_code == 404
    assert WorkflowVersion.objects.filter(workflow=workflow).count() == 1
    assert Workflow.objects.get(pk=workflow.pk).deleted_at is not None


def test_a_step_owned_by_a_seeded_role_survives_a_graph_round_trip(admin_client, tenant):
    from audit.services import Actor
    from role.services import role_ensure_seeded

    seeded, _ = role_ensure_seeded(tenant=tenant, name="Field Crew", description="", actor=Actor.system())
    workflow = WorkflowFactory.create(name="Seeded roles")
    graph_url = f"{WORKFLOWS}{workflow.pk}/graph/"
    response = admin_client.put(
        graph_url,
        {"nodes": [{"id": "a", "name": "Dig", "role_pk": seeded.pk, "is_start": True, "is_end": True}], "edges": []},
        format="json",
    )
    assert response.status_code == 200, response.json()

    graph = admin_client.get(graph_url).json()
    [node] = graph["nodes"]
    assert (node["role_id"], node["role_pk"], node["role_name"]) == (None, seeded.pk, "Field Crew")

    # Sending back what was read keeps the role.
    response = admin_client.put(graph_url, {"nodes": graph["nodes"], "edges": graph["edges"]}, format="json")
    assert response.status_code == 200, response.json()
    assert Step.objects.get(workflow=workflow).role_id == seeded.pk
