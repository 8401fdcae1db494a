"""Ticket intake end to end (RabbitMQ -> worker -> PostgreSQL), beside a plain psycopg loop.

    make bench-intake   (or: .venv/bin/python benchmarks/bench_intake.py --tickets 2000)

Engine: a separate process publishes N `tickets.tasks.receive_ticket`
messages with Celery's own `send_task` (a plain client, as the helpdesk
does) into `TICKET_TASKS_PRODUCTION`, while `celery -A workflow_api worker`
subprocesses run as deployed (`make worker`: prefork, acks after commit).
The clock runs from the first publish until every ticket has its task, items
and outbox rows committed (row counts polled every 0.5 s).

Baseline, same run: one psycopg connection writing, for each ticket, the
rows the engine wrote per ticket (ticket, task, item, item history, outbox,
audit rows, the round-robin pointers it moved and the message counters, in
the real tables, so with the same indexes and constraints), one commit per
ticket. The ratio says what the engine costs on top of its
writes: message handling, validation, matching, round-robin, ORM.

The workers take the queue in batches (workflow_api.core.batches); the run
prints how many batches they ran and their sizes, from the workers' logs.
Then ~300 tickets go through the worker's batch path (`run_batch`, batches
of INBOUND_BATCH_SIZE) in this process under cProfile (top functions of
project code), and batches of 1 and of INBOUND_BATCH_SIZE are timed and
their SQL queries per ticket counted. Uses its own database (`<DATABASE_URL name>_bench_intake`), emptied
first; the broker is CELERY_BROKER_URL (give it a vhost of its own).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import multiprocessing
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TICKET_QUEUE = "TICKET_TASKS_PRODUCTION"
RECEIVE_TICKET = "tickets.tasks.receive_ticket"
# A seeded standard workflow (workflow.seed): Triage -> Resolve -> Finalize.
ROUTING = {"department": "Asset Department", "category": "Asset Check In", "sub_category": "Check In"}
TARGET_RATIO = 0.5
POLL_SECONDS = 0.5
STALL_SECONDS = 120.0
PROFILE_TICKETS = 300
QUERY_COUNT_TICKETS = 20

# Tables the intake writes; emptied before the run.
INTAKE_TABLES = (
    "tickets_ticket",
    "task_task",
    "task_taskitem",
    "task_taskitemhistory",
    "core_outboxmessage",
    "audit_auditevent",
    "core_inboundfailure",
    "core_messagecounter",
)


def _bench_database_url() -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/workflow_api")
    head, name = base.rsplit("/", 1)
    return f"{head}/{name.split('?')[0]}_bench_intake"


# The workers log as deployed (LOG_LEVEL default INFO); this process quietly.
WORKER_LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")


def _setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # As deployed: DEBUG off, else every process keeps a log of its SQL queries.
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_api.settings")
    if not database_url.startswith("postgres"):
        raise SystemExit("bench_intake needs PostgreSQL (the worker is another process)")
    import psycopg

    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _empty_tables() -> None:
    from django.db import connection, transaction

    # audit_auditevent refuses TRUNCATE through a trigger (append-only). This is
    # a scratch database of the benchmark's own, nothing in it is evidence, so
    # the triggers are skipped for this one transaction (superuser only).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(f"TRUNCATE {', '.join(INTAKE_TABLES)} RESTART IDENTITY")


def _seed() -> None:
    from audit.services import Actor
    from workflow.seed import seed_standard_workflows
    from workflow_api.core.tenancy import default_tenant

    seed_standard_workflows(tenant=default_tenant(), actor=Actor.system(), demo=True)


def _purge(broker_url: str) -> None:
    from workflow_api.testing.worker import purge

    purge(broker_url, (TICKET_QUEUE,))


def ticket_data(number: str, index: int) -> dict[str, Any]:
    """A helpdesk ticket as messages.md describes it, routed to a seeded workflow."""
    submitted = datetime(2026, 11, 21, 9, 30, tzinfo=UTC) + timedelta(seconds=index)
    return {
        "id": index + 1,
        "ticket_number": number,
        "subject": f"Return of laptop {index}",
        **ROUTING,
        "description": "The laptop comes back after the project ended; check it and record it.",
        "scheduled_date": None,
        "priority": ("Low", "Medium", "High", "Critical")[index % 4],
        "asset_name": "Dell Latitude 7440",
        "serial_number": f"DL7440-{index:06d}",
        "location": "HQ Floor 3",
        "expected_return_date": submitted.date().isoformat(),
        "issue_type": None,
        "other_issue": None,
        "performance_start_date": None,
        "performance_end_date": None,
        "approved_by": None,
        "rejected_by": None,
        "cost_items": None,
        "requested_budget": None,
        "fiscal_year": None,
        "department_input": None,
        "dynamic_data": {"condition": "good", "charger_included": True},
        "status": "Open",
        "submit_date": submitted.isoformat(),
        "update_date": (submitted + timedelta(minutes=5)).isoformat(),
        "rejection_reason": None,
        "date_completed": None,
        "csat_rating": None,
        "feedback": None,
        "employee_id": 1000 + index % 500,
        "employee_company_id": f"EMP-{1000 + index % 500:04d}",
        "employee_email": f"employee{index % 500}@example.com",
        "employee": {
            "first_name": "Ana",
            "last_name": f"Reyes {index % 500}",
            "email": f"employee{index % 500}@example.com",
            "company_id": f"EMP-{1000 + index % 500:04d}",
            "department": "Finance",
        },
        "attachments": [
            {
                "id": index + 1,
                "file_name": "return-form.pdf",
                "file_type": "application/pdf",
                "file_size": 48213,
                "file_path": f"ticket_attachments/return-{index}.pdf",
            }
        ],
    }


# --- Engine: publisher process + deployed workers ---------------------------------


def _publish(broker_url: str, prefix: str, n: int, started: Any, published: Any) -> None:
    """Runs in its own process: a plain Celery client, as the helpdesk's. Records when it began and ended."""
    from celery import Celery

    client = Celery("helpdesk", broker=broker_url, set_as_current=False)
    client.conf.task_serializer = "json"
    started.value = time.time()
    for i in range(n):
        client.send_task(RECEIVE_TICKET, args=[ticket_data(f"{prefix}{i:08d}", i)], queue=TICKET_QUEUE)
    published.value = time.time()
    client.close()


class Worker:
    def __init__(self, index: int, concurrency: int, database_url: str, broker_url: str, log_dir: str) -> None:
        self.log_path = Path(log_dir) / f"worker-{index}.log"
        self.log = self.log_path.open("w")
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "DJANGO_SETTINGS_MODULE": "workflow_api.settings",
            "LOG_LEVEL": WORKER_LOG_LEVEL,
        }
        from workflow_api.testing.worker import worker_argv

        self.process = subprocess.Popen(
            worker_argv(concurrency=concurrency, hostname=f"bench-intake-{index}-{os.getpid()}@%h"),
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise SystemExit(f"worker exited ({self.process.returncode}):\n{self.log_path.read_text()[-3000:]}")
        return " ready." in self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.log.close()


def _counts() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT count(*) FROM tickets_ticket),
                   (SELECT count(*) FROM task_task),
                   (SELECT count(*) FROM task_taskitem),
                   (SELECT count(*) FROM task_taskitemhistory),
                   (SELECT count(*) FROM core_outboxmessage),
                   (SELECT count(*) FROM audit_auditevent),
                   (SELECT count(*) FROM core_inboundfailure)
            """
        )
        row = cursor.fetchone()
    assert row is not None
    keys = ("tickets", "tasks", "items", "history", "outbox", "audit", "failures")
    return dict(zip(keys, (int(v) for v in row), strict=True))


def _batch_sizes(logs: list[Path]) -> list[int]:
    """The size of every batch the workers ran, from their "inbound batch done" log lines."""
    sizes = []
    for path in logs:
        for line in path.read_text().splitlines():
            if '"inbound batch done"' in line:
                try:
                    sizes.append(int(json.loads(line)["messages"]))
                except (ValueError, KeyError):
                    continue  # not one of the JSON lines (a worker's start-up banner)
    return sizes


def bench_engine(
    n: int, *, workers: int, concurrency: int, database_url: str, broker_url: str
) -> tuple[float, dict[str, int], list[int], float]:
    """(seconds to the last commit, row counts, the workers' batch sizes, seconds the publisher took)."""
    from workflow_api.testing.worker import wait_until

    log_dir = tempfile.mkdtemp(prefix="bench_intake_")
    running = [Worker(i, concurrency, database_url, broker_url, log_dir) for i in range(workers)]
    try:
        try:
            wait_until(lambda: all(w.ready() for w in running), timeout=120, interval=0.2)
        except AssertionError as exc:
            raise SystemExit(f"workers not ready within 120 s, logs in {log_dir}") from exc
        ctx = multiprocessing.get_context("spawn")
        started, published = ctx.Value("d", 0.0), ctx.Value("d", 0.0)
        publisher = ctx.Process(target=_publish, args=(broker_url, "BI", n, started, published))
        publisher.start()
        last, last_change = -1, time.monotonic()
        while True:
            time.sleep(POLL_SECONDS)
            counts = _counts()
            if counts["tasks"] >= n and counts["items"] >= n and counts["outbox"] >= n:
                finished = time.time()
                break
            progress = counts["tasks"] + counts["failures"]
            if progress != last:
                last, last_change = progress, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                raise SystemExit(f"no progress for {STALL_SECONDS:.0f} s: {counts}; worker logs in {log_dir}")
            if publisher.exitcode not in (None, 0):
                raise SystemExit(f"publisher failed (exit {publisher.exitcode})")
        publisher.join(timeout=60)
        if publisher.exitcode != 0:
            raise SystemExit(f"publisher failed (exit {publisher.exitcode})")
    finally:
        for worker in running:
            worker.stop()
    batches = _batch_sizes([worker.log_path for worker in running])
    return finished - started.value, counts, batches, published.value - started.value


# --- Baseline: a plain psycopg loop -----------------------------------------------


def _engine_targets() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.tenant_id, t.workflow_id, t.workflow_version_id, t.current_step_key,
                   i.role_id, i.role_name, i.step_name, i.user_id, i.user_name, i.user_email
            FROM task_task t JOIN task_taskitem i ON i.task_id = t.id
            ORDER BY t.id LIMIT 1
            """
        )
        row = cursor.fetchone()
    assert row is not None, "the engine run left no task to copy the shape of"
    keys = (
        "tenant_id",
        "workflow_id",
        "version_id",
        "step_key",
        "role_id",
        "role_name",
        "step_name",
        "user_id",
        "user_name",
        "user_email",
    )
    return dict(zip(keys, row, strict=True))


def bench_baseline(n: int, database_url: str, per_ticket: dict[str, int]) -> float:
    """One commit per ticket, writing the rows the engine wrote per ticket."""
    import psycopg
    from psycopg.types.json import Jsonb

    t = _engine_targets()
    prev_hash = ""
    with psycopg.connect(database_url) as conn:
        # The engine also moves the round-robin pointer of each role it assigned from
        # (start step, ticket owners) and counts the message: those rows too.
        with conn.transaction():  # its own: a statement outside one would open a transaction for the whole loop
            pointers = [row[0] for row in conn.execute("SELECT id FROM role_roundrobinpointer ORDER BY id")]
        began = time.perf_counter()
        for i in range(n):
            number = f"BL{i:08d}"
            data = ticket_data(number, i)
            now = datetime.now(UTC)
            with conn.transaction():
                ticket_id = conn.execute(
                    """
                    INSERT INTO tickets_ticket (tenant_id, ticket_number, snapshot, subject, status, priority,
                        department, category, sub_category, allocation_state, allocation_reason,
                        source_updated_at, received_at, updated_at, last_delivered_at, delivery_count)
                    VALUES (%s, %s, %s, %s, 'Open', 'high', %s, %s, %s, 'allocated', NULL, %s, %s, %s, %s, 1)
                    RETURNING id
                    """,
                    [
                        t["tenant_id"],
                        number,
                        Jsonb(data),
                        data["subject"],
                        data["department"],
                        data["category"],
                        data["sub_category"],
                        data["update_date"],
                        now,
                        now,
                        now,
                    ],
                ).fetchone()[0]  # type: ignore[index]
                task_id = conn.execute(
                    """
                    INSERT INTO task_task (tenant_id, ticket_id, workflow_id, workflow_version_id, current_step_key,
                        status, priority, ticket_owner_id, ticket_owner_name, target_resolution, created_at,
                        updated_at)
                    VALUES (%s, %s, %s, %s, %s, 'pending', 'high', %s, %s, %s, %s, %s) RETURNING id
                    """,
                    [
                        t["tenant_id"],
                        ticket_id,
                        t["workflow_id"],
                        t["version_id"],
                        t["step_key"],
                        t["user_id"],
                        t["user_name"],
                        now + timedelta(days=2),
                        now,
                        now,
                    ],
                ).fetchone()[0]  # type: ignore[index]
                for _ in range(per_ticket["items"]):
                    item_id = conn.execute(
                        """
                        INSERT INTO task_taskitem (tenant_id, task_id, step_key, step_name, role_id, role_name,
                            user_id, user_name, user_email, status, origin, assigned_on, target_resolution,
                            acted_on, notes, assignment_reason)
                        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'new', 'system', %s, %s, NULL, '', %s)
                        RETURNING id
                        """,
                        [
                            t["tenant_id"],
                            task_id,
                            t["step_key"],
                            t["step_name"],
                            t["role_id"],
                            t["role_name"],
                            t["user_id"],
                            t["user_name"],
                            t["user_email"],
                            now,
                            now + timedelta(hours=8),
                            Jsonb({"strategy": "round_robin", "position": i, "of": 3}),
                        ],
                    ).fetchone()[0]  # type: ignore[index]
                    for _ in range(max(1, per_ticket["history"] // max(1, per_ticket["items"]))):
                        conn.execute(
                            """
                            INSERT INTO task_taskitemhistory (tenant_id, item_id, status, at, actor_id, actor_name,
                                notes)
                            VALUES (%s, %s, 'new', %s, NULL, 'system', '')
                            """,
                            [t["tenant_id"], item_id, now],
                        )
                for _ in range(per_ticket["outbox"]):
                    conn.execute(
                        """
                        INSERT INTO core_outboxmessage (tenant_id, message_id, task_name, queue, args, kwargs,
                            dedupe_key, created_at, next_attempt_at, sent_at, attempts, last_error)
                        VALUES (%s, %s, 'notifications.send_assignment_notification', 'inapp-notification-queue',
                            %s, '{}', NULL, %s, %s, NULL, 0, '')
                        """,
                        [
                            t["tenant_id"],
                            uuid.uuid4(),
                            Jsonb([t["user_id"], number, data["subject"], t["role_name"]]),
                            now,
                            now,
                        ],
                    )
                for k in range(per_ticket["audit"]):
                    changes = {"allocation_state": [None, "allocated"], "n": k}
                    digest = hashlib.sha256(
                        (prev_hash + json.dumps([number, k, changes], sort_keys=True)).encode()
                    ).hexdigest()
                    conn.execute(
                        """
                        INSERT INTO audit_auditevent (tenant_id, actor_id, actor_name, action, target_type,
                            target_id, target_display, changes, correlation_id, created_at, prev_hash, hash)
                        VALUES (%s, NULL, 'system', 'ticket.received', 'ticket', %s, %s, %s, '', %s, %s, %s)
                        """,
                        [t["tenant_id"], number, data["subject"], Jsonb(changes), now, prev_hash, digest],
                    )
                    prev_hash = digest
                for pointer_id in pointers:
                    conn.execute(
                        "UPDATE role_roundrobinpointer SET last_user_id = %s, updated_at = %s WHERE id = %s",
                        [t["user_id"], now, pointer_id],
                    )
                conn.execute(
                    """
                    INSERT INTO core_messagecounter (task_name, outcome, count, updated_at)
                    VALUES ('bench.baseline', 'allocated', 1, %s), ('bench.baseline', 'created', 1, %s)
                    ON CONFLICT (task_name, outcome) DO UPDATE SET count = core_messagecounter.count + 1
                    """,
                    [now, now],
                )
        per_ticket["pointers"] = len(pointers)
        return time.perf_counter() - began


# --- Where the time goes ----------------------------------------------------------


def _deliveries(prefix: str, start: int, size: int) -> list[Any]:
    from workflow_api.core.inbound import Delivery

    return [
        Delivery(id=str(uuid.uuid4()), args=(ticket_data(f"{prefix}{i:08d}", i),), kwargs={})
        for i in range(start, start + size)
    ]


def profile_intake(n: int, batch: int) -> tuple[str, float, dict[int, tuple[float, float]]]:
    """Profile `n` tickets through the worker's batch path (batches of `batch`), then time batches of 1 and `batch`.

    Returns the profile table, the profiled seconds, and {batch size: (ms per ticket, queries per ticket)}.
    """
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from tickets.tasks import receive_ticket_job

    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for start in range(0, n, batch):
        receive_ticket_job.run_batch(_deliveries("PR", start, min(batch, n - start)))
    profiler.disable()
    seconds = time.perf_counter() - began

    unprofiled: dict[int, tuple[float, float]] = {}
    for size in sorted({1, batch}):
        reset_queries()
        tickets = max(QUERY_COUNT_TICKETS, size)
        clock = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            for start in range(0, tickets, size):
                receive_ticket_job.run_batch(_deliveries(f"QC{size}-", start, size))
        elapsed = time.perf_counter() - clock
        unprofiled[size] = (elapsed * 1000 / tickets, len(captured.captured_queries) / tickets)

    stats = pstats.Stats(profiler)
    project = str(ROOT)
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if filename.startswith(project) and "/.venv/" not in filename and "/benchmarks/" not in filename:
            rows.append((cumtime, tottime, ncalls, f"{Path(filename).relative_to(ROOT)}:{line}({func})"))
    rows.sort(reverse=True)
    out = io.StringIO()
    out.write(f"    {'cumtime s':>9} {'ms/ticket':>9} {'tottime s':>9} {'calls':>7}  function\n")
    for cumtime, tottime, ncalls, where in rows[:15]:
        out.write(f"    {cumtime:9.3f} {cumtime * 1000 / n:9.2f} {tottime:9.3f} {ncalls:7d}  {where}\n")
    return out.getvalue(), seconds, unprofiled


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (each `--concurrency` children)")
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2")))
    parser.add_argument("--profile-tickets", type=int, default=PROFILE_TICKETS)
    args = parser.parse_args()
    if args.tickets <= 0:
        parser.error("--tickets must be positive")

    database_url = _bench_database_url()
    _setup_django(database_url)
    from django.conf import settings

    broker_url = settings.CELERY_BROKER_URL
    n = args.tickets
    _empty_tables()
    _seed()
    _purge(broker_url)
    try:
        engine_seconds, counts, batches, publish_seconds = bench_engine(
            n, workers=args.workers, concurrency=args.concurrency, database_url=database_url, broker_url=broker_url
        )
    finally:
        _purge(broker_url)
    ok = (
        counts["tickets"] == n
        and counts["tasks"] == n
        and counts["items"] >= n
        and counts["outbox"] >= n
        and counts["failures"] == 0
    )
    per_ticket = {key: max(1, round(counts[key] / n)) for key in ("items", "history", "outbox", "audit")}
    baseline_seconds = bench_baseline(n, database_url, per_ticket)
    batch = settings.INBOUND_BATCH_SIZE
    profile, profile_seconds, unprofiled = profile_intake(args.profile_tickets, batch)

    engine_rate = n / engine_seconds
    baseline_rate = n / baseline_seconds
    ratio = engine_rate / baseline_rate
    print(
        f"ticket intake, {n} tickets, {args.workers} worker(s) x concurrency {args.concurrency}, "
        f"PostgreSQL {settings.DATABASES['default']['NAME']}"
    )
    print(
        f"  verify: tickets={counts['tickets']} tasks={counts['tasks']} items={counts['items']} "
        f"history={counts['history']} outbox={counts['outbox']} audit={counts['audit']} "
        f"inbound_failures={counts['failures']} -> {'OK' if ok else 'FAILED'}"
    )
    print(f"  engine   (send_task -> worker -> committed):  {engine_rate:8.0f} tickets/s  ({engine_seconds:.2f} s)")
    print(
        f"  baseline (psycopg loop, 1 commit/ticket: 1 ticket, 1 task, {per_ticket['items']} item, "
        f"{per_ticket['history']} history, {per_ticket['outbox']} outbox, {per_ticket['audit']} audit, "
        f"{per_ticket['pointers']} round-robin pointer, 2 counter rows): "
        f"{baseline_rate:8.0f} tickets/s  ({baseline_seconds:.2f} s)"
    )
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"  ratio engine/baseline: {ratio:.2f}x  (target >= {TARGET_RATIO}x: {verdict})")
    print(
        f"  publisher (one process, send_task): {n} messages in {publish_seconds:.2f} s "
        f"({n / publish_seconds:.0f}/s); the engine cannot finish sooner"
    )
    if batches:
        print(
            f"  worker batches: {len(batches)}, messages per batch: mean {sum(batches) / len(batches):.1f}, "
            f"max {max(batches)} (INBOUND_BATCH_SIZE={batch})"
        )
    print(
        f"  in-process, the worker's batch path (run_batch, {args.profile_tickets} tickets in batches of {batch}, "
        f"profiled): {profile_seconds * 1000 / args.profile_tickets:.2f} ms/ticket"
    )
    for size, (ms, queries) in unprofiled.items():
        print(f"  in-process, batches of {size:>3}, unprofiled: {ms:6.2f} ms/ticket, {queries:5.1f} SQL queries/ticket")
    print("  top 15 project functions by cumulative time:")
    print(profile, end="")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
