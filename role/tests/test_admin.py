"""The role admin: browsable and searchable, never an editor of synced data."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from role.tests.factories import RoleFactory, RoleMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_role_pages_show_the_role_and_its_members_read_only(staff_client, tenant):
    role = RoleFactory.create(role_id=12, name="Asset Manager")
    RoleMemberFactory.create(role=role, full_name="Li Wei")

    listing = staff_client.get(reverse("admin:role_role_changelist"), {"q": "Asset"})
    page = staff_client.get(reverse("admin:role_role_change", args=[role.pk]))

    assert listing.status_code == 200
    assert b"Asset Manager" in listing.content
    assert page.status_code == 200
    assert b"Li Wei" in page.content
    assert b'name="_save"' not in page.content


@pytest.mark.parametrize("query", ["12", "Li Wei", "li.wei"])
def test_members_can_be_searched_by_id_name_or_email(staff_client, tenant, query):
    RoleMemberFactory.create(user_id=12, full_name="Li Wei", email="li.wei@example.com")

    response = staff_client.get(reverse("admin:role_rolemember_changelist"), {"q": query})

    assert response.status_code == 200
    assert b"Li Wei" in response.content


def test_tombstones_can_be_filtered(staff_client, tenant):
    RoleFactory.create(name="Gone Role", deleted_at=timezone.now())
    RoleFactory.create(name="Live Role")

    response = staff_client.get(reverse("admin:role_role_changelist"), {"state": "deleted"})

    assert b"Gone Role" in response.content
    assert b"Live Role" not in response.content


def test_synced_data_cannot_be_added_changed_or_deleted(staff_client, tenant):
    role = RoleFactory.create()

    assert staff_client.get(reverse("admin:role_role_add")).status_code == 403
    assert staff_client.post(reverse("admin:role_role_change", args=[role.pk]), {"name": "Hijacked"}).status_code == 403
    assert staff_client.get(reverse("admin:role_role_delete", args=[role.pk])).status_code == 403
    role.refresh_from_db()
    assert role.name != "Hijacked"
