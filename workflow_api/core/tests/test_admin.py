"""The operator's admin: read-only system rows, filters, and the "Retry now" action."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from workflow_api.core.tests.factories import (
    InboundFailureFactory,
    MessageCounterFactory,
    OutboxMessageFactory,
    TenantFactory,
    UserFactory,
)

OUTBOX = "/admin/core/outboxmessage/"
FAILURES = "/admin/core/inboundfailure/"


@pytest.fixture
def superuser_client(db) -> Client:
    client = Client()
    client.force_login(UserFactory.create(username="operator", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/core/tenant/",
        f"{FAILURES}?error_code=invalid_message&dead_lettered__exact=1&q=role",
        f"{FAILURES}?task_name=role.tasks.sync_role",
        f"{OUTBOX}?status=pending&q=send_ticket_status",
        "/admin/core/messagecounter/?outcome=ignored_other_system",
    ],
)
def test_the_operator_lists_render_with_their_filters(superuser_client, tenant, url):
    InboundFailureFactory.create()
    OutboxMessageFactory.create()
    MessageCounterFactory.create()

    response = superuser_client.get(url)

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


def test_the_status_filter_separates_pending_from_sent(superuser_client):
    pending = OutboxMessageFactory.create()
    sent = OutboxMessageFactory.create(sent_at=timezone.now())

    pending_ids = [m.id for m in superuser_client.get(f"{OUTBOX}?status=pending").context["cl"].result_list]
    sent_ids = [m.id for m in superuser_client.get(f"{OUTBOX}?status=sent").context["cl"].result_list]

    assert (pending_ids, sent_ids) == ([pending.id], [sent.id])


def test_an_inbound_failure_shows_its_body_as_indented_json(superuser_client, tenant):
    failure = InboundFailureFactory.create(body={"args": [{"role_id": "x", "note": "<b>not html</b>"}], "kwargs": {}})

    page = superuser_client.get(f"{FAILURES}{failure.id}/change/").content.decode()

    assert '<pre style="white-space: pre-wrap; margin: 0">{\n  &quot;args&quot;: [' in page
    assert "&lt;b&gt;not html&lt;/b&gt;" in page  # escaped, never rendered


@pytest.mark.parametrize("model", ["inboundfailure", "outboxmessage", "messagecounter"])
def test_system_rows_cannot_be_added_changed_or_deleted_in_the_admin(superuser_client, tenant, model):
    factories: dict[str, Any] = {
        "inboundfailure": InboundFailureFactory,
        "outboxmessage": OutboxMessageFactory,
        "messagecounter": MessageCounterFactory,
    }
    row = factories[model].create()

    assert superuser_client.get(f"/admin/core/{model}/add/").status_code == 403
    assert superuser_client.get(f"/admin/core/{model}/{row.id}/delete/").status_code == 403
    change = superuser_client.post(f"/admin/core/{model}/{row.id}/change/", {})
    assert change.status_code == 403


def test_retry_now_makes_the_selected_pending_messages_due(superuser_client):
    later = timezone.now() + timedelta(minutes=5)
    backing_off = OutboxMessageFactory.create(attempts=3, next_attempt_at=later, last_error="OSError: refused")
    untouched = OutboxMessageFactory.create(attempts=3, next_attempt_at=later)
    sent = OutboxMessageFactory.create(sent_at=timezone.now(), next_attempt_at=later)

    response = superuser_client.post(
        OUTBOX, {"action": "retry_now", "_selected_action": [backing_off.id, sent.id]}, follow=True
    )

    assert response.status_code == 200
    assert "1 pending message(s) are due now" in response.content.decode()
    for row in (backing_off, untouched, sent):
        row.refresh_from_db()
    assert backing_off.next_attempt_at <= timezone.now()
    assert backing_off.attempts == 3
    assert untouched.next_attempt_at == later
    assert sent.next_attempt_at == later


def test_retry_now_is_offered_only_to_operators_allowed_to_change_the_outbox(db):
    viewer = UserFactory.create(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_outboxmessage"))
    client = Client()
    client.force_login(viewer)
    OutboxMessageFactory.create()

    response = client.get(OUTBOX)

    assert response.status_code == 200
    assert response.context["action_form"] is None or "retry_now" not in dict(
        response.context["action_form"].fields["action"].choices
    )


def test_a_tenants_slug_cannot_be_renamed(superuser_client):
    acme = TenantFactory.create(slug="acme", name="Acme")

    superuser_client.post(f"/admin/core/tenant/{acme.id}/change/", {"slug": "renamed", "name": "Acme Ltd"})

    acme.refresh_from_db()
    assert (acme.slug, acme.name) == ("acme", "Acme Ltd")
