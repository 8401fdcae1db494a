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
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from kombu import Connection

from workflow_api.core.models import OutboxMessage, Tenant

if TYPE_CHECKING:
    from audit.services import Actor

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300
# How long a publish may wait for the broker's confirm (a broker under a
# memory or disk alarm blocks publishers instead of refusing them).
PUBLISH_TIMEOUT_SECONDS = 10
_ADVISORY_LOCK_KEY = 0x0B0C5

# Without PostgreSQL's advisory lock (SQLite in `make run`), one relay per process.
_process_lock = threading.Lock()
# A relay delivering in-process runs jobs whose own commits start a relay in
# the same thread; that nested relay must not deliver the row being delivered.
_running = threading.local()


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
    the contract's route for `task_name` (KeyError for a task with no route).
    """
    outbox_enqueue_many(
        task_name=task_name,
        queue=queue,
        messages=[OutboundMessage(args=args, kwargs=kwargs, tenant=tenant, dedupe_key=dedupe_key)],
    )


@dataclass(frozen=True)
class OutboundMessage:
    """One message for `outbox_enqueue_many`: its arguments, tenant and dedupe key (see `outbox_enqueue`)."""

    args: list[Any] | tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None
    tenant: Tenant | None = None
    dedupe_key: str | None = None


def outbox_enqueue_many(*, task_name: str, messages: Sequence[OutboundMessage], queue: str | None = None) -> None:
    """`outbox_enqueue` for several messages of one task, in one INSERT (in this order)."""
    if not messages:
        return
    if queue is None:
        from workflow_api.core.messaging import outbound_routes

        queue = outbound_routes()[task_name]["queue"]
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                task_name=task_name,
                queue=queue,
                args=list(message.args),
                kwargs=message.kwargs or {},
                tenant=message.tenant,
                dedupe_key=message.dedupe_key,
            )
            for message in messages
        ],
        ignore_conflicts=any(message.dedupe_key is not None for message in messages),
    )
    _relay_after_commit_in_process()


def outbox_retry_now(*, message_ids: Iterable[int], actor: Actor) -> int:
    """Make these pending messages due now (an operator's "retry now"); returns how many.

    Sent messages are left alone. Order still holds: a message waits behind
    any older pending one that is itself still backing off. Each retried
    message is audited with the operator as actor.
    """
    from audit.models import AuditAction
    from audit.services import audit_append
    from workflow_api.core.tenancy import default_tenant

    with transaction.atomic():
        pending = list(
            OutboxMessage.objects.select_for_update(of=("self",))
            .filter(id__in=list(message_ids), sent_at__isnull=True)
            .select_related("tenant")
        )
        now = timezone.now()
        OutboxMessage.objects.filter(id__in=[message.id for message in pending]).update(next_attempt_at=now)
        for message in pending:
            audit_append(
                tenant=message.tenant or default_tenant(),
                actor=actor,
                action=AuditAction.OUTBOX_RETRIED,
                target_type="outbox_message",
                target_id=message.id,
                target_display=f"{message.task_name} ({message.message_id})",
                changes={"next_attempt_at": [message.next_attempt_at.isoformat(), now.isoformat()]},
            )
        if pending:
            _relay_after_commit_in_process()
    return len(pending)


def _relay_after_commit_in_process() -> None:
    if settings.CELERY_IN_PROCESS:
        transaction.on_commit(lambda: outbox_relay(), robust=True)


Publisher = Callable[[OutboxMessage], None]


def publish_to_broker(message: OutboxMessage, *, connection: Any = None) -> None:
    """Publish one row as a Celery protocol-2 task message and wait for the broker's confirm.

    Uses the Celery app's producer pool, or `connection` (a kombu Connection)
    when given. The task id is the row's `message_id`; the queue is declared
    the way a default Celery consumer declares it. Raises if the broker is
    unreachable, refuses the message, or does not confirm in time.
    """
    from workflow_api.celery import app

    app.send_task(
        message.task_name,
        args=message.args,
        kwargs=message.kwargs,
        queue=message.queue,
        task_id=str(message.message_id),
        connection=connection,
        retry=False,
        add_to_parent=False,
        ignore_result=True,
        timeout=PUBLISH_TIMEOUT_SECONDS,
        confirm_timeout=PUBLISH_TIMEOUT_SECONDS,
    )


class BrokerPublisher:
    """A publisher for the broker at `url`, over one connection opened on first use.

    For relaying to a broker other than the Celery app's (and for tests).
    Connecting is tried once, with `connect_timeout`; the relay's backoff does
    the retrying. Close it, or use it as a context manager.
    """

    def __init__(self, url: str, *, connect_timeout: float = 4.0) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self._connection: Connection | None = None

    def __call__(self, message: OutboxMessage) -> None:
        if self._connection is None:
            self._connection = Connection(
                self.url,
                connect_timeout=self.connect_timeout,
                transport_options={"confirm_publish": True, "max_retries": 0},
            )
        try:
            publish_to_broker(message, connection=self._connection)
        except Exception:
            self.close()  # a connection that failed once is not trusted again
            raise

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            finally:
                self._connection = None

    def __enter__(self) -> BrokerPublisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


_task_modules_imported = False


def _local_task(name: str) -> Any:
    """The task registered under `name` in this app, or None.

    A web process never starts a worker, so Celery's autodiscovery of the
    apps' `tasks` modules has not run there; it is done here, once.
    """
    from workflow_api.celery import app

    global _task_modules_imported
    task = app.tasks.get(name)
    if task is None and not _task_modules_imported:
        app.loader.autodiscover_tasks([config.name for config in apps.get_app_configs()], related_name="tasks")
        _task_modules_imported = True
        task = app.tasks.get(name)
    return task


def deliver_in_process(message: OutboxMessage) -> None:
    """No broker: run the task if this app has it, else write the message to the log."""
    task = _local_task(message.task_name)
    if task is not None:
        task.apply(args=message.args, kwargs=message.kwargs, task_id=str(message.message_id))
        return
    logger.info(
        "outbox message delivered in-process (no broker configured)",
        extra={
            "outbox_message_id": str(message.message_id),
            "task_name": message.task_name,
            "queue": message.queue,
            # Not "args": LogRecord has an attribute of that name and refuses it in `extra`.
            "task_args": message.args,
            "task_kwargs": message.kwargs,
        },
    )


def default_publisher() -> Publisher:
    return deliver_in_process if settings.CELERY_IN_PROCESS else publish_to_broker


@contextmanager
def _single_relay() -> Iterator[bool]:
    """Only one relay publishes at a time, so rows leave in id order."""
    if connection.vendor != "postgresql":
        acquired = _process_lock.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                _process_lock.release()
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

    One relay at a time (a lock; the others return `locked_out`). No
    transaction is held while publishing. A failed publish is recorded on its
    row (attempts, last_error, next_attempt_at with exponential backoff) and
    ends the run; until that row is due, later rows wait behind it. Returns
    how many were sent and whether a publish failed.
    """
    if getattr(_running, "active", False):
        # Called from a job this relay is delivering in-process: the running
        # relay takes the new rows once the current one is marked sent.
        _running.more = True
        return RelayResult(sent=0, failed=False, locked_out=True)
    publish = publisher or default_publisher()
    limit = batch_size or settings.OUTBOX_RELAY_BATCH
    _running.active = True
    try:
        with _single_relay() as acquired:
            if not acquired:
                return RelayResult(sent=0, failed=False, locked_out=True)
            sent = 0
            while True:
                _running.more = False
                batch_sent, failed = _relay_batch(publish, limit)
                sent += batch_sent
                if failed or not _running.more:
                    return RelayResult(sent=sent, failed=failed)
    finally:
        _running.active = False
        _running.more = False


# Rows are marked sent in groups: one UPDATE per group instead of one per row.
# If the relay dies between publishing and marking, at most a group is sent
# again, each with its original message id, which consumers use to drop it.
MARK_SENT_EVERY = 100


def _mark_sent(ids: list[int]) -> None:
    if ids:
        OutboxMessage.objects.filter(id__in=ids, sent_at__isnull=True).update(
            sent_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
        )
        ids.clear()


def _relay_batch(publish: Publisher, limit: int) -> tuple[int, bool]:
    pending = list(OutboxMessage.objects.filter(sent_at__isnull=True).order_by("id")[:limit])
    sent = 0
    unmarked: list[int] = []
    now = timezone.now()
    try:
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
                return sent, True
            unmarked.append(message.id)
            sent += 1
            if len(unmarked) >= MARK_SENT_EVERY:
                _mark_sent(unmarked)
    finally:
        _mark_sent(unmarked)
    return sent, False
