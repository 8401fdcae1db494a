"""Outbox relay throughput against RabbitMQ, beside a plain publishing loop.

    make bench            (or: .venv/bin/python benchmarks/bench_outbox.py --messages 5000)

Engine: N messages are enqueued with `outbox_enqueue` (committed in batches,
as services do), then `outbox_relay` publishes them with publisher confirms
and marks each row sent. Baseline: a kombu producer publishing the same N
Celery messages with confirms in a loop, writing nothing to a database. The
ratio says what durability (a row per message, marked after the confirm)
costs. Uses its own database (`<DATABASE_URL name>_bench`) and vhost-local
queue `bench.outbox`, purged before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_QUEUE = "bench.outbox"


def _setup_django() -> None:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/workflow_api")
    os.environ["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + base.rsplit("/", 1)[1].split("?")[0] + "_bench"
    os.environ.setdefault("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_api.settings")
    if os.environ["DATABASE_URL"].startswith("postgres"):
        import psycopg

        admin_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _purge(broker_url: str) -> None:
    from kombu import Connection

    with Connection(broker_url) as conn:
        conn.SimpleQueue(BENCH_QUEUE).clear()


def bench_engine(n: int, batch: int) -> float:
    from django.db import transaction

    from workflow_api.core.models import OutboxMessage
    from workflow_api.core.outbox import outbox_enqueue, outbox_relay

    OutboxMessage.objects.all().delete()
    for start in range(0, n, batch):
        with transaction.atomic():
            for i in range(start, min(start + batch, n)):
                outbox_enqueue(
                    task_name="notifications.send_assignment_notification",
                    args=[i, f"TX{i:012d}", "Laptop screen flickers", "Asset Manager"],
                    queue=BENCH_QUEUE,
                )
    began = time.perf_counter()
    while OutboxMessage.objects.filter(sent_at__isnull=True).exists():
        result = outbox_relay(batch_size=1000)
        if result.failed:
            raise SystemExit("relay failed: is RabbitMQ up?")
    return time.perf_counter() - began


def bench_baseline(n: int, broker_url: str) -> float:
    from kombu import Connection, Exchange, Queue

    queue = Queue(BENCH_QUEUE, Exchange(BENCH_QUEUE, type="direct"), routing_key=BENCH_QUEUE)
    with Connection(broker_url, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        began = time.perf_counter()
        for i in range(n):
            task_id = str(uuid.uuid4())
            producer.publish(
                [[i, f"TX{i:012d}", "Laptop screen flickers", "Asset Manager"], {}, {}],
                exchange=queue.exchange,
                routing_key=BENCH_QUEUE,
                declare=[queue],
                serializer="json",
                headers={"lang": "py", "task": "notifications.send_assignment_notification", "id": task_id},
                delivery_mode=2,
            )
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=50, help="messages per enqueueing transaction")
    args = parser.parse_args()
    if args.messages <= 0:
        parser.error("--messages must be positive")

    _setup_django()
    from django.conf import settings

    broker_url = settings.CELERY_BROKER_URL
    _purge(broker_url)
    engine_seconds = bench_engine(args.messages, args.batch)
    _purge(broker_url)
    baseline_seconds = bench_baseline(args.messages, broker_url)
    _purge(broker_url)

    engine_rate = args.messages / engine_seconds
    baseline_rate = args.messages / baseline_seconds
    print(f"outbox relay, {args.messages} messages, confirms on, {settings.DATABASES['default']['ENGINE']}")
    print(f"  engine   (outbox_relay: publish + mark sent): {engine_rate:9.0f} msg/s  ({engine_seconds:.2f} s)")
    print(f"  baseline (kombu publish loop, no database):  {baseline_rate:9.0f} msg/s  ({baseline_seconds:.2f} s)")
    print(f"  ratio engine/baseline: {engine_rate / baseline_rate:.2f}x")


if __name__ == "__main__":
    main()
