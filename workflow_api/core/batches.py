"""Inbound jobs that take their queue's messages in batches, one transaction for many messages.

Ticket intake (`tickets.tasks.receive_ticket`) spends most of a message's
time on what every message repeats: the round trips of a transaction, the
workflow and role reads, the audit chain's head, the counters. A
`BatchedInboundJob` hands its service a list of messages instead
(`tickets.services.tickets_intake`), and the service does that work once
per batch. The messages, their names and arguments do not change: the
helpdesk still sends one `receive_ticket` per ticket.

In the worker's main process (`BatchingStrategy`, Celery's per-task hook
for what happens to a received message):

- A message is read (arguments, id, retries, ETA) and buffered. Whenever a
  pool process is free, the buffer goes to it as one batch of up to
  INBOUND_BATCH_SIZE messages; a full buffer goes at once (it waits in the
  pool's queue). So with light traffic every message is a batch of one and
  waits for nothing, and under load messages gather while the processes
  are busy and the batches grow by themselves.
- When the pool reports a batch done, each message gets what the batch
  said of it: acknowledged (its work committed, or it was recorded and
  dead-lettered, or re-published for a retry), re-queued (even recording
  it failed: the database or broker is down), or run again in a batch of
  its own (the batch ran out of time).
- A batch the pool could not finish (its process died, the hard time
  limit stopped it, anything escaped `run_batch`) is run again one message
  per batch, so whichever message did it pays alone. A batch of one is
  then re-queued if its process died and it was a first delivery (as
  `reject_on_worker_lost` does); otherwise (a second lost process, a time
  limit, a bug) it is recorded and dead-lettered from the main process
  (`worker_lost`, `time_limit_exceeded`, `processing_error`;
  DeadLetteringConsumer), so a message that kills every process it meets
  does not loop forever. A killed worker leaves every message it had not
  acknowledged to the broker, which delivers it again.
- A message whose headers cannot be read (retries, ETA) is an invalid task
  message: DeadLetteringConsumer records and dead-letters it.
- A message with an ETA (a retry's countdown) is held until then.
- The worker prefetches one batch per pool process more than its
  one-message-per-process default (`DeadLetteringConsumer.batch_prefetch`),
  or the batches could not fill.
- When the consumer reconnects, Celery builds a new strategy; the old one
  is closed (buffer dropped, held messages' timers cancelled, results of
  its running batches ignored): its channel is gone, and RabbitMQ has given
  all its unacknowledged messages back to the queue.
- Dropped from Celery's own per-message handling, as nothing upstream uses
  them: revoking, `expires`, per-message time limits, the task events and
  the worker's active-request list (`inspect active` does not show
  batches); each batch logs one line instead.

In the pool process (`BatchedInboundJob.run_batch`): the whole batch goes
to the job's `batch_run`, which returns an outcome or an InvalidMessage per
message; invalid ones are recorded and dead-lettered one by one. If the
batch raises (a bug a message triggers, a transient database error), its
transaction has rolled back and its messages are run again one at a time,
each as `InboundJob` runs one: so one poison message costs its batch one
retry, never the other messages. A transient error on a single message
re-publishes it with backoff (Celery's own retry message: same id, one more
retry, a countdown); anything else is recorded and dead-lettered. The soft
time limit on a batch sends its messages (those not yet run) back to the
main process to run one per batch, each with a time limit of its own; only
a message that overruns alone is recorded as `time_limit_exceeded`.

`job.apply(...)` and in-process runs (no broker) take the single-message
path, through `run`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery.exceptions import InvalidTaskError, SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval, maybe_iso8601
from celery.worker.strategy import hybrid_to_proto2, proto1_to_proto2
from django.conf import settings
from django.db import close_old_connections, connection

from workflow_api.core.inbound import TRANSIENT_ERRORS, Delivery, InboundJob, InvalidMessage
from workflow_api.core.logging import bind_correlation_id, unbind_correlation_id

logger = logging.getLogger(__name__)

# What the main process does with a message once its batch ran (BatchedInboundJob.run_batch):
ACK = "ack"  # its work committed, or it was recorded and dead-lettered, or re-published to retry
REQUEUE = "requeue"  # not even recording it worked (database or broker down): the broker sends it again
ALONE = "alone"  # the batch ran out of time: run it again in a batch of its own
# A retry count beyond any real one (Celery's backoff reaches its cap after 9).
MAX_RETRIES_HEADER = 1_000_000


def _close_if_interrupted() -> None:
    """After a soft time limit: a query it interrupted outside a transaction leaves the connection unusable."""
    if not connection.in_atomic_block:
        connection.close()


class BatchedInboundJob(InboundJob):
    """An InboundJob whose worker runs its messages in batches (see the module docstring).

    Subclasses (or `shared_task(..., batch_run=f)`) define
    `batch_run(job, deliveries) -> outcomes`, one per delivery, in order: a
    value, or the InvalidMessage that delivery is. It must do all its
    writes in one transaction, so that raising leaves nothing behind.
    """

    abstract = True
    batch_run: Callable[[list[Delivery]], list[Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A job without its batch function would fail on its first message; fail where it is defined instead.
        if not cls.__dict__.get("abstract") and not callable(getattr(cls, "batch_run", None)):
            raise TypeError(f"{cls.__name__} is a BatchedInboundJob without batch_run(deliveries)")

    def start_strategy(self, app: Any, consumer: Any, **kwargs: Any) -> BatchingStrategy:
        # Called again when the consumer reconnects: the old instance's messages came
        # on the old channel, which the broker has given back to the queue.
        previous: BatchingStrategy | None = getattr(self, "_strategy", None)
        if previous is not None:
            previous.close()
        self._strategy = BatchingStrategy(self, consumer)
        return self._strategy

    def run_batch(self, deliveries: list[Delivery]) -> list[str]:
        """Run a batch in a pool process: what to do with each message (ACK, REQUEUE, ALONE), in order.

        Never raises, but for the process being lost or its hard time limit.
        """
        close_old_connections()
        began = time.perf_counter()
        statuses: list[str] | None = None
        try:
            if len(deliveries) > 1:
                statuses = self._run_together(deliveries)
            if statuses is None:
                statuses = self._run_each(deliveries)
            return statuses
        finally:
            close_old_connections()
            # What Celery's "received"/"succeeded" lines say of one message, for the batch.
            logger.info(
                "inbound batch done",
                extra={
                    "task_name": self.name,
                    "messages": len(deliveries),
                    "statuses": dict(Counter(statuses or [])),
                    "duration_ms": round((time.perf_counter() - began) * 1000, 1),
                    "message_ids": [delivery.id for delivery in deliveries],
                },
            )

    def _run_together(self, deliveries: list[Delivery]) -> list[str] | None:
        """The batch in one go; None (nothing written) if it raised and must be run one message at a time."""
        try:
            outcomes = self.batch_run(deliveries)
        except SoftTimeLimitExceeded:
            # Each message again in a batch of its own, with a time limit of its own.
            _close_if_interrupted()
            return [ALONE] * len(deliveries)
        except Exception:  # every message is run again alone, and fails alone
            logger.warning(
                "inbound batch failed; running its messages one at a time",
                extra={"task_name": self.name, "batch_size": len(deliveries)},
                exc_info=True,
            )
            return None
        return [
            self._record(delivery, outcome) if isinstance(outcome, InvalidMessage) else ACK
            for delivery, outcome in zip(deliveries, outcomes, strict=True)
        ]

    def _run_each(self, deliveries: list[Delivery]) -> list[str]:
        statuses: list[str] = []
        for delivery in deliveries:
            if statuses and statuses[-1] == ALONE:
                statuses.append(ALONE)  # the soft time limit passed: the rest get time of their own
            else:
                statuses.append(self._run_alone(delivery, alone=len(deliveries) == 1))
        return statuses

    def _run_alone(self, delivery: Delivery, *, alone: bool) -> str:
        """One message, as InboundJob runs one. The soft time limit is this message's fault only when `alone`."""
        token = bind_correlation_id(delivery.id or "-")
        try:
            (outcome,) = self.batch_run([delivery])
            if isinstance(outcome, InvalidMessage):
                raise outcome
            return ACK
        except TRANSIENT_ERRORS as exc:
            return self._retry_later(delivery, exc)
        except SoftTimeLimitExceeded as exc:
            if alone:
                return self._record(delivery, exc)  # InboundJob.failed closes the connection if need be
            _close_if_interrupted()
            return ALONE
        except Exception as exc:  # noqa: BLE001 - _record() records and dead-letters it
            return self._record(delivery, exc)
        finally:
            unbind_correlation_id(token)

    def _record(self, delivery: Delivery, exc: Exception) -> str:
        """Record and dead-letter a failed message (ACK), or, if even that fails, give it back (REQUEUE)."""
        return self._ack_unless_it_fails(
            lambda: self.failed(delivery, exc), delivery, "could not dead-letter an inbound message; re-queueing it"
        )

    def _ack_unless_it_fails(self, step: Callable[[], object], delivery: Delivery, failure: str) -> str:
        """ACK once `step` (recording, re-publishing) is done; REQUEUE, logged as `failure`, if it raised."""
        try:
            step()
        except Exception:
            logger.exception(failure, extra={"task_name": self.name, "message_id": delivery.id})
            return REQUEUE
        return ACK

    def _retry_later(self, delivery: Delivery, exc: Exception) -> str:
        """What Celery's autoretry does for one message: publish it again, one retry more, after a backoff."""
        # Exponential backoff with full jitter, as Celery's autoretry: retries after an outage do not come in waves.
        countdown = get_exponential_backoff_interval(
            factor=1, retries=delivery.retries, maximum=self.retry_backoff_max, full_jitter=True
        )
        logger.warning(
            "inbound message failed on a transient error; retrying",
            extra={"task_name": self.name, "retries": delivery.retries, "countdown_s": countdown, "error": str(exc)},
        )
        return self._ack_unless_it_fails(
            lambda: self.apply_async(
                args=delivery.args,
                kwargs=delivery.kwargs,
                task_id=delivery.id,
                countdown=countdown,
                retries=delivery.retries + 1,
                queue=delivery.queue or None,
            ),
            delivery,
            "could not publish a retry; re-queueing the message",
        )


def run_batch(task_name: str, deliveries: list[Delivery]) -> list[str]:
    """What a pool process runs: the named job's batch (a module-level function, so the pool can pickle it)."""
    from workflow_api.celery import app

    job = app.tasks[task_name]
    assert isinstance(job, BatchedInboundJob)
    return job.run_batch(deliveries)


@dataclass(frozen=True)
class _Received:
    delivery: Delivery
    message: Any
    ack: Any
    reject: Any


class BatchingStrategy:
    """The worker-side half (main process): buffer messages, hand them to the pool in batches, ack when done."""

    def __init__(self, job: BatchedInboundJob, consumer: Any) -> None:
        if settings.INBOUND_BATCH_SIZE < 1:
            raise ValueError(f"INBOUND_BATCH_SIZE must be at least 1, got {settings.INBOUND_BATCH_SIZE}")
        self.job = job
        self.consumer = consumer
        self.size = settings.INBOUND_BATCH_SIZE
        self.buffer: list[_Received] = []
        self.in_flight = 0
        self.closed = False
        # Messages waiting for their ETA: id() of the _Received -> its timer entry.
        self.held: dict[int, Any] = {}
        # The consumer prefetches one batch per pool process more (set once, kept across reconnects).
        extra = self.size * max(consumer.pool.num_processes or 1, 1)
        if getattr(consumer, "batch_prefetch", None) != extra:
            consumer.batch_prefetch = extra
            if consumer.initial_prefetch_count:
                consumer.initial_prefetch_count += extra

    def __call__(self, message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **_kwargs: Any) -> None:
        headers, (args, kwargs, _embed) = self._read(message, body)
        try:
            retries = int(headers.get("retries") or 0)
            eta = maybe_iso8601(headers.get("eta")) if headers.get("eta") else None
            if eta is not None and eta.tzinfo is None:
                eta = eta.replace(tzinfo=UTC)
            queue = (message.delivery_info or {}).get("routing_key", "")
        except Exception as exc:  # anything a header can hold that is not a retry count or a date
            raise InvalidTaskError(f"unreadable retries or eta header: {type(exc).__name__}: {exc}") from exc
        if not 0 <= retries <= MAX_RETRIES_HEADER:
            raise InvalidTaskError(f"retries header out of range: {retries}")
        received = _Received(
            delivery=Delivery(
                id=str(headers.get("id") or ""),
                args=tuple(args),
                kwargs=dict(kwargs),
                retries=retries,
                queue=queue,
            ),
            message=message,
            ack=ack,
            reject=reject,
        )
        if eta is not None and eta > datetime.now(UTC):
            # Held until due: let the broker send another message meanwhile, as Celery does for ETA tasks.
            self.consumer.qos.increment_eventually()
            self.held[id(received)] = self.consumer.timer.call_at(eta, self._due, (received,), priority=6)
            return
        self._add(received)

    def _read(self, message: Any, body: Any) -> tuple[dict[str, Any], tuple[Any, ...]]:
        """(headers, (args, kwargs, embed)); InvalidTaskError (dead-lettered by the consumer) for another shape."""
        payload = message.payload
        hybrid = isinstance(payload, dict) and "args" in payload
        try:
            if body is None and not hybrid:
                headers, body = message.headers, payload  # protocol 2
            elif hybrid:
                body, headers, _, _ = hybrid_to_proto2(message, payload)
            else:
                body, headers, _, _ = proto1_to_proto2(message, body)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidTaskError(f"unreadable task message: {type(exc).__name__}: {exc}") from exc
        if not (
            isinstance(body, list | tuple)
            and len(body) == 3
            and isinstance(body[0], list | tuple)
            and isinstance(body[1], dict)
        ):
            raise InvalidTaskError(f"a task message body is [args, kwargs, embed], got {body!r:.200}")
        return headers, tuple(body)

    def _due(self, received: _Received) -> None:
        self.held.pop(id(received), None)
        if self.closed:
            return  # held for a channel that is gone; the broker sends the message again
        self.consumer.qos.decrement_eventually()
        self._add(received)

    def _add(self, received: _Received) -> None:
        if self.closed:
            return
        self.buffer.append(received)
        if self.in_flight < max(self.consumer.pool.num_processes or 1, 1) or len(self.buffer) >= self.size:
            self._flush()

    def _flush(self) -> None:
        batch, self.buffer = self.buffer[: self.size], self.buffer[self.size :]
        if batch and not self.closed:
            self._submit(batch)

    def _submit(self, batch: list[_Received]) -> None:
        self.in_flight += 1
        conf = self.job.app.conf
        self.consumer.pool.apply_async(
            run_batch,
            args=(self.job.name, [received.delivery for received in batch]),
            callback=partial(self._done, batch),
            error_callback=partial(self._failed, batch),
            soft_timeout=conf.task_soft_time_limit,
            timeout=conf.task_time_limit,
        )

    def _done(self, batch: list[_Received], statuses: list[str]) -> None:
        self.in_flight -= 1
        if self.closed:
            return  # their channel is gone: the broker has them back already
        for received, status in zip(batch, statuses, strict=True):
            if status == ACK:
                received.ack(logger, self.consumer.connection_errors)
            elif status == REQUEUE:
                received.reject(logger, self.consumer.connection_errors, True)
            else:
                self._submit([received])
        self._flush()

    def _failed(self, batch: list[_Received], exc_info: Any) -> None:
        self.in_flight -= 1
        if self.closed:
            return
        exc = getattr(exc_info, "exception", exc_info)
        if isinstance(exc, ExceptionWithTraceback):  # what billiard detects in this process comes wrapped
            exc = exc.exc
        # A soft limit arriving between the guarded calls escapes run_batch too; it is a time limit all the same.
        stopped = isinstance(exc, WorkerLostError | TimeLimitExceeded | SoftTimeLimitExceeded)
        if len(batch) > 1:
            # Whichever message did it, only it should pay: each runs again in a batch of its own.
            logger.error(
                "batch stopped (%s); running its messages again one at a time",
                type(exc).__name__,
                extra={"task_name": self.job.name, "batch_size": len(batch)},
            )
            for received in batch:
                self._submit([received])
        elif isinstance(exc, WorkerLostError) and not (batch[0].message.delivery_info or {}).get("redelivered"):
            logger.error("pool process lost; re-queueing its message", extra={"task_name": self.job.name})
            batch[0].reject(logger, self.consumer.connection_errors, True)
        else:
            # A second lost process for one message (it was delivered again already), a time limit, a bug.
            if isinstance(exc, WorkerLostError):
                code = "worker_lost"
            else:
                code = "time_limit_exceeded" if stopped else "processing_error"
            logger.error(
                "inbound message could not be run; keeping it",
                extra={"task_name": self.job.name, "error_code": code, "message_id": batch[0].delivery.id},
            )
            self.consumer.keep_or_requeue(batch[0].message, code=code, error=f"{type(exc).__name__}: {exc}")
        self._flush()

    def close(self) -> None:
        """Stop acting for a consumer that reconnected: drop the buffer, cancel the held messages' timers.

        Their channel is gone, so RabbitMQ has given every message this
        instance held back to the queue; batches still running finish, and
        their results are dropped.
        """
        self.closed = True
        self.buffer = []
        for entry in self.held.values():
            entry.cancel()
        self.held.clear()
