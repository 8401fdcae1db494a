"""The transactional outbox: every outbound message leaves through here.

`outbox_enqueue` writes a row in the caller's transaction, so a message exists
if and only if the change that caused it committed. `outbox_relay` publishes
pending rows in id order with publisher confirms, marks each sent, and stops
at the first failure (the broker is down), leaving that row to be retried with
exponential backoff; later rows wait behind it so order is kept. Each row's
`message_id` is the Celery task id of what is published, so a consumer that
sees a re-send (the relay died between publishing and marking) can drop it.

With no broker configured (`make run`) the relay runs right after each commit
and delivers in-process: a task this app knows is run, anything else (the
notification and helpdesk services' tasks) is written to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from workflow_api.core.models import OutboxMessage, Tenant

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300
_ADVISORY_LOCK_KEY = 0x0B0C5


@dataclass(frozen=True)
class RelayResult:
    sent: int
    failed: bool
    locked_out: bool = False


def outbox_enqueue(
    *,
    task_name: str,
    args: list[Any] | tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    queue: str | None = None,
    tenant: Tenant | None = None,
    dedupe_key: str | None = None,
) -> None:
    """Queue a message to be published after the current transaction commits.

    Call it inside the service's transaction. A second call with the same
    `dedupe_key` adds nothing (one cause, one message). The queue defaults to
    the contract's route for `task_name`.
    """
    if queue is None:
        from workflow_api.core.messaging import outbound_routes

        queue = outbound_routes()[task_name]["queue"]
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                task_name=task_name,
                queue=queue,
                args=list(args),
                kwargs=kwargs or {},
                tenant=tenant,
                dedupe_key=dedupe_key,
            )
        ],
        ignore_conflicts=dedupe_key is not None,
    )
    if settings.CELERY_IN_PROCESS:
        transaction.on_commit(lambda: outbox_relay(), robust=True)


Publisher = Callable[[OutboxMessage], None]


def publish_to_broker(message: OutboxMessage) -> None:
    """Publish with confirms; raises if the broker is unreachable or nacks."""
    from workflow_api.celery import app

    app.send_task(
        message.task_name,
        args=message.args,
        kwargs=message.kwargs,
        queue=message.queue,
        task_id=str(message.message_id),
        retry=False,
    )


def deliver_in_process(message: OutboxMessage) -> None:
    from workflow_api.celery import app

    task = app.tasks.get(message.task_name)
    if task is not None:
        task.apply(args=message.args, kwargs=message.kwargs, task_id=str(message.message_id))
        return
    logger.info(
        "outbox message delivered in-process (no broker configured)",
        extra={
            "outbox_message_id": str(message.message_id),
            "task_name": message.task_name,
            "queue": message.queue,
            "args": message.args,
            "kwargs": message.kwargs,
        },
    )


def default_publisher() -> Publisher:
    return deliver_in_process if settings.CELERY_IN_PROCESS else publish_to_broker


@contextmanager
def _single_relay() -> Iterator[bool]:
    """Only one relay publishes at a time, so rows leave in id order."""
    if connection.vendor != "postgresql":
        yield True  # SQLite: one writer anyway
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_ADVISORY_LOCK_KEY])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_ADVISORY_LOCK_KEY])


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


def outbox_relay(*, batch_size: int | None = None, publisher: Publisher | None = None) -> RelayResult:
    """Publish pending messages in id order; safe to run concurrently and repeatedly.

    No transaction is held while publishing. Returns how many were sent and
    whether a publish failed (the rest then waits for the next run).
    """
    publish = publisher or default_publisher()
    limit = batch_size or settings.OUTBOX_RELAY_BATCH
    with _single_relay() as acquired:
        if not acquired:
            return RelayResult(sent=0, failed=False, locked_out=True)
        pending = list(OutboxMessage.objects.filter(sent_at__isnull=True).order_by("id")[:limit])
        sent = 0
        now = timezone.now()
        for message in pending:
            if message.next_attempt_at > now:
                # The oldest pending row is backing off; later rows wait behind it.
                break
            try:
                publish(message)
            except Exception as exc:  # noqa: BLE001 - any publish failure is retried later
                attempts = message.attempts + 1
                OutboxMessage.objects.filter(id=message.id).update(
                    attempts=attempts,
                    last_error=f"{type(exc).__name__}: {exc}"[:2000],
                    next_attempt_at=timezone.now() + _backoff(attempts),
                )
                logger.warning(
                    "outbox publish failed; will retry",
                    extra={"outbox_message_id": str(message.message_id), "attempts": attempts, "error": str(exc)},
                )
                return RelayResult(sent=sent, failed=True)
            OutboxMessage.objects.filter(id=message.id, sent_at__isnull=True).update(
                sent_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
            )
            sent += 1
        return RelayResult(sent=sent, failed=False)
