"""`manage.py seed_demo`: the demo data `make run` starts with."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from audit.models import AuditEvent
from role.models import Role, RoleMember
from role.selectors import role_names_for_user

pytestmark = pytest.mark.django_db


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def _counts() -> tuple[int, ...]:
    return (
        get_user_model().objects.count(),
        Role.objects.count(),
        RoleMember.objects.count(),
        AuditEvent.objects.count(),
    )


def test_seed_demo_creates_the_admin_and_the_synced_roles_with_their_members(tenant):
    output = _seed()

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.check_password("admin")
    assert dict(Role.objects.values_list("role_id", "name")) == {
        1: "Admin",
        2: "Asset Manager",
        3: "Budget Manager",
        4: "Ticket Coordinator",
    }
    for role in Role.objects.all():
        assert RoleMember.objects.filter(role=role).count() >= 2
    assert "Admin" in role_names_for_user(tenant=tenant, user_id=admin.pk)
    assert AuditEvent.objects.filter(action="role.created").count() == 4
    assert "Admin login: http://127.0.0.1:8000/admin/  user: admin  password: admin" in output
    assert "http://127.0.0.1:8000/api/v1/docs/" in output


def test_seed_demo_run_twice_changes_nothing_the_second_time(tenant):
    _seed()
    first = _counts()

    output = _seed()

    assert _counts() == first
    assert "0 applied" in output


def test_seed_demo_prints_links_for_the_address_make_run_serves_on(tenant):
    out = StringIO()
    call_command("seed_demo", "--base-url", "http://127.0.0.1:8765/", stdout=out)

    assert "Admin login: http://127.0.0.1:8765/admin/  user: admin  password: admin" in out.getvalue()
    assert "API docs: http://127.0.0.1:8765/api/v1/docs/" in out.getvalue()
