"""GET /api/v1/audit/events/ and /api/v1/audit/events/{id}/."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.models import AuditAction, AuditEvent
from audit.services import Actor
from audit.tests.factories import AuditEventFactory
from workflow_api.testing.tokens import admin_token

LIST = "/api/v1/audit/events/"
T0 = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)

pytestmark = pytest.mark.django_db


def _detail(event: AuditEvent) -> str:
    return f"{LIST}{event.pk}/"


@pytest.fixture
def events(tenant) -> dict[str, AuditEvent]:
    return {
        "login": AuditEventFactory.create(
            tenant=tenant,
            actor=Actor(id=21, name="Li Wei"),
            action=AuditAction.USER_LOGGED_IN,
            target_type="user",
            target_id="21",
            at=T0,
        ),
        "role": AuditEventFactory.create(
            tenant=tenant,
            actor=Actor(id=7, name="Ana Cruz"),
            action=AuditAction.ROLE_UPDATED,
            target_type="role",
            target_id="3",
            changes={"name": ["Agents", "Senior agents"]},
            at=T0 + dt.timedelta(hours=1),
        ),
        "sync": AuditEventFactory.create(
            tenant=tenant,
            actor=Actor.system(),
            action=AuditAction.ROLE_MEMBER_ADDED,
            target_type="role_member",
            target_id="21",
            at=T0 + dt.timedelta(hours=2),
        ),
    }


@pytest.fixture
def foreign_event(other_tenant) -> AuditEvent:
    return AuditEventFactory.create(tenant=other_tenant, actor=Actor(id=21, name="Li Wei"), target_type="role")


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_an_admin_lists_the_tenants_events_newest_first(admin_client, events, foreign_event):
    response = admin_client.get(LIST)

    assert _ids(response) == [events["sync"].pk, events["role"].pk, events["login"].pk]
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (3, None, None)
    role = body["results"][1]
    assert role["actor_id"] == 7
    assert role["actor_name"] == "Ana Cruz"
    assert role["action"] == "role.updated"
    assert role["action_label"] == "Role updated"
    assert (role["target_type"], role["target_id"]) == ("role", "3")
    assert role["changes"] == {"name": ["Agents", "Senior agents"]}
    assert role["created_at"] == "2026-05-04T13:00:00Z"
    assert role["hash"] == events["role"].hash
    assert role["prev_hash"] == events["login"].hash


def test_the_list_is_paginated(admin_client, events):
    response = admin_client.get(LIST, {"page_size": 2, "ordering": "id"})

    assert _ids(response) == [events["login"].pk, events["role"].pk]
    assert response.json()["next"] is not None
    assert _ids(admin_client.get(LIST, {"page_size": 2, "ordering": "id", "page": 2})) == [events["sync"].pk]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"actor": "21"}, ["login"]),
        ({"actor": "ana cruz"}, ["role"]),
        ({"actor": "system"}, ["sync"]),
        ({"action": "role.updated"}, ["role"]),
        ({"target_type": "role_member"}, ["sync"]),
        ({"target_id": "21"}, ["sync", "login"]),
        ({"target_type": "user", "target_id": "21"}, ["login"]),
        ({"since": (T0 + dt.timedelta(hours=1)).isoformat()}, ["sync", "role"]),
        ({"until": (T0 + dt.timedelta(hours=1)).isoformat()}, ["login"]),
        ({"since": "2026-05-04T12:30:00+00:00", "until": "2026-05-04T13:30:00+00:00"}, ["role"]),
        ({"since": "2026-05-04T14:30:00+02:00"}, ["sync", "role"]),
    ],
)
def test_an_admin_filters_the_events(admin_client, events, foreign_event, params, expected):
    assert _ids(admin_client.get(LIST, params)) == [events[name].pk for name in expected]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01T00:00:00Z"}, "until"),
        ({"action": "role.exploded"}, "action"),
    ],
)
def test_a_bad_filter_value_is_a_validation_error_naming_the_field(admin_client, events, params, field):
    response = admin_client.get(LIST, params)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["errors"]) == [field]


def test_an_admin_reads_one_event(admin_client, events):
    response = admin_client.get(_detail(events["role"]))

    assert response.status_code == 200
    assert response.json()["target_display"] == events["role"].target_display


def test_another_tenants_event_is_not_found(admin_client, foreign_event):
    response = admin_client.get(_detail(foreign_event))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_admin_of_the_other_tenant_sees_only_that_tenants_events(api_client, events, foreign_event):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token(tenant='acme')}")

    assert _ids(api_client.get(LIST)) == [foreign_event.pk]
    assert api_client.get(_detail(events["role"])).status_code == 404


def test_a_caller_without_the_admin_role_is_forbidden(user_client, events):
    for url in (LIST, _detail(events["role"])):
        response = user_client.get(url)

        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"


def test_an_anonymous_caller_must_authenticate(api_client, events):
    response = api_client.get(LIST)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_there_are_no_write_endpoints(admin_client, events):
    event = events["role"]

    responses = [
        admin_client.post(LIST, {"action": "role.updated"}, format="json"),
        admin_client.put(_detail(event), {"target_display": "Forged"}, format="json"),
        admin_client.patch(_detail(event), {"target_display": "Forged"}, format="json"),
        admin_client.delete(_detail(event)),
    ]

    assert [response.status_code for response in responses] == [405] * 4
    assert {response.json()["code"] for response in responses} == {"method_not_allowed"}
    assert AuditEvent.objects.get(pk=event.pk).target_display == event.target_display
    assert AuditEvent.objects.count() == 3


def test_listing_a_full_page_takes_a_constant_number_of_queries(admin_client, tenant, django_assert_max_num_queries):
    for _ in range(30):
        AuditEventFactory.create(tenant=tenant)

    # The caller's tenant, the count and the page.
    with django_assert_max_num_queries(3):
        response = admin_client.get(LIST)

    assert len(response.json()["results"]) == 30
