"""Latency of the task list endpoints on a loaded database, beside raw SQL for the same page.

    make bench-api        (or: .venv/bin/python benchmarks/bench_api.py --tasks 100000 --items 300000)

Data: the default tenant with the standard roles and published workflows
(`seed_standard_workflows`, so the version definition is a real one), ~200
members, and --tasks tickets + tasks pinned to one workflow version in varied
statuses, with --items items spread over the 200 users (the benchmark user
holds about a third of its ~1/200 share active). Loaded with bulk SQL
(INSERT ... SELECT generate_series), not the services: this measures reads.
A second run finds the data with the right counts and keeps it.

Engine: Django's test Client in-process (DEBUG off, a Bearer token) on
`GET /api/v1/tasks/mine/?page_size=50` (the benchmark user) and
`GET /api/v1/tasks/?status=pending&page_size=50` (an engine admin): p50/p95
over --requests requests after a warm-up, and the SQL queries per request.
Baseline: one hand-written query returning the same rows and fields (current
step name and role read from the version's definition in SQL) plus the count
for the paginator, on one cursor, serialised with `json.dumps`. Target: engine
p95 <= 3x baseline p95; when missed, the EXPLAIN of the engine's slowest
query is printed. Uses its own database (`<DATABASE_URL name>_bench_api`).

Checks, beside the timings: each endpoint is also asked for a later page,
the last page, and another user or filter (`status=in_progress`; the list as
a non-admin, through visibility). Every answer must be the baseline's JSON
(rows, fields, count, next/previous links), and the number of queries must
be the same for all of them over 5 requests each. Exit status 1 when a check
fails; a missed timing target is reported, not an error (timings are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USERS = 200
FIRST_USER_ID = 5001
BENCH_USER_ID = FIRST_USER_ID  # every 200th item is this user's
ADMIN_USER_ID = 1
TICKET_PREFIX = "BA"
PAGE_SIZE = 50
TARGET_RATIO = 3.0


def _setup_django() -> None:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/workflow_api")
    head, tail = base.rsplit("/", 1)
    os.environ["DATABASE_URL"] = head + "/" + tail.split("?")[0] + "_bench_api"
    os.environ.setdefault("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DEBUG"] = "0"  # DEBUG on would keep every query and cost time per request
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_api.settings")
    if not os.environ["DATABASE_URL"].startswith("postgres"):
        raise SystemExit("bench_api needs PostgreSQL (DATABASE_URL=postgres://...)")
    import psycopg

    admin_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]


# --- Data ---------------------------------------------------------------------------------


def _bench_version() -> Any:
    """The seeded workflow the tasks run on: the published one with the most steps."""
    from audit.services import Actor
    from workflow.models import Workflow, WorkflowStatus
    from workflow.seed import seed_standard_workflows
    from workflow_api.core.tenancy import default_tenant

    tenant = default_tenant()
    seed_standard_workflows(tenant=tenant, actor=Actor.system())
    published = (
        Workflow.objects.for_tenant(tenant)
        .filter(status=WorkflowStatus.PUBLISHED, current_version__isnull=False)
        .select_related("current_version")
        .order_by("id")
    )
    versions = [workflow.current_version for workflow in published if workflow.current_version is not None]
    return max(versions, key=lambda version: len(version.definition["steps"]))


def _loaded(tenant_id: int, version_id: int, tasks: int, items: int) -> bool:
    from django.db import connection

    from task.models import Task, TaskItem

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {Task._meta.db_table} WHERE tenant_id = %s AND workflow_version_id = %s",
            [tenant_id, version_id],
        )
        task_count = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {TaskItem._meta.db_table} WHERE tenant_id = %s", [tenant_id])
        item_count = cursor.fetchone()[0]
    return bool(task_count == tasks and item_count == items)


def _load(tenant_id: int, version: Any, tasks: int, items: int) -> None:
    from django.db import connection, transaction

    from role.models import Role, RoleMember
    from task.models import Task, TaskItem, TaskItemHistory
    from tickets.models import Ticket

    steps = version.definition["steps"]
    roles = {role.name: role.pk for role in Role.objects.for_tenant(tenant_id)}
    step_keys = [step["key"] for step in steps]
    step_names = [step["name"] for step in steps]
    role_names = [step["role"]["name"] for step in steps]
    role_pks = [roles[name] for name in role_names]
    ticket_t, task_t, item_t = Ticket._meta.db_table, Task._meta.db_table, TaskItem._meta.db_table
    history_t, member_t = TaskItemHistory._meta.db_table, RoleMember._meta.db_table

    # Fixed, independent scatters (seeded hashes of the row number): every run loads the same data, and an
    # item's user, status and task are not correlated with each other.
    def scatter(seed: int, modulo: int) -> str:
        return f"(((hashint8extended(g::bigint, {seed}) %% {modulo}) + {modulo}) %% {modulo})"

    hashed, task_hashed, user = scatter(1, 100), scatter(2, 100), scatter(3, USERS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {history_t}, {item_t}, {task_t}, {ticket_t}")
        cursor.execute(f"DELETE FROM {member_t} WHERE tenant_id = %s AND user_system_role_id >= 700000", [tenant_id])
        # The 200 users hold the workflow's roles, as the auth service would have synced them.
        cursor.execute(
            f"""
            INSERT INTO {member_t} (tenant_id, role_id, user_system_role_id, user_id, full_name, email,
                                    is_active, settings, assigned_at, last_synced_at)
            SELECT %s, (%s::bigint[])[1 + (u %% cardinality(%s::bigint[]))], 700000 + u, {FIRST_USER_ID} + u,
                   'Bench User ' || u, 'bench' || u || '@example.com', true, '{{}}', now(), now()
            FROM generate_series(0, {USERS - 1}) u
            """,
            [tenant_id, role_pks, role_pks],
        )
        cursor.execute(
            f"""
            INSERT INTO {ticket_t} (tenant_id, ticket_number, snapshot, subject, status, priority, department,
                                    category, sub_category, allocation_state, allocation_reason,
                                    source_updated_at, received_at, updated_at, last_delivered_at, delivery_count)
            SELECT %s, '{TICKET_PREFIX}' || lpad(g::text, 12, '0'),
                   jsonb_build_object('ticket_number', '{TICKET_PREFIX}' || lpad(g::text, 12, '0'),
                                      'subject', 'Benchmark ticket ' || g, 'description', repeat('x', 400)),
                   'Benchmark ticket ' || g, 'Open',
                   (ARRAY['low','medium','high','urgent'])[1 + g %% 4], %s, %s, %s, 'allocated', NULL,
                   now() - g * interval '1 minute', now() - g * interval '1 minute', now(), now(), 1
            FROM generate_series(1, %s) g
            """,
            [tenant_id, version.match_department, version.match_category, version.match_sub_category, tasks],
        )
        # Statuses: ~40% pending, 25% in progress, 5% on hold, 25% completed, 5% cancelled.
        cursor.execute(
            f"""
            INSERT INTO {task_t} (tenant_id, ticket_id, workflow_id, workflow_version_id, current_step_key,
                                  status, priority, ticket_owner_id, ticket_owner_name, target_resolution,
                                  created_at, updated_at, completed_at)
            SELECT t.tenant_id, t.id, %s, %s, (%s::text[])[(1 + g %% cardinality(%s::text[]))::int],
                   CASE WHEN {task_hashed} < 40 THEN 'pending' WHEN {task_hashed} < 65 THEN 'in_progress'
                        WHEN {task_hashed} < 70 THEN 'on_hold' WHEN {task_hashed} < 95 THEN 'completed'
                        ELSE 'cancelled' END,
                   t.priority, {FIRST_USER_ID} + g %% {USERS}, 'Bench User ' || g %% {USERS},
                   t.received_at + interval '2 days', t.received_at, t.received_at,
                   CASE WHEN {task_hashed} >= 70 THEN t.received_at + interval '1 day' END
            FROM (SELECT id, tenant_id, priority, received_at, row_number() OVER (ORDER BY id) AS g
                  FROM {ticket_t} WHERE tenant_id = %s) t
            """,
            [version.workflow_id, version.pk, step_keys, step_keys, tenant_id],
        )
        # Items: consecutive ones share a task (items/tasks each), users scattered; ~1/3 active.
        cursor.execute(
            f"""
            INSERT INTO {item_t} (tenant_id, task_id, step_key, step_name, role_id, role_name, user_id, user_name,
                                  user_email, status, origin, assigned_on, target_resolution, acted_on, notes,
                                  assignment_reason)
            SELECT %s, t.id, (%s::text[])[s], (%s::text[])[s], (%s::bigint[])[s], (%s::text[])[s],
                   {FIRST_USER_ID} + {user}, 'Bench User ' || {user}, 'bench' || {user} || '@example.com',
                   CASE WHEN {hashed} < 15 THEN 'new' WHEN {hashed} < 27 THEN 'in_progress'
                        WHEN {hashed} < 33 THEN 'on_hold' WHEN {hashed} < 88 THEN 'resolved'
                        WHEN {hashed} < 93 THEN 'reassigned' WHEN {hashed} < 97 THEN 'escalated'
                        ELSE 'breached' END,
                   'system', t.created_at, t.target_resolution, NULL, '',
                   jsonb_build_object('strategy', 'round_robin', 'position', g %% {USERS})
            FROM (SELECT g, 1 + g %% %s AS s FROM generate_series(1, %s) g) i
            JOIN (SELECT id, created_at, target_resolution, row_number() OVER (ORDER BY id) AS n
                  FROM {task_t} WHERE tenant_id = %s) t ON t.n = 1 + (i.g::bigint - 1) * %s / %s
            """,
            [
                tenant_id,
                step_keys,
                step_names,
                role_pks,
                role_names,
                len(steps),
                items,
                tenant_id,
                tasks,
                items,
            ],
        )
    with connection.cursor() as cursor:
        for table in (member_t, ticket_t, task_t, item_t):
            # VACUUM too, as autovacuum would have by now: it sets the visibility map for index-only scans.
            cursor.execute(f"VACUUM ANALYZE {table}")


# --- Measuring ----------------------------------------------------------------------------


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000


def _time(call: Callable[[], Any], *, warmup: int, requests: int) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(requests):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return samples


_BASELINE_COLUMNS = """
    t.id, tk.ticket_number, tk.subject, t.status, t.priority, t.workflow_id, w.name,
    t.current_step_key, step.name, step.role, t.ticket_owner_id, t.ticket_owner_name,
    t.target_resolution, t.created_at, t.updated_at, t.completed_at
"""
_BASELINE_FROM = """
    FROM {task} t
    LEFT JOIN {ticket} tk ON tk.id = t.ticket_id
    JOIN {workflow} w ON w.id = t.workflow_id
    JOIN {version} v ON v.id = t.workflow_version_id
    LEFT JOIN LATERAL (
        SELECT s->>'name' AS name, s->'role'->>'name' AS role
        FROM jsonb_array_elements(v.definition->'steps') s WHERE s->>'key' = t.current_step_key LIMIT 1
    ) step ON true
"""
# The caller's items, by tenant, user and status: the (tenant, user, status) index, as the engine queries them.
_ACTIVE_ITEM = (
    "EXISTS (SELECT 1 FROM {item} i WHERE i.task_id = t.id AND i.tenant_id = t.tenant_id"
    " AND i.user_id = %s AND i.status = ANY(%s))"
)
_ANY_ITEM = "EXISTS (SELECT 1 FROM {item} i WHERE i.task_id = t.id AND i.tenant_id = t.tenant_id AND i.user_id = %s)"


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    text: str = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _page_of(path: str) -> int:
    return int(dict(parse_qsl(urlsplit(path).query)).get("page", "1"))


def _with_page(path: str, page: int | None, *, absolute: bool = False) -> str:
    """`path` with ?page= set (or removed), the other parameters sorted, as DRF builds its links."""
    url = urlsplit(path)
    query = sorted(
        [*((k, v) for k, v in parse_qsl(url.query) if k != "page"), *([("page", str(page))] if page else [])]
    )
    text = url.path + (f"?{urlencode(query)}" if query else "")
    return f"http://testserver{text}" if absolute else text


def _paged(path: str, page: int) -> str:
    return path if page == 1 else _with_page(path, page)


def _baseline(where: str, params: list[Any], path: str) -> Callable[[], str]:
    """One raw query for the count and one for the page, on one cursor, as the endpoint's JSON."""
    from django.db import connection

    from task.models import Task, TaskItem
    from tickets.models import Ticket
    from workflow.models import Workflow, WorkflowVersion

    tables = {
        "task": Task._meta.db_table,
        "ticket": Ticket._meta.db_table,
        "workflow": Workflow._meta.db_table,
        "version": WorkflowVersion._meta.db_table,
        "item": TaskItem._meta.db_table,
    }
    where = where.format(**tables)
    page_sql = (
        f"SELECT {_BASELINE_COLUMNS} {_BASELINE_FROM.format(**tables)} WHERE {where} "
        "ORDER BY t.id DESC LIMIT %s OFFSET %s"
    )
    count_sql = f"SELECT count(*) FROM {tables['task']} t WHERE {where}"
    page = _page_of(path)

    def run() -> str:
        with connection.cursor() as cursor:
            cursor.execute(count_sql, params)
            count = cursor.fetchone()[0]
            cursor.execute(page_sql, [*params, PAGE_SIZE, (page - 1) * PAGE_SIZE])
            rows = cursor.fetchall()
        pages = max(1, -(-count // PAGE_SIZE))
        results = [
            {
                "id": r[0],
                "ticket_number": r[1],
                "subject": r[2],
                "status": r[3],
                "priority": r[4],
                "workflow": {"id": r[5], "name": r[6]},
                "current_step": {"id": r[7], "name": r[8] or r[7], "role": r[9]},
                "ticket_owner": None if r[10] is None else {"user_id": r[10], "full_name": r[11]},
                "target_resolution": _iso(r[12]),
                "created_at": _iso(r[13]),
                "updated_at": _iso(r[14]),
                "completed_at": _iso(r[15]),
            }
            for r in rows
        ]
        return json.dumps(
            {
                "count": count,
                # DRF's links: the next page; the previous one, without ?page= when it is the first.
                "next": _with_page(path, page + 1, absolute=True) if page < pages else None,
                "previous": None if page == 1 else _with_page(path, page - 1 if page > 2 else None, absolute=True),
                "results": results,
            }
        )

    return run


def _explain(sql: str, params: Any) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@dataclass(frozen=True)
class Case:
    """One request to the engine and the raw SQL (`where` over task t) that must answer it identically."""

    label: str
    path: str
    token: str
    where: str
    params: list[Any]


def _client(case: Case) -> Callable[[], Any]:
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {case.token}")

    def call() -> Any:
        response = client.get(case.path)
        if response.status_code != 200:
            raise SystemExit(f"{case.path}: HTTP {response.status_code} {response.content[:300]!r}")
        return response

    return call


def check_case(case: Case) -> dict[str, Any]:
    """The engine's JSON beside the baseline's, and the engine's queries over 5 requests."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call = _client(case)
    engine_body = json.loads(call().content)
    baseline_body = json.loads(_baseline(case.where, case.params, case.path)())
    query_counts: set[int] = set()
    queries: list[dict[str, str]] = []
    sql_seconds = 0.0
    for _ in range(5):
        with CaptureQueriesContext(connection) as captured:
            call()
        query_counts.add(len(captured.captured_queries))
        queries = captured.captured_queries
        sql_seconds += sum(float(q["time"]) for q in queries)
    return {
        "case": case,
        "count": engine_body["count"],
        "rows": len(engine_body["results"]),
        "same": engine_body == baseline_body,
        "engine_body": engine_body,
        "baseline_body": baseline_body,
        "queries": sorted(query_counts),
        "captured": queries,
        "sql_ms": sql_seconds / 5 * 1000,
    }


def time_case(case: Case, *, warmup: int, requests: int) -> dict[str, Any]:
    """p50/p95 of the engine and of the baseline on the same request."""
    return {
        "engine": _percentiles(_time(_client(case), warmup=warmup, requests=requests)),
        "baseline": _percentiles(
            _time(_baseline(case.where, case.params, case.path), warmup=warmup, requests=requests)
        ),
    }


def _first_difference(engine: dict[str, Any], baseline: dict[str, Any]) -> str:
    for key in ("count", "next", "previous"):
        if engine.get(key) != baseline.get(key):
            return f"{key}: engine {engine.get(key)!r}, baseline {baseline.get(key)!r}"
    for index, (mine, theirs) in enumerate(zip(engine["results"], baseline["results"], strict=False)):
        if mine != theirs:
            return f"row {index}:\n      engine   {json.dumps(mine)}\n      baseline {json.dumps(theirs)}"
    return f"rows: engine {len(engine['results'])}, baseline {len(baseline['results'])}"


def _report(label: str, checks: list[dict[str, Any]], timing: dict[str, Any]) -> tuple[bool, bool]:
    """Print one endpoint's figures and checks; (target met, checks passed)."""
    first = checks[0]
    engine_p50, engine_p95 = timing["engine"]
    base_p50, base_p95 = timing["baseline"]
    ratio = engine_p95 / base_p95
    met = ratio <= TARGET_RATIO
    print(f"{label}: GET {first['case'].path}  ({first['count']} matching tasks, {first['rows']} on the page)")
    print(f"  engine   p50 {engine_p50:7.2f} ms   p95 {engine_p95:7.2f} ms")
    print(f"  baseline p50 {base_p50:7.2f} ms   p95 {base_p95:7.2f} ms   (raw SQL + json.dumps)")
    print(f"  ratio p95 engine/baseline: {ratio:.2f}x  (target <= {TARGET_RATIO:.0f}x: {'met' if met else 'MISSED'})")
    print(f"  engine SQL time per request (mean of 5): {first['sql_ms']:.2f} ms; the rest is Django/DRF")
    # The query count must not depend on the page, the caller or the filter, and every answer must be the
    # baseline's: same rows, fields, count and links.
    all_counts = {count for check in checks for count in check["queries"]}
    constant = len(all_counts) == 1
    print(f"  queries per request (5 requests each): {'constant' if constant else 'NOT CONSTANT'}")
    passed = constant
    for check in checks:
        case = check["case"]
        counts = ", ".join(map(str, check["queries"]))
        verdict = "same JSON as the baseline" if check["same"] else "JSON DIFFERS from the baseline"
        print(f"    {counts:>3} queries  {case.label:<22} {case.path}  ({check['count']} tasks, {check['rows']} rows)")
        print(f"                {verdict}")
        if not check["same"]:
            passed = False
            print("      " + _first_difference(check["engine_body"], check["baseline_body"]))
    if not met:
        slowest = max(first["captured"], key=lambda q: float(q["time"]))
        print("  slowest engine query:")
        print("    " + slowest["sql"])
    return met, passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--reload", action="store_true", help="reload the data even when the counts match")
    args = parser.parse_args()
    if args.tasks <= 0 or args.items <= 0 or args.requests < 2:
        parser.error("--tasks and --items must be positive, --requests at least 2")

    _setup_django()
    from django.db import connection

    from task.models import ACTIVE_ITEM_STATUSES
    from workflow_api.core.tenancy import default_tenant
    from workflow_api.testing.tokens import admin_token, make_token

    tenant = default_tenant()
    version = _bench_version()
    if not args.reload and _loaded(tenant.pk, version.pk, args.tasks, args.items):
        print(f"data already loaded: {args.tasks} tasks, {args.items} items (kept)")
    else:
        began = time.perf_counter()
        _load(tenant.pk, version, args.tasks, args.items)
        print(f"loaded {args.tasks} tickets + tasks, {args.items} items in {time.perf_counter() - began:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM task_taskitem WHERE tenant_id = %s AND user_id = %s AND status = ANY(%s)",
            [tenant.pk, BENCH_USER_ID, [str(s) for s in ACTIVE_ITEM_STATUSES]],
        )
        active = cursor.fetchone()[0]
    print(f"benchmark user {BENCH_USER_ID} holds {active} active items; {args.requests} requests after {args.warmup}")
    print()

    active_statuses = [str(status) for status in ACTIVE_ITEM_STATUSES]
    admin = admin_token(user_id=ADMIN_USER_ID)
    other_user = BENCH_USER_ID + 7

    def mine(user_id: int, page: int, label: str) -> Case:
        return Case(
            label=label,
            path=_paged(f"/api/v1/tasks/mine/?page_size={PAGE_SIZE}", page),
            token=make_token(user_id=user_id, roles=[]),
            where="t.tenant_id = %s AND " + _ACTIVE_ITEM,
            params=[tenant.pk, user_id, active_statuses],
        )

    def listed(status: str, page: int, label: str, user_id: int | None = None) -> Case:
        where, params = "t.tenant_id = %s AND t.status = %s", [tenant.pk, status]
        if user_id is not None:  # not an admin: the tasks they own the ticket of or hold an item on
            where += " AND (t.ticket_owner_id = %s OR " + _ANY_ITEM + ")"
            params += [user_id, user_id]
        return Case(
            label=label,
            path=_paged(f"/api/v1/tasks/?status={status}&page_size={PAGE_SIZE}", page),
            token=admin if user_id is None else make_token(user_id=user_id, roles=[]),
            where=where,
            params=params,
        )

    endpoints: list[tuple[str, Case, Callable[[int], list[Case]]]] = [
        (
            "mine",
            mine(BENCH_USER_ID, 1, "page 1"),
            lambda last: [
                mine(BENCH_USER_ID, 3, "page 3"),
                mine(BENCH_USER_ID, last, "last page"),
                mine(other_user, 1, f"user {other_user}"),
            ],
        ),
        (
            "list pending (admin)",
            listed("pending", 1, "page 1"),
            lambda last: [
                listed("pending", 3, "page 3"),
                listed("pending", last, "last page"),
                listed("in_progress", 1, "status=in_progress"),
                listed("pending", 1, f"user {BENCH_USER_ID} (no admin)", user_id=BENCH_USER_ID),
            ],
        ),
    ]
    missed: list[dict[str, Any]] = []
    failed = False
    for label, primary, variants in endpoints:
        first = check_case(primary)
        checks = [first, *(check_case(case) for case in variants(max(1, -(-first["count"] // PAGE_SIZE))))]
        timing = time_case(primary, warmup=args.warmup, requests=args.requests)
        met, passed = _report(label, checks, timing)
        failed = failed or not passed
        if not met:
            missed.append(first)
        print()
    for result in missed:
        slowest = max(result["captured"], key=lambda q: float(q["time"]))
        print(f"EXPLAIN ANALYZE of the slowest query of {result['case'].path}:")
        print(_explain(slowest["sql"], None))
        print()
    if failed:
        print("FAILED: an answer differs from the baseline's, or the query count is not constant")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
