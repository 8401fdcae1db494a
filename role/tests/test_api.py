"""The read-only role endpoints (api.md "Roles")."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from role.assignment import round_robin_next
from role.tests.factories import RoleFactory, RoleMemberFactory
from workflow_api.testing.tokens import make_token

pytestmark = pytest.mark.django_db

ROLES = "/api/v1/roles/"


@pytest.fixture
def acme_client(other_tenant) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(tenant=other_tenant.slug)}")
    return client


def test_the_role_list_is_paginated_and_counts_live_members(user_client, tenant):
    asset = RoleFactory.create(role_id=12, name="Asset Manager", description="Approves assets")
    RoleMemberFactory.create_batch(2, role=asset)
    RoleMemberFactory.create(role=asset, is_active=False)
    RoleMemberFactory.create(role=asset, deleted_at=timezone.now())
    RoleFactory.create(role_id=13, name="Budget Manager")

    response = user_client.get(ROLES)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    first = body["results"][0]
    assert {key: first[key] for key in ("role_id", "name", "system", "member_count", "active_member_count")} == {
        "role_id": 12,
        "name": "Asset Manager",
        "system": "tts",
        "member_count": 3,
        "active_member_count": 2,
    }
    assert first["description"] == "Approves assets"
    assert body["results"][1]["member_count"] == 0


def test_the_role_list_pages_with_page_size_and_orders_on_request(user_client, tenant):
    for role_id in (1, 2, 3):
        RoleFactory.create(role_id=role_id, name=f"Role {role_id}")

    response = user_client.get(ROLES, {"page_size": 2, "ordering": "-role_id"})

    body = response.json()
    assert body["count"] == 3
    assert [row["role_id"] for row in body["results"]] == [3, 2]
    assert body["next"] is not None
    assert body["previous"] is None


def test_the_role_list_asks_the_database_a_fixed_number_of_times(user_client, tenant, django_assert_max_num_queries):
    for role_id in range(1, 11):
        RoleMemberFactory.create_batch(2, role=RoleFactory.create(role_id=role_id))

    with django_assert_max_num_queries(4):
        response = user_client.get(ROLES)

    assert response.json()["count"] == 10


def test_deleted_roles_are_neither_listed_nor_found(user_client, tenant):
    RoleFactory.create(role_id=12, deleted_at=timezone.now())

    assert user_client.get(ROLES).json()["count"] == 0
    assert user_client.get(f"{ROLES}12/").status_code == 404
    assert user_client.get(f"{ROLES}12/users/").status_code == 404


def test_a_role_is_found_by_the_auth_services_id(user_client, tenant):
    role = RoleFactory.create(role_id=12, name="Asset Manager")
    RoleMemberFactory.create(role=role)

    response = user_client.get(f"{ROLES}12/")

    assert response.status_code == 200
    assert response.json()["name"] == "Asset Manager"
    assert response.json()["member_count"] == 1


def test_the_members_of_a_role_are_listed_with_their_details(user_client, tenant):
    role = RoleFactory.create(role_id=12)
    RoleMemberFactory.create(role=role, user_id=22, full_name="Ana Lima", email="ana@example.com", is_active=False)
    RoleMemberFactory.create(role=role, user_id=21, full_name="Li Wei", email="li.wei@example.com")
    RoleMemberFactory.create(role=role, user_id=23, deleted_at=timezone.now())
    RoleMemberFactory.create(user_id=24)

    response = user_client.get(f"{ROLES}12/users/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert [(row["user_id"], row["full_name"], row["email"], row["is_active"]) for row in body["results"]] == [
        (21, "Li Wei", "li.wei@example.com", True),
        (22, "Ana Lima", "ana@example.com", False),
    ]
    assert "assigned_at" in body["results"][0]


def test_the_members_can_be_filtered_to_the_active_ones(user_client, tenant):
    role = RoleFactory.create(role_id=12)
    RoleMemberFactory.create(role=role, user_id=21)
    RoleMemberFactory.create(role=role, user_id=22, is_active=False)

    response = user_client.get(f"{ROLES}12/users/", {"is_active": "true"})

    assert [row["user_id"] for row in response.json()["results"]] == [21]


def test_round_robin_of_a_role_never_assigned_lists_the_active_members_lowest_user_id_first(user_client, tenant):
    role = RoleFactory.create(role_id=12, name="Asset Manager")
    for user_id in (31, 7, 19):
        RoleMemberFactory.create(role=role, user_id=user_id)
    RoleMemberFactory.create(role=role, user_id=3, is_active=False)
    RoleMemberFactory.create(role=role, user_id=4, deleted_at=timezone.now())
    RoleMemberFactory.create(user_id=5)

    response = user_client.get(f"{ROLES}round-robin/", {"role_name": "Asset Manager"})

    assert response.status_code == 200
    assert response.json() == {"role_name": "Asset Manager", "user_ids": [7, 19, 31]}


def test_round_robin_lists_the_members_next_one_first_after_the_member_handed_work_last(user_client, tenant):
    role = RoleFactory.create(role_id=12, name="Asset Manager")
    for user_id in (31, 7, 19, 40):
        RoleMemberFactory.create(role=role, user_id=user_id)
    handed_out = [assignee.user_id for _ in range(2) for assignee in round_robin_next(role=role)]

    response = user_client.get(f"{ROLES}round-robin/", {"role_name": "Asset Manager"})

    assert handed_out == [7, 19]
    assert response.json() == {"role_name": "Asset Manager", "user_ids": [31, 40, 7, 19]}
    assert [assignee.user_id for assignee in round_robin_next(role=role, count=4)] == [31, 40, 7, 19]


def test_round_robin_of_a_name_two_live_roles_share_previews_the_synced_role_with_the_lowest_role_id(
    user_client, tenant
):
    for role_id, user_id in ((None, 1), (14, 2), (13, 3)):
        RoleMemberFactory.create(role=RoleFactory.create(role_id=role_id, name="Admin"), user_id=user_id)

    response = user_client.get(f"{ROLES}round-robin/", {"role_name": "Admin"})

    assert response.json()["user_ids"] == [3]


def test_round_robin_of_a_role_without_active_members_is_an_empty_list(user_client, tenant):
    RoleFactory.create(role_id=12, name="Asset Manager")

    response = user_client.get(f"{ROLES}round-robin/", {"role_name": "Asset Manager"})

    assert response.json()["user_ids"] == []


def test_round_robin_without_a_role_name_is_a_validation_error(user_client, tenant):
    response = user_client.get(f"{ROLES}round-robin/")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert "role_name" in body["errors"]


def test_round_robin_of_an_unknown_role_is_not_found(user_client, tenant):
    RoleFactory.create(role_id=12, name="Asset Manager", deleted_at=timezone.now())

    response = user_client.get(f"{ROLES}round-robin/", {"role_name": "Asset Manager"})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_another_tenants_roles_are_invisible(acme_client, user_client, tenant, other_tenant):
    role = RoleFactory.create(tenant=other_tenant, role_id=12, name="Acme Approver")
    RoleMemberFactory.create(role=role, user_id=21)

    assert user_client.get(ROLES).json()["count"] == 0
    for path in (f"{ROLES}12/", f"{ROLES}12/users/"):
        response = user_client.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert user_client.get(f"{ROLES}round-robin/", {"role_name": "Acme Approver"}).status_code == 404

    assert acme_client.get(f"{ROLES}12/").json()["name"] == "Acme Approver"
    assert acme_client.get(f"{ROLES}round-robin/", {"role_name": "Acme Approver"}).json()["user_ids"] == [21]


@pytest.mark.parametrize("path", ["", "12/", "12/users/", "round-robin/?role_name=Admin"])
def test_an_anonymous_caller_is_refused(api_client, tenant, path):
    RoleFactory.create(role_id=12, name="Admin")

    response = api_client.get(f"{ROLES}{path}")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_roles_are_read_only(admin_client, tenant):
    RoleFactory.create(role_id=12)

    assert admin_client.post(ROLES, {"role_id": 13, "name": "New"}, format="json").status_code == 405
    assert admin_client.delete(f"{ROLES}12/").status_code == 405
