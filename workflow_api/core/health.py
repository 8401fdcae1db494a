"""Liveness and readiness probes.

`/health/live/` answers as long as the process serves requests. `/health/ready/`
checks what a request needs: the database, every migration applied, and (when
one is configured) the broker. It answers 503 naming each failing check, so an
orchestrator keeps traffic away and an operator sees why.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from kombu import Connection

OK = "ok"
BROKER_TIMEOUT_SECONDS = 2


class CheckFailed(Exception):
    pass


def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": OK})


# Each check turns any error into the failing check's description.
def _check_database() -> str:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        raise CheckFailed(f"database unreachable: {exc}") from exc
    return OK


def _check_migrations() -> str:
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        raise CheckFailed(f"cannot read migrations: {exc}") from exc
    if plan:
        raise CheckFailed(f"{len(plan)} migration(s) not applied")
    return OK


def _check_broker() -> str:
    if settings.CELERY_IN_PROCESS:
        return "not configured: tasks run in-process"
    # A connection of its own, from the settings as they are now, with a short
    # timeout: the Celery app's connection retries for much longer than a probe may take.
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
            conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:
        raise CheckFailed(f"broker unreachable: {exc}") from exc
    return OK


def _run(check: Callable[[], str]) -> tuple[bool, str]:
    try:
        return True, check()
    except CheckFailed as exc:
        return False, str(exc)


def ready(request: HttpRequest) -> JsonResponse:
    results = {"database": _run(_check_database)}
    if results["database"][0]:
        results["migrations"] = _run(_check_migrations)
    else:
        results["migrations"] = (False, "skipped: database unreachable")
    results["broker"] = _run(_check_broker)
    failing = [name for name, (passed, _) in results.items() if not passed]
    body = {
        "status": OK if not failing else "unavailable",
        "checks": {name: detail for name, (_, detail) in results.items()},
        "failing": failing,
    }
    response = JsonResponse(body, status=503 if failing else 200)
    response["Cache-Control"] = "no-store"
    return response
