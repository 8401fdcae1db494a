"""`manage.py audit_verify` and the chain walk behind it."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import AuditEvent
from audit.selectors import BreakKind, audit_chain_verify
from audit.services import hash_of
from audit.tests.factories import AuditEventFactory
from workflow_api.testing import worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(tenant) -> list[AuditEvent]:
    return [AuditEventFactory.create(tenant=tenant, target_id=str(n)) for n in range(5)]


def _verify(*args: str) -> str:
    out = StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue()


def _verify_fails(*args: str) -> tuple[CommandError, str]:
    err = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("audit_verify", *args, stderr=err)
    return raised.value, err.getvalue()


def test_an_intact_chain_verifies(chain, other_tenant):
    AuditEventFactory.create(tenant=other_tenant)

    assert _verify() == "OK: 6 events verified\n"


def test_an_empty_trail_verifies(db):
    assert _verify() == "OK: 0 events verified\n"


def test_an_altered_row_is_named_as_altered(chain, triggers_off):
    altered = chain[2]
    with triggers_off():
        AuditEvent.objects.filter(pk=altered.pk).update(target_display="Forged")

    error, stderr = _verify_fails()

    assert f"event {altered.pk} (tenant default): content hash mismatch" in str(error)
    assert f"event {altered.pk} " in stderr
    assert error.returncode != 0
    result = audit_chain_verify()
    assert result.first_break is not None
    assert (result.first_break.event_id, result.first_break.kind) == (altered.pk, BreakKind.CONTENT)
    assert result.verified == 2


def test_a_removed_row_is_found_at_the_row_after_it(chain, triggers_off):
    removed, following = chain[2], chain[3]
    with triggers_off():
        AuditEvent.objects.filter(pk=removed.pk).delete()

    error, _ = _verify_fails()

    assert f"event {following.pk} (tenant default): prev_hash mismatch" in str(error)
    assert "a row before it was removed or altered" in str(error)


def test_removing_the_first_row_breaks_the_chain_at_the_second(chain, triggers_off):
    with triggers_off():
        AuditEvent.objects.filter(pk=chain[0].pk).delete()

    error, _ = _verify_fails()

    assert f"event {chain[1].pk} (tenant default): prev_hash mismatch" in str(error)


def test_an_altered_row_whose_hash_was_recomputed_is_caught_by_the_next_row(chain, triggers_off):
    altered = AuditEvent.objects.get(pk=chain[1].pk)
    altered.target_display = "Forged"
    with triggers_off():
        AuditEvent.objects.filter(pk=altered.pk).update(target_display="Forged", hash=hash_of(altered))

    error, _ = _verify_fails()

    assert f"event {chain[2].pk} (tenant default): prev_hash mismatch" in str(error)


def test_each_broken_tenant_is_reported_and_intact_ones_still_count(chain, other_tenant, triggers_off):
    theirs = [AuditEventFactory.create(tenant=other_tenant) for _ in range(3)]
    with triggers_off():
        AuditEvent.objects.filter(pk=chain[4].pk).update(actor_name="mallory")
        AuditEvent.objects.filter(pk=theirs[0].pk).update(actor_id=1)

    result = audit_chain_verify()

    assert [(item.event_id, item.tenant_slug) for item in result.breaks] == [
        (chain[4].pk, "default"),
        (theirs[0].pk, "acme"),
    ]
    assert result.verified == 4
    assert result.first_break is not None
    assert result.first_break.event_id == chain[4].pk


def test_one_tenant_can_be_verified_alone(chain, other_tenant, triggers_off):
    theirs = AuditEventFactory.create(tenant=other_tenant)
    with triggers_off():
        AuditEvent.objects.filter(pk=theirs.pk).update(target_id="999")

    assert _verify("--tenant", "default") == "OK: 5 events verified\n"
    error, _ = _verify_fails("--tenant", "acme")
    assert f"event {theirs.pk} (tenant acme)" in str(error)


def test_an_unknown_tenant_is_an_error(db):
    error, _ = _verify_fails("--tenant", "nope")

    assert "Unknown tenant 'nope'" in str(error)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_command_exits_zero_on_an_intact_chain_and_non_zero_on_a_broken_one(postgres, tenant):
    events = [AuditEventFactory.create(tenant=tenant) for _ in range(3)]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "audit_verify"],
            cwd=worker.ROOT,
            env={**os.environ, "DATABASE_URL": worker.test_database_url(), "LOG_FORMAT": "plain"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    intact = run()
    assert (intact.returncode, intact.stdout) == (0, "OK: 3 events verified\n")

    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute("UPDATE audit_auditevent SET changes = '{}' WHERE id = %s", [events[1].pk])
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")

    broken = run()
    assert broken.returncode == 1
    assert f"event {events[1].pk} (tenant default): content hash mismatch" in broken.stderr
