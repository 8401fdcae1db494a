"""Append-only tables, enforced by the database itself.

A migration adds `AppendOnly("<table>")`; from then on UPDATE and DELETE (and
TRUNCATE on PostgreSQL) of that table are refused by triggers, whatever issues
them: the ORM, raw SQL, or a psql session of the application's role. On
PostgreSQL only a superuser can get around them (session_replication_role),
which the test suite does to empty tables between transactional tests.
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


def trigger_names(table: str) -> list[str]:
    return [f"{table}_no_update", f"{table}_no_delete", f"{table}_no_truncate"]


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
            schema_editor.execute(statement)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        for statement in uninstall_sql(schema_editor.connection.vendor, self.table):
            schema_editor.execute(statement)

    def describe(self) -> str:
        return f"Make {self.table} append-only"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return ("workflow_api.core.append_only.AppendOnly", [self.table], {})
