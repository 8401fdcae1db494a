"""Append-only tables, enforced by the database itself.

A migration adds `AppendOnly("<table>")`; from then on UPDATE and DELETE (and
TRUNCATE on PostgreSQL) of that table are refused by triggers, whatever issues
them: the ORM, raw SQL, or a psql session of the application's role. On
PostgreSQL only a superuser (session_replication_role) or the table's owner
(ALTER TABLE ... DISABLE TRIGGER, DROP TRIGGER) can get around them; the test
suite does the former to empty tables between transactional tests. Run the
application as a role that does not own its tables if the owner must not be
able to rewrite history either.

Every trigger is named `<table>_no_<operation>`, so tooling (the test flush,
`installed_triggers`) can find them without a registry.

SQLite caveat: a migration that makes Django rebuild an append-only table
(most AlterField/RemoveField operations there) drops its triggers with the old
table. Follow such an operation with another `AppendOnly(table)`; the test
suite, which also runs on SQLite, catches a forgotten one.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION workflow_api_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% on % is refused: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
"""


TRIGGER_SUFFIXES = ("_no_update", "_no_delete", "_no_truncate")


def trigger_names(table: str) -> list[str]:
    return [f"{table}{suffix}" for suffix in TRIGGER_SUFFIXES]


def is_append_only_trigger(name: str) -> bool:
    return name.endswith(TRIGGER_SUFFIXES)


def installed_triggers(connection: Any, table: str) -> set[str]:
    """The append-only triggers that exist on `table` (to check a migration did its job)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [connection.ops.quote_name(table)],
            )
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
        return {name for (name,) in cursor.fetchall() if is_append_only_trigger(name)}


def install_sql(vendor: str, table: str) -> list[str]:
    no_update, no_delete, no_truncate = trigger_names(table)
    if vendor == "postgresql":
        return [
            PG_FUNCTION,
            f'CREATE TRIGGER "{no_update}" BEFORE UPDATE ON "{table}" '
            f"FOR EACH ROW EXECUTE FUNCTION workflow_api_refuse_change();",
            f'CREATE TRIGGER "{no_delete}" BEFORE DELETE ON "{table}" '
            f"FOR EACH ROW EXECUTE FUNCTION workflow_api_refuse_change();",
            f'CREATE TRIGGER "{no_truncate}" BEFORE TRUNCATE ON "{table}" '
            f"FOR EACH STATEMENT EXECUTE FUNCTION workflow_api_refuse_change();",
        ]
    if vendor == "sqlite":
        # SQLite has no TRUNCATE; `DELETE FROM t` is caught by the DELETE trigger.
        return [
            f'CREATE TRIGGER "{no_update}" BEFORE UPDATE ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, 'UPDATE on {table} is refused: the table is append-only'); END;",
            f'CREATE TRIGGER "{no_delete}" BEFORE DELETE ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, 'DELETE on {table} is refused: the table is append-only'); END;",
        ]
    raise ValueError(f"append-only tables are not supported on {vendor}")


def uninstall_sql(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [f'DROP TRIGGER IF EXISTS "{name}" ON "{table}";' for name in trigger_names(table)]
    return [f'DROP TRIGGER IF EXISTS "{name}";' for name in trigger_names(table)[:2]]


class AppendOnly(migrations.operations.base.Operation):
    """Migration operation: make `table` append-only at the database."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, table: str) -> None:
        self.table = table

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        for statement in install_sql(schema_editor.connection.vendor, self.table):
            schema_editor.execute(statement, params=None)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        for statement in uninstall_sql(schema_editor.connection.vendor, self.table):
            schema_editor.execute(statement, params=None)

    def describe(self) -> str:
        return f"Make {self.table} append-only"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return ("workflow_api.core.append_only.AppendOnly", [self.table], {})
