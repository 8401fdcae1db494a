"""Task reads (api.md "Tasks"): lists, mine, owned, detail, history; visibility, filters and query counts."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from task.models import ItemStatus, Task, TaskItem, TaskItemHistory, TaskStatus
from task.tests.factories import Setup, TaskItemFactory, published_setup
from tickets.services import ticket_allocate
from workflow_api.testing.tokens import admin_token, make_token

URL = "/api/v1/tasks/"


def client_for(user_id: int, *, admin: bool = False, tenant: str | None = None) -> APIClient:
    client = APIClient()
    token = admin_token(user_id=user_id, tenant=tenant) if admin else make_token(user_id=user_id, tenant=tenant)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def start(setup: Setup, **ticket_fields) -> Task:
    ticket = setup.ticket(**ticket_fields)
    ticket_allocate(ticket_id=ticket.pk)
    return Task.objects.select_related("ticket").get(ticket=ticket)


def number(task: Task) -> str:
    assert task.ticket is not None
    return task.ticket.ticket_number


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# Round-robin over owner users 101, 102, 103 and coordinators 901, 902 (task.tests.factories.published_setup).


def test_an_admin_lists_every_task_of_the_tenant_newest_first_with_the_row_fields(setup: Setup, other_tenant):
    first = start(setup, subject="Printer jams")
    second = start(setup)
    published_other = published_setup(tenant=other_tenant)
    start(published_other)

    response = client_for(1, admin=True).get(URL)

    assert ids(response) == [second.pk, first.pk]
    row = response.json()["results"][1]
    assert row == {
        "id": first.pk,
        "ticket_number": number(first),
        "subject": "Printer jams",
        "status": "pending",
        "priority": "medium",
        "workflow": {"id": setup.workflow.pk, "name": setup.workflow.name},
        "current_step": {"id": "triage", "name": "Triage", "role": setup.owner.name},
        "ticket_owner": {"user_id": 901, "full_name": "User 901"},
        "target_resolution": row["target_resolution"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "completed_at": None,
    }
    assert first.target_resolution is not None
    assert row["target_resolution"] == first.target_resolution.isoformat().replace("+00:00", "Z")
    assert response.json()["count"] == 2


def test_others_see_only_tasks_they_hold_an_item_on_or_own_the_ticket_of(setup: Setup):
    held_by_101 = start(setup)  # item 101, owner 901
    held_by_102 = start(setup)  # item 102, owner 902
    finished_by_101 = start(setup)  # item 103, owner 901
    TaskItemFactory.create(task=finished_by_101, role=setup.owner, user_id=101, status=ItemStatus.RESOLVED)

    assert ids(client_for(101).get(URL)) == [finished_by_101.pk, held_by_101.pk]
    assert ids(client_for(902).get(URL)) == [held_by_102.pk]
    assert ids(client_for(555).get(URL)) == []


def test_the_list_is_paginated(setup: Setup):
    tasks = [start(setup) for _ in range(3)]

    response = client_for(1, admin=True).get(URL, {"page_size": "2", "ordering": "id"})

    body = response.json()
    assert (body["count"], ids(response), body["previous"]) == (3, [tasks[0].pk, tasks[1].pk], None)
    assert "page=2" in body["next"]


def test_the_list_filters_by_status_workflow_ticket_number_assignee_role_overdue_and_search(tenant):
    setup = published_setup(tenant=tenant)
    other = published_setup(tenant=tenant, owner_users=(301,), resolver_users=(302,), coordinator_users=())
    a = start(setup, subject="Broken monitor")  # 101
    b = start(setup, subject="Keyboard")  # 102
    c = start(other, subject="Monitor cable")  # 301
    Task.objects.filter(pk=b.pk).update(status=TaskStatus.IN_PROGRESS)
    Task.objects.filter(pk=a.pk).update(target_resolution=timezone.now() - timedelta(minutes=1))
    # An overdue task that is finished is not overdue any more.
    Task.objects.filter(pk=c.pk).update(
        target_resolution=timezone.now() - timedelta(minutes=1), status=TaskStatus.COMPLETED
    )
    TaskItem.objects.filter(task=b).update(status=ItemStatus.RESOLVED)  # 102 no longer active on b
    admin = client_for(1, admin=True)

    def listed(**query: str | int) -> set[int]:
        return set(ids(admin.get(URL, query)))

    assert listed(status="in_progress") == {b.pk}
    assert listed(workflow=other.workflow.pk) == {c.pk}
    assert listed(ticket_number=number(a).lower()) == {a.pk}
    assert listed(assignee=101) == {a.pk}
    assert listed(assignee=102) == set()
    assert listed(role=other.owner.name.upper()) == {c.pk}
    assert listed(role=setup.owner.name) == {a.pk}
    assert listed(overdue="true") == {a.pk}
    assert listed(search="monitor") == {a.pk, c.pk}
    assert listed(search=number(b)[-6:]) == {b.pk}
    assert listed() == {a.pk, b.pk, c.pk}


def test_a_bad_filter_value_is_a_400_with_the_field(setup: Setup):
    response = client_for(1, admin=True).get(URL, {"status": "sleeping"})

    assert response.status_code == 400
    assert "status" in response.json()["errors"]


def test_mine_lists_tasks_where_the_caller_holds_an_active_item(setup: Setup):
    active = start(setup)  # 101
    start(setup)  # 102
    resolved = start(setup)  # 103
    TaskItemFactory.create(task=resolved, role=setup.owner, user_id=101, status=ItemStatus.RESOLVED)
    on_hold = start(setup)  # 101 again
    TaskItem.objects.filter(task=on_hold).update(status=ItemStatus.ON_HOLD)

    assert ids(client_for(101).get(f"{URL}mine/")) == [on_hold.pk, active.pk]
    assert ids(client_for(901).get(f"{URL}mine/")) == []


def test_owned_lists_tasks_whose_ticket_owner_is_the_caller(setup: Setup):
    first = start(setup)  # owner 901
    start(setup)  # owner 902
    third = start(setup)  # owner 901

    assert ids(client_for(901).get(f"{URL}owned/")) == [third.pk, first.pk]
    assert ids(client_for(101).get(f"{URL}owned/")) == []


def test_lists_need_a_caller(api_client, setup: Setup):
    assert api_client.get(URL).status_code == 401


# --- Detail -------------------------------------------------------------------------------


def test_the_detail_shows_version_step_items_with_history_and_the_callers_transitions(setup: Setup):
    task = start(setup)
    item = task.items.get()
    TaskItemHistory.objects.create(
        tenant=task.tenant, item=item, status=ItemStatus.IN_PROGRESS, at=item.assigned_on + timedelta(minutes=5)
    )
    TaskItem.objects.filter(pk=item.pk).update(status=ItemStatus.IN_PROGRESS)

    version = setup.workflow.current_version
    assert version is not None

    response = client_for(101).get(f"{URL}{task.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("id", "ticket_number", "status", "workflow", "workflow_version")} == {
        "id": task.pk,
        "ticket_number": number(task),
        "status": "pending",
        "workflow": {"id": setup.workflow.pk, "name": setup.workflow.name},
        "workflow_version": version.number,
    }
    assert body["current_step"] == {"id": "triage", "name": "Triage", "role": setup.owner.name}
    assert body["ticket_owner"] == {"user_id": 901, "full_name": "User 901"}
    [shown] = body["items"]
    assert {key: shown[key] for key in ("id", "user_id", "role", "step", "status", "origin", "acted_on", "notes")} == {
        "id": item.pk,
        "user_id": 101,
        "role": setup.owner.name,
        "step": "triage",
        "status": "in_progress",
        "origin": "system",
        "acted_on": None,
        "notes": "",
    }
    assert [entry["status"] for entry in shown["history"]] == ["new", "in_progress"]
    assert shown["assigned_on"] == item.assigned_on.isoformat().replace("+00:00", "Z")
    assert item.target_resolution is not None
    assert shown["target_resolution"] == item.target_resolution.isoformat().replace("+00:00", "Z")
    # A transition's id is its 1-based position in the version's definition (task.rules).
    transitions = version.definition["transitions"]
    submit = next(n for n, t in enumerate(transitions, start=1) if (t["from"], t["to"]) == ("triage", "resolve"))
    assert body["available_transitions"] == [{"id": submit, "name": "Submit", "to_step": "resolve"}]


def test_callers_without_an_active_item_on_the_step_see_no_transitions(setup: Setup):
    task = start(setup)

    owner_view = client_for(901).get(f"{URL}{task.pk}/")
    admin_view = client_for(1, admin=True).get(f"{URL}{task.pk}/")

    assert (owner_view.status_code, admin_view.status_code) == (200, 200)
    assert owner_view.json()["available_transitions"] == []
    assert admin_view.json()["available_transitions"] == []


def test_a_task_the_caller_may_not_see_or_of_another_tenant_is_not_found(setup: Setup, other_tenant):
    task = start(setup)
    foreign = start(published_setup(tenant=other_tenant))

    assert client_for(555).get(f"{URL}{task.pk}/").status_code == 404
    assert client_for(1, admin=True).get(f"{URL}{foreign.pk}/").status_code == 404
    assert client_for(1, admin=True).get(f"{URL}{foreign.pk}/history/").status_code == 404
    assert client_for(1, admin=True).get(f"{URL}999999/").json()["code"] == "not_found"


def test_history_is_the_tasks_audit_timeline_oldest_first(setup: Setup):
    task = start(setup)

    response = client_for(101).get(f"{URL}{task.pk}/history/")

    assert response.status_code == 200
    events = response.json()["results"]
    assert [(event["action"], event["target_type"], event["target_id"]) for event in events] == [
        ("task.created", "task", str(task.pk))
    ]
    assert events[0]["changes"]["assignees"] == [None, [101]]


# --- Constant query counts -----------------------------------------------------------------


def _queries(client: APIClient, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


LIST_QUERIES = 4  # the caller's tenant, count, page, the page's step names


@pytest.mark.parametrize("path", ["", "mine/", "owned/"])
def test_a_list_page_costs_the_same_queries_for_two_or_ten_tasks_on_two_workflows(
    tenant, path, django_assert_max_num_queries
):
    setup = published_setup(tenant=tenant, owner_users=(101,), coordinator_users=(101,))
    other = published_setup(tenant=tenant, owner_users=(101,), resolver_users=(7,), coordinator_users=())
    client = client_for(101)
    start(setup)
    start(other)
    few = _queries(client, f"{URL}{path}")
    for _ in range(4):
        start(setup)
        start(other)

    with django_assert_max_num_queries(LIST_QUERIES):
        response = client.get(f"{URL}{path}")

    # 101 holds every item and, as the tenant's only coordinator, owns every ticket.
    assert len(response.json()["results"]) == 10
    assert few == _queries(client, f"{URL}{path}")


def _count_query(client: APIClient, url: str) -> str:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content
    (count,) = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT COUNT(*)")]
    return count


def test_a_page_costs_the_same_queries_whatever_the_page_caller_filter_or_ordering(tenant):
    setup = published_setup(tenant=tenant, owner_users=(101,), coordinator_users=(101,))
    other = published_setup(tenant=tenant, owner_users=(101,), resolver_users=(7,), coordinator_users=())
    for _ in range(3):
        last = start(setup)
        start(other)
    admin, user = client_for(1, admin=True), client_for(101)
    filters = urlencode({"search": number(last)[:-1], "assignee": 101, "role": setup.owner.name, "overdue": "false"})
    first = _queries(admin, f"{URL}?page_size=2")

    assert first == LIST_QUERIES
    for client, url in [
        (admin, f"{URL}?page_size=2&page=2"),
        (admin, f"{URL}?page_size=2&page=3"),
        (admin, f"{URL}?page_size=2&status=pending&ordering=-created_at"),
        (admin, f"{URL}?page_size=2&{filters}"),
        (user, f"{URL}?page_size=2&page=2"),
        (user, f"{URL}mine/?page_size=2&page=3"),
        (user, f"{URL}owned/?page_size=2"),
    ]:
        assert _queries(client, url) == first, url


def test_the_count_joins_no_table_it_does_not_filter_on(setup: Setup):
    # The ticket and workflow columns of a row are the page's, not the count's: counting with their joins
    # turns an index-only count into a scan of the tasks (benchmarks/bench_api.py).
    start(setup, subject="Broken monitor")
    start(setup, subject="Keyboard")
    admin = client_for(1, admin=True)

    for url in [URL, f"{URL}?status=pending", f"{URL}mine/", f"{URL}owned/"]:
        count = _count_query(admin, url)
        assert "JOIN" not in count.upper(), count
    # A filter on the ticket joins it, in the count too, and the count is the filtered one.
    assert "tickets_ticket" in _count_query(admin, f"{URL}?search=monitor")
    body = admin.get(URL, {"search": "monitor", "page_size": "1"}).json()
    assert (body["count"], body["next"], [row["subject"] for row in body["results"]]) == (
        1,
        None,
        ["Broken monitor"],
    )


def test_a_later_page_has_the_row_columns_and_the_links(setup: Setup):
    tasks = [start(setup, subject=f"Ticket {n}") for n in range(3)]
    admin = client_for(1, admin=True)

    body = admin.get(URL, {"page_size": "2", "page": "2"}).json()

    assert (body["count"], body["next"]) == (3, None)
    assert "page=" not in body["previous"]
    (row,) = body["results"]
    assert (row["id"], row["ticket_number"], row["subject"]) == (tasks[0].pk, number(tasks[0]), "Ticket 0")
    assert row["workflow"] == {"id": setup.workflow.pk, "name": setup.workflow.name}
    assert row["current_step"] == {"id": "triage", "name": "Triage", "role": setup.owner.name}


def test_the_detail_costs_the_same_queries_for_one_or_many_items(setup: Setup, django_assert_max_num_queries):
    task = start(setup)
    client = client_for(101)
    one = _queries(client, f"{URL}{task.pk}/")
    for user_id in range(600, 610):
        item = TaskItemFactory.create(task=task, role=setup.owner, user_id=user_id)
        TaskItemHistory.objects.create(tenant=task.tenant, item=item, status=ItemStatus.NEW)

    with django_assert_max_num_queries(one):
        response = client.get(f"{URL}{task.pk}/")

    assert len(response.json()["items"]) == 11
    assert one <= 4  # the caller's tenant, the task with its version, items, their history


# --- The admin (read-only) ------------------------------------------------------------------


def test_the_task_admin_finds_a_task_by_ticket_number_and_shows_items_and_history_read_only(
    client, admin_user, setup: Setup
):
    from django.urls import reverse

    task = start(setup)
    start(setup)
    client.force_login(admin_user)

    listing = client.get(reverse("admin:task_task_changelist"), {"q": number(task)})
    page = client.get(reverse("admin:task_task_change", args=[task.pk]))
    item_page = client.get(reverse("admin:task_taskitem_change", args=[task.items.get().pk]))

    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    assert page.status_code == 200
    assert "User 101" in page.content.decode()
    assert "Item history" in page.content.decode()
    assert item_page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.get(reverse("admin:task_task_add")).status_code == 403
