"""The task action endpoints: POST /api/v1/tasks/{id}/transition|status|escalate|transfer|assign|cancel/."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from role.models import RoleMember
from task import services
from task.models import ItemStatus, Task, TaskItem, TaskStatus
from task.rules import transitions_of
from task.tests.factories import Setup, published_setup
from task.tests.test_actions import (
    ESCALATION,
    STATUS,
    TRANSFER,
    caller,
    holder,
    outbox,
    started,
    state,
    the_ticket,
    tid,
    with_supervisors,
)
from workflow_api.core.errors import ApiError
from workflow_api.core.models import OutboxMessage, Tenant
from workflow_api.testing.tokens import admin_token, make_token


def client_for(user_id: int, *, admin: bool = False, tenant: str | None = None) -> APIClient:
    client = APIClient()
    token = admin_token(user_id=user_id, tenant=tenant) if admin else make_token(user_id=user_id, tenant=tenant)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def url(task: Task, action: str) -> str:
    return f"/api/v1/tasks/{task.pk}/{action}/"


def test_a_transition_answers_with_the_task_as_the_caller_now_sees_it(setup: Setup):
    task = started(setup)
    assignee = holder(task)

    response = client_for(assignee).post(
        url(task, "transition"), {"transition_id": tid(task, "Submit"), "notes": "ok"}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["id"], body["status"], body["current_step"]["id"]) == (task.pk, "in_progress", "resolve")
    assert [(i["user_id"], i["step"], i["status"], i["origin"]) for i in body["items"]] == [
        (assignee, "triage", "resolved", "system"),
        (201, "resolve", "new", "system"),
    ]
    assert body["available_transitions"] == []  # the caller holds nothing on Resolve
    resolver_view = client_for(201).get(f"/api/v1/tasks/{task.pk}/").json()
    assert sorted(t["name"] for t in resolver_view["available_transitions"]) == ["Approve", "Reject"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"transition_id": "1", "notes": "ok"}, "transition_id"),
        ({"transition_id": 1.5, "notes": "ok"}, "transition_id"),
        ({"transition_id": True, "notes": "ok"}, "transition_id"),
        ({"notes": "ok"}, "transition_id"),
    ],
)
def test_a_transition_id_that_is_not_an_integer_or_null_is_a_field_error(
    setup: Setup, body: dict[str, Any], field: str
):
    task = started(setup)
    before = state(task)

    response = client_for(holder(task)).post(url(task, "transition"), body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["errors"]
    assert state(task) == before


@pytest.mark.parametrize("body", [{"transition_id": 1}, {"transition_id": 1, "notes": "   "}])
def test_missing_or_blank_notes_are_notes_required(setup: Setup, body: dict[str, Any]):
    task = started(setup)
    before = state(task)

    response = client_for(holder(task)).post(url(task, "transition"), body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "notes_required"
    assert "notes" in response.json()["errors"]
    assert state(task) == before


def test_the_ordered_checks_answer_with_the_contracts_codes(setup: Setup, other_tenant: Tenant):
    task = started(setup)
    assignee = client_for(holder(task))
    before = state(task)

    def post(client: APIClient, transition_id: int | None) -> tuple[int, str]:
        response = client.post(url(task, "transition"), {"transition_id": transition_id, "notes": "n"}, format="json")
        return response.status_code, response.json()["code"]

    assert post(client_for(holder(task), admin=True, tenant=other_tenant.slug), 1) == (404, "not_found")
    assert post(client_for(5555), 1) == (404, "not_found")  # no item, not the owner, not an admin: not visible
    assert post(client_for(1, admin=True), 999) == (403, "not_assigned")
    assert post(assignee, None) == (400, "invalid_transition")
    assert post(assignee, 999) == (404, "not_found")
    assert post(assignee, tid(task, "Approve")) == (400, "invalid_transition")
    RoleMember.objects.filter(role=setup.resolver).update(is_active=False)
    assert post(assignee, tid(task, "Submit")) == (503, "no_assignee")
    assert state(task) == before


def test_blank_notes_come_before_not_found(setup: Setup, other_tenant: Tenant):
    task = started(setup)
    before = state(task)
    missing = Task.objects.order_by("-id").values_list("id", flat=True)[0] + 1000

    for client, task_id in [
        (client_for(1, admin=True, tenant=other_tenant.slug), task.pk),  # another tenant's task
        (client_for(5555), task.pk),  # a task the caller cannot see
        (client_for(holder(task)), missing),  # no such task at all
    ]:
        response = client.post(
            f"/api/v1/tasks/{task_id}/transition/", {"transition_id": 999, "notes": " "}, format="json"
        )
        assert (response.status_code, response.json()["code"]) == (400, "notes_required")
    assert state(task) == before


def test_the_same_person_holding_triage_and_finalize_finishes_the_task_through_the_api(tenant: Tenant):
    setup = published_setup(tenant=tenant, owner_users=(101,))
    task = started(setup)
    admin_person, resolver = client_for(101), client_for(201)

    submitted = admin_person.post(
        url(task, "transition"), {"transition_id": tid(task, "Submit"), "notes": "triaged"}, format="json"
    )
    approved = resolver.post(
        url(task, "transition"), {"transition_id": tid(task, "Approve"), "notes": "fine"}, format="json"
    )
    at_finalize = admin_person.get(f"/api/v1/tasks/{task.pk}/").json()
    finished = admin_person.post(url(task, "transition"), {"transition_id": None, "notes": "closed"}, format="json")

    assert (submitted.status_code, approved.status_code, finished.status_code) == (200, 200, 200)
    assert (at_finalize["current_step"]["id"], at_finalize["available_transitions"]) == ("finalize", [])
    body = finished.json()
    assert (body["status"], body["available_transitions"]) == ("completed", [])
    assert body["completed_at"] is not None
    assert [(i["step"], i["status"], i["notes"]) for i in body["items"] if i["user_id"] == 101] == [
        ("triage", "resolved", "triaged"),
        ("finalize", "resolved", "closed"),
    ]
    ticket = client_for(1, admin=True).get(f"/api/v1/tickets/{the_ticket(task).ticket_number}/").json()
    assert ticket["status"] == "Resolved"


def test_reject_then_submit_again_gives_the_resolver_a_fresh_new_item_through_the_api(tenant: Tenant):
    setup = published_setup(tenant=tenant, owner_users=(101,))
    task = started(setup)
    owner, resolver = client_for(101), client_for(201)

    def move(client: APIClient, name: str, notes: str) -> dict[str, Any]:
        response = client.post(
            url(task, "transition"), {"transition_id": tid(task, name), "notes": notes}, format="json"
        )
        assert response.status_code == 200, response.json()
        return dict(response.json())

    move(owner, "Submit", "first")
    move(resolver, "Reject", "missing serial")
    back_at_triage = owner.get(f"/api/v1/tasks/{task.pk}/").json()
    move(owner, "Submit", "second")
    detail = resolver.get(f"/api/v1/tasks/{task.pk}/").json()

    assert [(i["step"], i["status"]) for i in back_at_triage["items"] if i["user_id"] == 101] == [
        ("triage", "resolved"),
        ("triage", "new"),
    ]
    assert back_at_triage["available_transitions"] == [
        {"id": tid(task, "Submit"), "name": "Submit", "to_step": "resolve"}
    ]
    resolver_items = [i for i in detail["items"] if i["user_id"] == 201]
    assert [(i["step"], i["status"], i["origin"], i["notes"]) for i in resolver_items] == [
        ("resolve", "resolved", "system", "missing serial"),
        ("resolve", "new", "system", ""),
    ]
    assert resolver_items[1]["acted_on"] is None
    assert [h["status"] for h in resolver_items[1]["history"]] == ["new"]
    assert (detail["current_step"]["id"], detail["status"]) == ("resolve", "in_progress")
    assert sorted((t["name"], t["to_step"]) for t in detail["available_transitions"]) == [
        ("Approve", "finalize"),
        ("Reject", "triage"),
    ]


def test_a_running_task_keeps_the_transitions_of_its_own_version_after_the_graph_changes(setup: Setup):
    task = started(setup)
    assignee = client_for(holder(task))
    admin = client_for(1, admin=True)
    submit_v1 = tid(task, "Submit")
    workflow = f"/api/v1/workflows/{setup.workflow.pk}"
    graph = admin.get(f"{workflow}/graph/").json()
    node = {n["key"]: n["id"] for n in graph["nodes"]}
    # v2: "Submit" becomes "Hand over" and "Reject" goes, so v1's Submit id is no transition of v2.
    graph["edges"] = [e for e in graph["edges"] if e["name"] == "Approve"] + [
        {"id": "hand-over", "from": node["triage"], "to": node["resolve"], "name": "Hand over"}
    ]
    assert admin.put(f"{workflow}/graph/", graph, format="json").status_code == 200
    published = admin.post(f"{workflow}/publish/")
    assert (published.status_code, published.json()["number"]) == (201, 2)
    on_v2 = started(setup)
    assert [t["name"] for t in transitions_of(on_v2.workflow_version)] == ["Approve", "Hand over"]
    assert submit_v1 > len(transitions_of(on_v2.workflow_version))

    detail = assignee.get(f"/api/v1/tasks/{task.pk}/").json()
    moved = assignee.post(url(task, "transition"), {"transition_id": submit_v1, "notes": "v1 rules"}, format="json")

    assert detail["workflow_version"] == 1
    assert detail["available_transitions"] == [{"id": submit_v1, "name": "Submit", "to_step": "resolve"}]
    assert moved.status_code == 200, moved.json()
    assert (moved.json()["current_step"]["id"], moved.json()["workflow_version"]) == ("resolve", 1)
    resolver_view = client_for(201).get(f"/api/v1/tasks/{task.pk}/").json()
    assert sorted(t["name"] for t in resolver_view["available_transitions"]) == ["Approve", "Reject"]
    v2_view = client_for(holder(on_v2)).get(f"/api/v1/tasks/{on_v2.pk}/").json()
    assert [t["name"] for t in v2_view["available_transitions"]] == ["Hand over"]


def test_the_other_actions_through_the_api(tenant: Tenant):
    setup = published_setup(tenant=tenant)
    with_supervisors(setup)
    task = started(setup)
    assignee = holder(task)
    admin = client_for(1, admin=True)

    status_response = client_for(assignee).post(
        url(task, "status"), {"status": "on_hold", "notes": "parts"}, format="json"
    )
    assert (status_response.status_code, status_response.json()["status"]) == (200, "on_hold")

    escalated = client_for(assignee).post(url(task, "escalate"), {"reason": "too hard"}, format="json")
    assert escalated.status_code == 200
    assert [i["origin"] for i in escalated.json()["items"]] == ["system", "escalation"]
    assert outbox(ESCALATION)[0].kwargs["escalation_reason"] == "too hard"

    transferred = admin.post(url(task, "transfer"), {"to_user_id": 102, "notes": "cover"}, format="json")
    assert transferred.status_code == 200
    assert transferred.json()["items"][-1]["origin"] == "transferred"
    assert outbox(TRANSFER)[0].args[:2] == [501, 102]

    assigned = admin.post(url(task, "assign"), {"user_id": 103}, format="json")
    assert assigned.status_code == 200
    assert [(i["user_id"], i["origin"]) for i in assigned.json()["items"]][-1] == (103, "manual")

    cancelled = admin.post(url(task, "cancel"), {"reason": "duplicate"}, format="json")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert {i["status"] for i in cancelled.json()["items"]} == {"resolved", "escalated", "reassigned"}
    actions = set(
        AuditEvent.objects.filter(target_type="task", target_id=str(task.pk)).values_list("action", flat=True)
    )
    assert {
        AuditAction.TASK_ITEM_STATUS_CHANGED,
        AuditAction.TASK_ESCALATED,
        AuditAction.TASK_TRANSFERRED,
        AuditAction.TASK_ASSIGNED,
        AuditAction.TASK_CANCELLED,
    } <= actions


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("status", {"status": "resolved"}, "status"),
        ("escalate", {"reason": ""}, "reason"),
        ("transfer", {"to_user_id": "x"}, "to_user_id"),
        ("assign", {}, "user_id"),
        ("cancel", {}, "reason"),
    ],
)
def test_bad_action_bodies_are_field_errors(setup: Setup, action: str, body: dict[str, Any], field: str):
    task = started(setup)
    before = state(task)

    response = client_for(1, admin=True).post(url(task, action), body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert state(task) == before


def test_assign_and_cancel_need_an_admin(setup: Setup):
    task = started(setup)
    assignee = client_for(holder(task))

    assert assignee.post(url(task, "assign"), {"user_id": 102}, format="json").status_code == 403
    assert assignee.post(url(task, "cancel"), {"reason": "no"}, format="json").status_code == 403
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PENDING


# --- races, on PostgreSQL with one connection per thread ------------------------------------


def _race(calls: list[Any]) -> list[Any]:
    start = threading.Barrier(len(calls))

    def run(call: Any) -> Any:
        try:
            start.wait(timeout=30)
            try:
                return call()
            except ApiError as error:
                return error
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [future.result() for future in [pool.submit(run, call) for call in calls]]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_assignees_racing_to_submit_one_wins_and_nothing_doubles(postgres, tenant: Tenant):
    setup = published_setup(tenant=tenant, start_count=2)
    task = started(setup)
    first, second = TaskItem.objects.filter(task=task).values_list("user_id", flat=True).order_by("id")
    submit = tid(task, "Submit")

    results = _race(
        [
            lambda u=user_id: services.task_transition(
                task_id=task.pk, user=caller(tenant, u), transition_id=submit, notes="mine"
            )
            for user_id in (first, second)
        ]
    )

    errors = [r for r in results if isinstance(r, ApiError)]
    assert len(errors) == 1
    assert (errors[0].error_code, errors[0].status_code) == ("task_moved", 409)
    assert TaskItem.objects.filter(task=task, step_key="resolve").count() == 1
    assert (
        TaskItem.objects.filter(
            task=task, step_key="triage", status=ItemStatus.RESOLVED, acted_on__isnull=False
        ).count()
        == 1
    )
    assert OutboxMessage.objects.filter(task_name=STATUS).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.TASK_TRANSITIONED).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_person_finishing_twice_at_once_completes_the_task_once(postgres, tenant: Tenant):
    setup = published_setup(tenant=tenant, owner_users=(101,))
    task = started(setup)
    services.task_transition(task_id=task.pk, user=caller(tenant, 101), transition_id=tid(task, "Submit"), notes="a")
    services.task_transition(task_id=task.pk, user=caller(tenant, 201), transition_id=tid(task, "Approve"), notes="b")

    results = _race(
        [lambda: services.task_transition(task_id=task.pk, user=caller(tenant, 101), transition_id=None, notes="done")]
        * 2
    )

    errors = [r for r in results if isinstance(r, ApiError)]
    assert [(e.error_code, e.status_code) for e in errors] == [("not_assigned", 403)]
    assert Task.objects.get(pk=task.pk).status == TaskStatus.COMPLETED
    assert sorted(OutboxMessage.objects.filter(task_name=STATUS).values_list("args", flat=True)) == sorted(
        [[the_ticket(task).ticket_number, "In Progress"], [the_ticket(task).ticket_number, "Resolved"]]
    )
    assert AuditEvent.objects.filter(action=AuditAction.TASK_COMPLETED).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_assignees_racing_over_http_one_gets_200_the_other_409_and_one_transition_happens(postgres, tenant: Tenant):
    setup = published_setup(tenant=tenant, start_count=2)
    task = started(setup)
    first, second = TaskItem.objects.filter(task=task).values_list("user_id", flat=True).order_by("id")
    clients = [client_for(first), client_for(second)]
    body = {"transition_id": tid(task, "Submit"), "notes": "mine"}

    responses = _race([lambda c=client: c.post(url(task, "transition"), body, format="json") for client in clients])

    assert sorted(r.status_code for r in responses) == [200, 409]
    [winner] = [r for r in responses if r.status_code == 200]
    [loser] = [r for r in responses if r.status_code == 409]
    assert loser.json()["code"] == "task_moved"
    assert loser.json()["message"].startswith("The task has moved on:")
    assert loser.json()["message"].endswith("and it is now at step 'Resolve'.")
    assert winner.json()["current_step"]["id"] == "resolve"
    task.refresh_from_db()
    assert (task.current_step_key, task.status) == ("resolve", TaskStatus.IN_PROGRESS)
    assert TaskItem.objects.filter(task=task, step_key="resolve").count() == 1
    assert (
        TaskItem.objects.filter(
            task=task, step_key="triage", status=ItemStatus.RESOLVED, acted_on__isnull=False
        ).count()
        == 1
    )
    assert TaskItem.objects.filter(task=task, step_key="triage", acted_on__isnull=True).count() == 1
    assert OutboxMessage.objects.filter(task_name=STATUS).count() == 1
    assert OutboxMessage.objects.filter(task_name="notifications.send_assignment_notification").count() == 3
    assert AuditEvent.objects.filter(action=AuditAction.TASK_TRANSITIONED).count() == 1
