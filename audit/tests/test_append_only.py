"""The audit table refuses change at the database, not only in Python."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from audit.models import AppendOnlyError, AuditEvent
from audit.selectors import audit_chain_verify
from audit.tests.factories import AuditEventFactory
from workflow_api.core.append_only import install_sql, installed_triggers, trigger_names, uninstall_sql
from workflow_api.testing.worker import ROOT

TABLE = AuditEvent._meta.db_table
REFUSED = "is refused: the table is append-only"


def _refused(operation: str) -> str:
    return f"{operation} on {TABLE} {REFUSED}"


@pytest.mark.django_db
def test_the_migrations_install_the_append_only_triggers():
    expected = set(trigger_names(TABLE)) if connection.vendor == "postgresql" else set(trigger_names(TABLE)[:2])

    assert installed_triggers(connection, TABLE) == expected


@pytest.mark.django_db
def test_saving_a_stored_event_again_is_refused(tenant):
    event = AuditEventFactory.create(tenant=tenant, target_display="Original")
    event.target_display = "Forged"

    with pytest.raises(AppendOnlyError):
        event.save()

    assert AuditEvent.objects.get(pk=event.pk).target_display == "Original"


@pytest.mark.django_db
def test_a_new_instance_reusing_a_stored_id_cannot_overwrite_it(tenant):
    event = AuditEventFactory.create(tenant=tenant, target_display="Original")
    impostor = AuditEvent(
        pk=event.pk,
        tenant=tenant,
        actor_name="mallory",
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        target_display="Forged",
        prev_hash=event.prev_hash,
        hash="f" * 64,
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        impostor.save()

    assert AuditEvent.objects.get(pk=event.pk).target_display == "Original"


@pytest.mark.django_db
def test_deleting_a_stored_event_is_refused(tenant):
    event = AuditEventFactory.create(tenant=tenant)

    with pytest.raises(AppendOnlyError):
        event.delete()

    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_a_queryset_update_is_refused_by_the_database_trigger(tenant):
    event = AuditEventFactory.create(tenant=tenant, target_display="Original")

    with pytest.raises(IntegrityError, match=_refused("UPDATE")), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(target_display="Forged")

    assert AuditEvent.objects.get(pk=event.pk).target_display == "Original"


@pytest.mark.django_db
def test_a_queryset_delete_is_refused_by_the_database_trigger(tenant):
    event = AuditEventFactory.create(tenant=tenant)

    with pytest.raises(IntegrityError, match=_refused("DELETE")), transaction.atomic():
        AuditEvent.objects.all().delete()

    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("operation", "sql"),
    [
        ("UPDATE", f"UPDATE {TABLE} SET actor_name = 'mallory'"),
        ("DELETE", f"DELETE FROM {TABLE}"),
    ],
)
def test_raw_sql_cannot_change_or_delete_events(tenant, operation, sql):
    AuditEventFactory.create(tenant=tenant)

    with pytest.raises(IntegrityError, match=_refused(operation)), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)

    assert AuditEvent.objects.count() == 1
    assert not AuditEvent.objects.filter(actor_name="mallory").exists()


def _run_deferred_checks() -> None:
    # PostgreSQL refuses to truncate a table with pending trigger events (the
    # deferred foreign-key checks of this test's inserts) before our trigger
    # is even asked; run them now so the append-only trigger is what answers.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.postgres
def test_raw_sql_truncate_is_refused_on_postgresql(postgres, tenant):
    AuditEventFactory.create(tenant=tenant)

    _run_deferred_checks()
    with pytest.raises(IntegrityError, match=_refused("TRUNCATE")), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TABLE}")

    assert AuditEvent.objects.count() == 1


@pytest.mark.postgres
def test_truncating_the_tenant_table_with_cascade_cannot_empty_the_audit_table(postgres, tenant):
    AuditEventFactory.create(tenant=tenant)

    _run_deferred_checks()
    with pytest.raises(IntegrityError, match=_refused("TRUNCATE")), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE core_tenant CASCADE")

    assert AuditEvent.objects.count() == 1


def _ledger(tmp_path) -> sqlite3.Connection:
    db = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
    db.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY, entry TEXT NOT NULL)")
    for statement in install_sql("sqlite", "ledger"):
        db.execute(statement)
    return db


def test_on_sqlite_the_same_triggers_allow_inserts_and_refuse_updates_and_deletes(tmp_path):
    db = _ledger(tmp_path)
    try:
        db.execute("INSERT INTO ledger (entry) VALUES ('first'), ('second')")

        with pytest.raises(sqlite3.IntegrityError, match="UPDATE on ledger is refused"):
            db.execute("UPDATE ledger SET entry = 'forged' WHERE id = 1")
        with pytest.raises(sqlite3.IntegrityError, match="DELETE on ledger is refused"):
            db.execute("DELETE FROM ledger WHERE id = 2")
        with pytest.raises(sqlite3.IntegrityError, match="DELETE on ledger is refused"):
            db.execute("DELETE FROM ledger")  # SQLite's TRUNCATE

        assert db.execute("SELECT id, entry FROM ledger ORDER BY id").fetchall() == [(1, "first"), (2, "second")]
    finally:
        db.close()


def test_on_sqlite_reversing_the_migration_removes_the_triggers(tmp_path):
    db = _ledger(tmp_path)
    try:
        db.execute("INSERT INTO ledger (entry) VALUES ('first')")
        for statement in uninstall_sql("sqlite", "ledger"):
            db.execute(statement)

        db.execute("UPDATE ledger SET entry = 'changed'")

        assert db.execute("SELECT entry FROM ledger").fetchall() == [("changed",)]
    finally:
        db.close()


# The two transactional tests below run in this order (pytest-django keeps
# file order within the transactional group). The first commits an audit row,
# so its teardown needs the test `flush` override; the second proves that the
# override left the table empty and the triggers in force.


@pytest.mark.django_db(transaction=True)
def test_a_committed_event_can_be_flushed_by_the_test_suite_only(tenant):
    event = AuditEventFactory.create(tenant=tenant)
    assert audit_chain_verify(tenant=tenant).verified == 1

    call_command("flush", interactive=False, verbosity=0)

    assert not AuditEvent.objects.filter(pk=event.pk).exists()
    assert installed_triggers(connection, TABLE)
    AuditEventFactory.create()  # left for the teardown flush


@pytest.mark.django_db(transaction=True)
def test_after_a_flush_the_table_is_empty_and_still_append_only(tenant):
    assert not AuditEvent.objects.exists()
    event = AuditEventFactory.create(tenant=tenant)

    with pytest.raises(IntegrityError, match=_refused("UPDATE")), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET actor_name = 'mallory' WHERE id = %s", [event.pk])
    with pytest.raises(IntegrityError, match=_refused("DELETE")), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [event.pk])

    assert AuditEvent.objects.get(pk=event.pk).actor_name == event.actor_name


# --- SQLite as `make run` uses it: a database made by the migrations ---------------

# Runs in `manage.py shell` against the migrated file: appends one event through
# the service, then tries the ORM's bulk update and delete, which go to the
# database without the model's Python guards. Prints what each attempt raised.
_ORM_ATTEMPTS = """
import json
from django.db import IntegrityError, transaction
from audit.models import AuditAction, AuditEvent
from audit.services import Actor, audit_append
from workflow_api.core.tenancy import default_tenant

with transaction.atomic():
    audit_append(
        tenant=default_tenant(), actor=Actor.system(), action=AuditAction.ROLE_CREATED,
        target_type="role", target_id=12, target_display="Original",
    )
outcomes = {}
for name, attempt in [
    ("update", lambda: AuditEvent.objects.update(target_display="Forged")),
    ("delete", lambda: AuditEvent.objects.all().delete()),
]:
    try:
        with transaction.atomic():
            attempt()
        outcomes[name] = "allowed"
    except IntegrityError as exc:
        outcomes[name] = str(exc)
print(json.dumps(outcomes))
"""


def _manage(database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "CELERY_"))}
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "workflow_api.settings", "DATABASE_URL": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_on_a_sqlite_database_built_by_the_migrations_the_audit_table_refuses_updates_and_deletes(tmp_path):
    database = tmp_path / "migrated.sqlite3"
    _manage(database, "migrate", "--noinput", "--verbosity", "0")

    orm = json.loads(_manage(database, "shell", "--command", _ORM_ATTEMPTS).stdout.splitlines()[-1])

    assert orm == {"update": _refused("UPDATE"), "delete": _refused("DELETE")}
    db = sqlite3.connect(database, isolation_level=None)
    try:
        with pytest.raises(sqlite3.IntegrityError, match=_refused("UPDATE")):
            db.execute(f"UPDATE {TABLE} SET target_display = 'Forged'")
        with pytest.raises(sqlite3.IntegrityError, match=_refused("DELETE")):
            db.execute(f"DELETE FROM {TABLE}")

        assert db.execute(f"SELECT target_display FROM {TABLE}").fetchall() == [("Original",)]
    finally:
        db.close()
