"""Liveness and readiness probes."""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse


def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - reported to the caller as the failing check
        return f"database unreachable: {exc}"
    return None


def _check_migrations() -> str | None:
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001
        return f"cannot read migrations: {exc}"
    if plan:
        return f"{len(plan)} migration(s) not applied"
    return None


def _check_broker() -> str | None:
    if settings.CELERY_IN_PROCESS:
        return None
    from workflow_api.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"broker unreachable: {exc}"
    return None


def ready(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database()}
    checks["migrations"] = _check_migrations() if checks["database"] is None else "skipped: database unreachable"
    checks["broker"] = _check_broker()
    failing = {name: problem for name, problem in checks.items() if problem}
    body = {
        "status": "ok" if not failing else "unavailable",
        "checks": {name: (problem or "ok") for name, problem in checks.items()},
    }
    return JsonResponse(body, status=200 if not failing else 503)
