"""`flush` for the test suite: empties append-only tables too.

Transactional tests (those that let a real worker see committed rows) are
cleaned up with `flush`, which the append-only triggers would refuse. On
PostgreSQL a superuser session may switch triggers off with
session_replication_role; on SQLite the triggers are dropped and re-created
around the flush. Only the test settings install this command.
"""

from typing import Any

from django.core.management.commands.flush import Command as FlushCommand
from django.db import connections


class Command(FlushCommand):
    def handle(self, **options: Any) -> None:
        connection = connections[options["database"]]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = replica")
            try:
                super().handle(**options)
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("SET session_replication_role = DEFAULT")
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_no\\_%' ESCAPE '\\'"
            )
            triggers = [row[0] for row in cursor.fetchall()]
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_no\\_%' ESCAPE '\\'"
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP TRIGGER "{name}"')
        try:
            super().handle(**options)
        finally:
            with connection.cursor() as cursor:
                for sql in triggers:
                    cursor.execute(sql)
