"""Inbound messages: the base for consumer jobs, failure records, dead-lettering.

A message that can never be processed is not silently acknowledged: it is
recorded in InboundFailure (body and error, visible in the admin and the API),
re-published to `<queue>.dlq` through the `workflow_api.dlx` exchange, and only
then acknowledged, so the worker keeps going and nothing is lost. Transient
database errors are retried with backoff instead. This covers bad payloads
(InvalidMessage raised by a service), bugs (any other exception), and, via
DeadLetteringConsumer, bodies Celery cannot decode or route at all.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import Task
from celery.exceptions import Retry, SoftTimeLimitExceeded
from celery.worker.consumer import Consumer
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from workflow_api.core.logging import bind_correlation_id, unbind_correlation_id
from workflow_api.core.messaging import (
    DEAD_LETTER_EXCHANGE,
    INBOUND_QUEUES,
    INBOUND_ROUTES,
    dead_letter_queue,
)
from workflow_api.core.models import InboundFailure, MessageCounter, Tenant

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError)
# The third part of a Celery (protocol 2) message body: no callbacks, chain or chord.
_NO_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


class InvalidMessage(Exception):
    """The message can never be processed as it is (shape, types, values)."""

    def __init__(self, message: str, *, code: str = "invalid_message", tenant: Tenant | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.tenant = tenant


def message_count(*, task_name: str, outcome: str | Sequence[str]) -> None:
    """Count how an inbound message ended (applied, ignored_other_system, …); several outcomes in one statement.

    One upsert (INSERT ... ON CONFLICT DO UPDATE, rows in outcome order so two
    callers lock them in the same order). Call it inside the transaction of
    the work it counts, as its last statement: the count commits with the
    work (a redelivery after a crash is not counted twice), and the counter
    rows, which every worker updates, stay locked only until that commit.
    """
    outcomes = sorted(Counter([outcome] if isinstance(outcome, str) else outcome).items())
    table = connection.ops.quote_name(MessageCounter._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(outcomes))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (task_name, outcome, count, updated_at) VALUES {rows} "
            f"ON CONFLICT (task_name, outcome) DO UPDATE SET count = {table}.count + excluded.count, "
            "updated_at = excluded.updated_at",
            [value for name, times in outcomes for value in (task_name, name, times, now)],
        )


def inbound_failure_record(
    *,
    task_name: str,
    queue: str,
    message_id: str,
    body: Any,
    error_code: str,
    error: str,
    tenant: Tenant | None = None,
) -> InboundFailure:
    if not isinstance(body, dict):
        body = {"raw": body}
    return InboundFailure.objects.create(
        tenant=tenant,
        task_name=task_name,
        queue=queue,
        message_id=message_id,
        body=_json_safe(body),
        error_code=error_code,
        error=error[:10000].replace("\x00", "\ufffd"),
    )


def _json_safe(value: Any) -> Any:
    """`value` as PostgreSQL's jsonb stores it: what JSON cannot hold as its repr, NaN and infinities as text,
    NUL characters (which jsonb refuses) as U+FFFD. A bad message is recorded whatever it holds."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {_json_safe(str(key)): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return _json_safe(repr(value))


def declare_dead_letter_queues() -> None:
    """Declare the dead-letter exchange and one `<queue>.dlq` per inbound queue."""
    if settings.CELERY_IN_PROCESS:
        return
    from workflow_api.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in INBOUND_QUEUES:
            dead_letter_queue(queue)(channel).declare()


def _publish_dead_letter(
    *, body: Any, queue: str, headers: dict[str, Any], content_type: str, content_encoding: str, failure_id: int
) -> None:
    from workflow_api.celery import app

    if not isinstance(body, bytes | str):
        # kombu serialises only when no content_type is given; this one is.
        body = json.dumps(body)
    with app.producer_or_acquire() as producer:
        producer.publish(
            body,
            exchange=DEAD_LETTER_EXCHANGE,
            routing_key=queue,
            declare=[dead_letter_queue(queue)],
            headers={**headers, "x-inbound-failure-id": failure_id},
            content_type=content_type,
            content_encoding=content_encoding,
            delivery_mode=2,
            retry=True,
            retry_policy={"max_retries": 3},
        )


@dataclass(frozen=True)
class Delivery:
    """One inbound message as a job sees it: its id, arguments, retries so far, and the queue it came from."""

    id: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    retries: int = 0
    queue: str = ""
    is_eager: bool = False

    @classmethod
    def of_request(cls, request: Any, task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Delivery:
        """The delivery a job runs for, from its Celery request."""
        delivery_info = request.delivery_info or {}
        return cls(
            id=request.id or "",
            args=tuple(args),
            kwargs=dict(kwargs),
            retries=request.retries or 0,
            queue=delivery_info.get("routing_key") or INBOUND_ROUTES.get(task_name, ""),
            is_eager=bool(request.is_eager),
        )

    def argument(self, name: str) -> Any:
        """The job's one argument `name`, given by position or by name; InvalidMessage if the call has another shape."""
        if len(self.args) == 1 and not self.kwargs:
            return self.args[0]
        if not self.args and list(self.kwargs) == [name]:
            return self.kwargs[name]
        raise InvalidMessage(
            f"expected one argument {name!r}, got args={list(self.args)!r} kwargs={sorted(self.kwargs)!r}",
            code="invalid_arguments",
        )


class InboundJob(Task):
    """Base for consumers of the contract's inbound queues.

    Acknowledged after the work commits; re-queued if the worker dies; a
    transient database error is retried with backoff; any other failure is
    recorded, dead-lettered and acknowledged (see the module docstring). So
    is a job stopped by its soft time limit (code `time_limit_exceeded`):
    Celery would acknowledge it as failed and the message would be lost.
    """

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = True
    retry_backoff_max = 300
    max_retries = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        token = bind_correlation_id(self.request.id or "-")
        try:
            return super().__call__(*args, **kwargs)
        except (Retry, *TRANSIENT_ERRORS):
            raise
        except Exception as exc:  # noqa: BLE001 - failed() records and dead-letters it
            self.failed(Delivery.of_request(self.request, self.name, args, kwargs), exc)
            return None
        finally:
            unbind_correlation_id(token)

    def failed(self, delivery: Delivery, exc: Exception) -> None:
        """Record and dead-letter a message that failed for good (any error but a transient one)."""
        if isinstance(exc, InvalidMessage):
            self._dead_letter(delivery, code=exc.code, error=str(exc), tenant=exc.tenant)
        elif isinstance(exc, SoftTimeLimitExceeded):
            # The sender's limit if it set one, else the job's, else the worker's default.
            sent_limit = (getattr(self.request, "timelimit", None) or (None, None))[1]
            limit = sent_limit or self.soft_time_limit or self.app.conf.task_soft_time_limit
            logger.error("inbound job stopped by its soft time limit", extra={"task_name": self.name, "limit_s": limit})
            if not connection.in_atomic_block:
                # The limit interrupts the job wherever it is, possibly in the
                # middle of a query outside any transaction, which leaves the
                # connection unusable; the failure row needs a sound one.
                connection.close()
            self._dead_letter(delivery, code="time_limit_exceeded", error=f"stopped by the soft time limit ({limit} s)")
        else:
            logger.error("inbound job failed", extra={"task_name": self.name}, exc_info=exc)
            self._dead_letter(delivery, code="processing_error", error=f"{type(exc).__name__}: {exc}")

    def _dead_letter(self, delivery: Delivery, *, code: str, error: str, tenant: Tenant | None = None) -> None:
        failure = inbound_failure_record(
            task_name=self.name,
            queue=delivery.queue,
            message_id=delivery.id,
            body={"args": list(delivery.args), "kwargs": delivery.kwargs},
            error_code=code,
            error=error,
            tenant=tenant,
        )
        logger.warning(
            "inbound message rejected",
            extra={"task_name": self.name, "error_code": code, "error": error, "failure_id": failure.id},
        )
        if delivery.is_eager or not delivery.queue:
            return
        # A replayable Celery message: same name, arguments and id.
        body = [
            list(delivery.args),
            delivery.kwargs,
            {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
        ]
        headers = {"task": self.name, "id": delivery.id, "lang": "py", "x-error": error[:1000]}
        _publish_dead_letter(
            body=body,
            queue=delivery.queue,
            headers=headers,
            content_type="application/json",
            content_encoding="utf-8",
            failure_id=failure.id,
        )
        InboundFailure.objects.filter(id=failure.id).update(dead_lettered=True)


class DeadLetteringConsumer(Consumer):
    """Celery's consumer, but a message it cannot decode or route is kept.

    Celery acks (decode errors) or rejects (unknown task) such messages, which
    would lose them; here they are recorded and dead-lettered first.
    """

    # Added to the prefetch by batched jobs (workflow_api.core.batches): one batch per pool process.
    batch_prefetch = 0

    @property
    def max_prefetch_count(self) -> int:
        return int(super().max_prefetch_count) + self.batch_prefetch

    def _keep(self, message: Any, *, code: str, error: str) -> None:
        close_old_connections()
        delivery = getattr(message, "delivery_info", {}) or {}
        queue = delivery.get("routing_key", "")
        raw = message.body
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        headers = dict(getattr(message, "headers", {}) or {})
        failure = inbound_failure_record(
            task_name=str(headers.get("task", "")),
            queue=queue,
            message_id=str(headers.get("id", "")),
            body={"raw": text[:100000], "headers": _json_safe(headers)},
            error_code=code,
            error=error,
        )
        if queue:
            _publish_dead_letter(
                body=raw,
                queue=queue,
                headers={**headers, "x-error": error[:1000]},
                content_type=message.content_type or "application/octet-stream",
                content_encoding=message.content_encoding or "binary",
                failure_id=failure.id,
            )
            InboundFailure.objects.filter(id=failure.id).update(dead_lettered=True)
        close_old_connections()

    def keep_or_requeue(self, message: Any, *, code: str, error: str) -> None:
        try:
            self._keep(message, code=code, error=error)
        except Exception:
            logger.exception("could not dead-letter an unprocessable message; re-queueing it")
            message.requeue()
            return
        message.ack()

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self.keep_or_requeue(message, code="undecodable_message", error=f"{type(exc).__name__}: {exc}")

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self.keep_or_requeue(message, code="unknown_message_format", error="not a Celery task message")

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        self.keep_or_requeue(message, code="unknown_task", error=f"unknown task: {exc}")

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self.keep_or_requeue(message, code="invalid_task_message", error=f"{type(exc).__name__}: {exc}")
