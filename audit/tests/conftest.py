from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from django.db import connection

from audit.models import AuditEvent
from workflow_api.core.append_only import install_sql, trigger_names

TABLE = AuditEvent._meta.db_table


@contextmanager
def _triggers_off() -> Iterator[None]:
    """What an attacker with more rights than the application could do, for tamper tests.

    PostgreSQL: the test role is a superuser, which may switch user triggers
    off for its session. SQLite: drop the triggers and put them back.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
            try:
                yield
            finally:
                cursor.execute("SET session_replication_role = DEFAULT")
            return
        for name in trigger_names(TABLE)[:2]:
            cursor.execute(f'DROP TRIGGER "{name}"')
        try:
            yield
        finally:
            for statement in install_sql("sqlite", TABLE):
                cursor.execute(statement)


@pytest.fixture
def triggers_off(db) -> Callable[[], AbstractContextManager[None]]:
    return _triggers_off
