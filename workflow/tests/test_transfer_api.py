"""Export and import of workflows as JSON documents through the API."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from role.tests.factories import RoleFactory
from step.models import Step
from workflow.models import Workflow, WorkflowVersion
from workflow.tests.factories import GraphEdgeDataFactory, GraphNodeDataFactory, WorkflowFactory
from workflow_api.testing.tokens import admin_token

pytestmark = pytest.mark.django_db

WORKFLOWS = "/api/v1/workflows/"
IMPORT = f"{WORKFLOWS}import/"
ADMIN, ASSET_MANAGER = 10, 12


@pytest.fixture
def acme_admin(other_tenant) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token(tenant=other_tenant.slug)}")
    return client


@pytest.fixture
def acme_roles(other_tenant) -> None:
    """The same auth service's roles, synced into the other tenant."""
    for role_id, name in ((ADMIN, "Admin"), (ASSET_MANAGER, "Asset Manager")):
        RoleFactory.create(tenant=other_tenant, role_id=role_id, name=name)


@pytest.fixture
def exported(admin_client, tenant, roles) -> dict[str, Any]:
    """A designed workflow of the default tenant, exported."""
    created = admin_client.post(
        WORKFLOWS,
        {
            "name": "Asset Check Out",
            "description": "Lending equipment",
            "department": "Asset Department",
            "category": "Asset Check Out",
            "sub_category": "Check Out",
            "sla": {"urgent": "PT4H", "high": "PT8H", "medium": "P2D", "low": "P5D"},
            "completion_action": "notify_owner",
        },
        format="json",
    ).json()
    graph = {
        "nodes": [
            GraphNodeDataFactory.build(id="t", name="Triage Ticket", role_id=ADMIN, is_start=True, x=10, y=20),
            GraphNodeDataFactory.build(
                id="r",
                name="Resolve Ticket",
                role_id=ASSET_MANAGER,
                escalate_to_role_id=ADMIN,
                weight="2.5",
                instruction="Check the asset out in the register.",
                assignee_count=2,
                assignment_strategy="least_loaded",
            ),
            GraphNodeDataFactory.build(id="f", name="Finalize Ticket", role_id=ADMIN, is_end=True),
        ],
        "edges": [
            GraphEdgeDataFactory.build(from_="t", to="r", name="Submit"),
            GraphEdgeDataFactory.build(from_="r", to="f", name="Approve"),
            GraphEdgeDataFactory.build(from_="r", to="t", name="Reject"),
        ],
    }
    assert admin_client.put(f"{WORKFLOWS}{created['id']}/graph/", graph, format="json").status_code == 200
    response = admin_client.get(f"{WORKFLOWS}{created['id']}/export/")
    assert response.status_code == 200
    return response.json()


def written_rows() -> tuple[int, int, int, int]:
    return (
        Workflow.objects.count(),
        Step.objects.count(),
        WorkflowVersion.objects.count(),
        AuditEvent.objects.count(),
    )


def test_an_export_names_roles_by_the_auth_services_id_and_steps_by_key(exported):
    assert exported["format"] == "workflow_api.workflow/1"
    assert exported["workflow"]["sla"] == {"urgent": 4 * 3600, "high": 8 * 3600, "medium": 2 * 86400, "low": 5 * 86400}
    resolve = next(step for step in exported["steps"] if step["key"] == "resolve-ticket")
    assert resolve["role"] == {"role_id": ASSET_MANAGER, "name": "Asset Manager"}
    assert resolve["escalation_role"] == {"role_id": ADMIN, "name": "Admin"}
    assert (resolve["weight"], resolve["assignee_count"]) == ("2.50", 2)
    assert {"from": "resolve-ticket", "to": "triage-ticket", "name": "Reject"} in exported["transitions"]


def test_a_workflow_exported_from_one_tenant_imports_into_another_and_round_trips(
    exported, acme_admin, acme_roles, other_tenant
):
    response = acme_admin.post(f"{IMPORT}?publish=true", exported, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["status"], body["current_version"]) == ("Asset Check Out", "published", 1)
    assert body["sla"]["urgent"] == "P0DT04H00M00S"
    imported = Workflow.objects.get(pk=body["id"])
    assert imported.tenant == other_tenant
    role_tenants = Step.objects.filter(workflow=imported).values_list("role__tenant_id", flat=True)
    assert set(role_tenants) == {other_tenant.pk}
    assert acme_admin.get(f"{WORKFLOWS}{imported.pk}/export/").json() == exported
    assert AuditEvent.objects.filter(
        tenant=other_tenant, action=AuditAction.WORKFLOW_IMPORTED, target_id=str(imported.pk)
    ).exists()


def test_a_role_with_another_id_is_found_by_its_name(exported, acme_admin, other_tenant):
    RoleFactory.create(tenant=other_tenant, role_id=77, name="admin")
    RoleFactory.create(tenant=other_tenant, role_id=78, name="Asset Manager")

    response = acme_admin.post(IMPORT, exported, format="json")

    assert response.status_code == 201, response.json()
    graph = acme_admin.get(f"{WORKFLOWS}{response.json()['id']}/graph/").json()
    assert {n["name"]: n["role_id"] for n in graph["nodes"]} == {
        "Triage Ticket": 77,
        "Resolve Ticket": 78,
        "Finalize Ticket": 77,
    }


def test_an_import_without_publish_leaves_a_draft(exported, acme_admin, acme_roles):
    response = acme_admin.post(IMPORT, exported, format="json")

    assert response.status_code == 201
    assert (response.json()["status"], response.json()["current_version"]) == ("draft", None)


def test_importing_a_workflow_of_an_existing_name_replaces_its_draft_and_keeps_step_ids(admin_client, exported):
    workflow = Workflow.objects.get(name="Asset Check Out")
    ids_before = dict(Step.objects.filter(workflow=workflow).values_list("key", "pk"))
    changed = copy.deepcopy(exported)
    changed["workflow"]["description"] = "Lending laptops"
    next(step for step in changed["steps"] if step["key"] == "resolve-ticket")["name"] = "Hand over"

    response = admin_client.post(IMPORT, changed, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["id"] == workflow.pk
    assert response.json()["description"] == "Lending laptops"
    assert Workflow.objects.filter(name="Asset Check Out").count() == 1
    assert dict(Step.objects.filter(workflow=workflow).values_list("key", "pk")) == ids_before
    assert Step.objects.get(pk=ids_before["resolve-ticket"]).name == "Hand over"


def test_a_broken_document_is_a_400_with_field_errors_and_writes_nothing(exported, acme_admin, acme_roles):
    broken = copy.deepcopy(exported)
    del broken["workflow"]["name"]
    broken["workflow"]["sla"]["urgent"] = "soon"
    broken["steps"][1]["role"] = {"role_id": 999, "name": "Nobody"}
    broken["steps"][2]["assignee_count"] = 0
    broken["transitions"][0]["name"] = ""
    before = written_rows()

    response = acme_admin.post(f"{IMPORT}?publish=true", broken, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert {
        "workflow.name",
        "workflow.sla.urgent",
        "steps[1].role",
        "steps[2].assignee_count",
        "transitions[0].name",
    } <= set(body["errors"])
    assert written_rows() == before


@pytest.mark.parametrize(
    "document", [[], "workflow", {"format": "something/else"}, {"format": "workflow_api.workflow/1"}]
)
def test_something_that_is_not_a_workflow_document_is_a_400(admin_client, tenant, document):
    before = written_rows()

    response = admin_client.post(IMPORT, document, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"]
    assert written_rows() == before


def test_a_document_whose_graph_cannot_be_stored_is_refused_and_writes_nothing(exported, acme_admin, acme_roles):
    dangling = copy.deepcopy(exported)
    dangling["transitions"].append({"from": "resolve-ticket", "to": "archive", "name": "Archive"})
    before = written_rows()

    response = acme_admin.post(IMPORT, dangling, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "workflow_invalid"
    assert [p["code"] for p in response.json()["errors"]["problems"]] == ["dangling_transition"]
    assert written_rows() == before


def test_publishing_an_unpublishable_import_writes_nothing(exported, acme_admin, acme_roles):
    no_end = copy.deepcopy(exported)
    for step in no_end["steps"]:
        step["is_end"] = False
    before = written_rows()

    response = acme_admin.post(f"{IMPORT}?publish=true", no_end, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "workflow_invalid"
    assert "no_end_step" in {p["code"] for p in response.json()["errors"]["problems"]}
    assert written_rows() == before


def test_publish_must_be_a_boolean(exported, acme_admin, acme_roles):
    response = acme_admin.post(f"{IMPORT}?publish=maybe", exported, format="json")

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"publish"}


def test_readers_may_export_but_only_admins_import(exported, user_client):
    workflow = Workflow.objects.get(name="Asset Check Out")
    before = written_rows()

    assert user_client.get(f"{WORKFLOWS}{workflow.pk}/export/").json() == exported
    response = user_client.post(IMPORT, exported, format="json")

    assert response.status_code == 403
    assert written_rows() == before


def test_another_tenants_workflow_cannot_be_exported(acme_admin, tenant, other_tenant):
    ours = WorkflowFactory.create()

    assert acme_admin.get(f"{WORKFLOWS}{ours.pk}/export/").status_code == 404
