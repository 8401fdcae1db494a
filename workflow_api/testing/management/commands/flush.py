"""`flush` for the test suite: empties append-only tables too.

Transactional tests (those that let a real worker see committed rows) are
cleaned up with `flush`, which the append-only triggers would refuse. On
PostgreSQL a superuser session switches triggers off with
session_replication_role for the flush only; on SQLite the append-only
triggers are dropped and re-created around it. Either way the triggers are
back before the command returns, even when the flush fails. Only the test
settings install this command.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands.flush import Command as FlushCommand
from django.db import connections, transaction

from workflow_api.core.append_only import is_append_only_trigger


class Command(FlushCommand):
    def handle(self, **options: Any) -> None:
        connection = connections[options["database"]]
        if connection.vendor == "postgresql":
            # SET LOCAL lasts exactly as long as this transaction (flush's own
            # atomic block nests inside it), so triggers are back on afterwards
            # even if the flush fails.
            with transaction.atomic(using=options["database"]):
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL session_replication_role = replica")
                super().handle(**options)
            return

        with connection.cursor() as cursor:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            triggers = [(name, sql) for name, sql in cursor.fetchall() if is_append_only_trigger(name)]
            for name, _sql in triggers:
                cursor.execute(f'DROP TRIGGER "{name}"')
        try:
            super().handle(**options)
        finally:
            with connection.cursor() as cursor:
                for _name, sql in triggers:
                    cursor.execute(sql)
