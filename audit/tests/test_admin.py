"""The audit trail in the Django admin is for reading only."""

from __future__ import annotations

import pytest

from audit.models import AuditAction, AuditEvent
from audit.services import Actor
from audit.tests.factories import AuditEventFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/audit/auditevent/"


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_superuser(username="root", email="root@example.com", password="x" * 12)
    client.force_login(user)
    return client


@pytest.fixture
def event(tenant) -> AuditEvent:
    return AuditEventFactory.create(
        tenant=tenant,
        actor=Actor(id=7, name="Ana Cruz"),
        action=AuditAction.ROLE_UPDATED,
        target_type="role",
        target_id="3",
        target_display="Senior agents",
        changes={"name": ["Agents", "Senior agents"], "description": [None, "<b>bold</b>"]},
    )


def test_the_changelist_lists_searches_and_filters_events(staff, event, tenant):
    other = AuditEventFactory.create(tenant=tenant, actor=Actor(id=8, name="Bo Tan"), action=AuditAction.USER_LOGGED_IN)

    listing = staff.get(CHANGELIST).content.decode()
    by_name = staff.get(CHANGELIST, {"q": "ana"}).content.decode()
    by_id = staff.get(CHANGELIST, {"q": "8"}).content.decode()
    by_action = staff.get(CHANGELIST, {"action": "auth.logged_in"}).content.decode()

    assert "Ana Cruz (#7)" in listing
    assert "Bo Tan (#8)" in listing
    assert "Role updated" in listing
    assert "Ana Cruz" in by_name
    assert "Bo Tan" not in by_name
    assert f"/admin/audit/auditevent/{other.pk}/change/" in by_id
    assert f"/admin/audit/auditevent/{event.pk}/change/" not in by_id
    assert "Bo Tan" in by_action
    assert "Ana Cruz" not in by_action


def test_an_event_page_shows_the_changes_as_a_table_and_offers_no_save(staff, event):
    page = staff.get(f"{CHANGELIST}{event.pk}/change/").content.decode()

    assert "<tr><th>name</th><td>Agents</td><td>Senior agents</td></tr>" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert 'name="_save"' not in page


def test_events_cannot_be_added_changed_or_deleted_in_the_admin(staff, event):
    add = staff.get(f"{CHANGELIST}add/")
    change = staff.post(f"{CHANGELIST}{event.pk}/change/", {"target_display": "Forged"})
    delete = staff.post(f"{CHANGELIST}{event.pk}/delete/", {"post": "yes"})
    bulk_delete = staff.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})

    assert add.status_code == 403
    assert change.status_code == 403
    assert delete.status_code == 403
    assert bulk_delete.status_code in (200, 302)
    assert AuditEvent.objects.get(pk=event.pk).target_display == "Senior agents"
