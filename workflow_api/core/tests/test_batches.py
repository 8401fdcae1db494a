"""Batched inbound jobs (workflow_api.core.batches), without a broker.

The worker side (BatchingStrategy) runs against a stand-in consumer: a pool
that records the batches handed to it and lets the test report each one done
(with a status per message) or failed, a timer and a QoS that record what
they are asked. The pool side (BatchedInboundJob.run_batch) runs
`receive_ticket` batches against the database, with deliveries that name no
queue, so nothing is published; those tests are transactional, as a pool
process is (run_batch closes a connection it finds inside a transaction, as a
test's own would be).
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billiard.einfo import ExceptionInfo
from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery.exceptions import InvalidTaskError, SoftTimeLimitExceeded
from django.db import OperationalError

import tickets.tasks
from task.models import Task
from task.tests.factories import published_setup
from tickets.models import AllocationState, Ticket
from tickets.services import tickets_intake
from tickets.tests.factories import ticket_data
from workflow_api.celery import app
from workflow_api.core import batches
from workflow_api.core.batches import ACK, ALONE, REQUEUE, BatchedInboundJob, BatchingStrategy, run_batch
from workflow_api.core.inbound import DeadLetteringConsumer, Delivery
from workflow_api.core.messaging import TICKET_QUEUE
from workflow_api.core.models import InboundFailure, MessageCounter

RECEIVE_TICKET = "tickets.tasks.receive_ticket"
JOB: BatchedInboundJob = app.tasks[RECEIVE_TICKET]
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}

# --- Stand-ins for the worker's consumer and the messages it receives -------------------


class Recorder:
    """An ack or reject promise as the consumer passes it: remembers each call's arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


@dataclass
class FakeMessage:
    """A kombu message as a strategy sees it (protocol 2: the body is [args, kwargs, embed])."""

    headers: dict[str, Any]
    payload: Any
    delivery_info: dict[str, Any] = field(default_factory=lambda: {"routing_key": TICKET_QUEUE})


@dataclass
class Sent:
    """A message handed to the strategy, with its own ack and reject."""

    message: FakeMessage
    ack: Recorder
    reject: Recorder


@dataclass
class Batch:
    """One `pool.apply_async` call; `done()` and `fail()` are the pool reporting it back."""

    target: Any
    task_name: str
    deliveries: list[Delivery]
    callback: Any
    error_callback: Any
    soft_timeout: Any
    timeout: Any

    @property
    def ids(self) -> list[str]:
        return [delivery.id for delivery in self.deliveries]

    def done(self, statuses: list[str] | None = None) -> None:
        """The batch ran: a status per message (by default every message acknowledged)."""
        self.callback([ACK] * len(self.deliveries) if statuses is None else statuses)

    def fail(self, exc_info: ExceptionInfo) -> None:
        self.error_callback(exc_info)


class FakePool:
    def __init__(self, num_processes: int) -> None:
        self.num_processes = num_processes
        self.batches: list[Batch] = []

    def apply_async(
        self, target: Any, *, args: tuple[str, list[Delivery]], callback: Any, error_callback: Any, **limits: Any
    ) -> None:
        task_name, deliveries = args
        self.batches.append(
            Batch(target, task_name, deliveries, callback, error_callback, limits["soft_timeout"], limits["timeout"])
        )

    @property
    def sizes(self) -> list[int]:
        return [len(batch.deliveries) for batch in self.batches]


@dataclass
class TimerEntry:
    """What `timer.call_at` returns (kombu's Entry): `fire()` is the timer calling it when due."""

    eta: datetime
    fun: Any
    args: tuple[Any, ...]
    priority: int
    cancelled: bool = False

    def fire(self) -> None:
        self.fun(*self.args)

    def cancel(self) -> None:
        self.cancelled = True


class FakeTimer:
    def __init__(self) -> None:
        self.entries: list[TimerEntry] = []

    def call_at(self, eta: datetime, fun: Any, args: tuple[Any, ...] = (), priority: int = 0) -> TimerEntry:
        entry = TimerEntry(eta, fun, args, priority)
        self.entries.append(entry)
        return entry


class FakeQoS:
    def __init__(self) -> None:
        self.increments = 0
        self.decrements = 0

    def increment_eventually(self) -> None:
        self.increments += 1

    def decrement_eventually(self) -> None:
        self.decrements += 1


class FakeConsumer:
    """What BatchingStrategy uses of DeadLetteringConsumer; `kept` lists what keep_or_requeue was given."""

    batch_prefetch = 0  # as on DeadLetteringConsumer

    def __init__(self, *, num_processes: int = 2, initial_prefetch_count: int = 2) -> None:
        self.pool = FakePool(num_processes)
        self.timer = FakeTimer()
        self.qos = FakeQoS()
        self.connection_errors: tuple[type[Exception], ...] = ()
        self.initial_prefetch_count = initial_prefetch_count
        self.kept: list[tuple[Any, str, str]] = []

    def keep_or_requeue(self, message: Any, *, code: str, error: str) -> None:
        self.kept.append((message, code, error))


_A_TICKET: Any = object()  # _send's default body: one receive_ticket call


@pytest.fixture(autouse=True)
def _a_worker_connecting_for_the_first_time(monkeypatch):
    """The job keeps the strategy it built last (to close it on a reconnect): none from another test."""
    monkeypatch.setattr(JOB, "_strategy", None, raising=False)


def _start(consumer: FakeConsumer) -> BatchingStrategy:
    """The strategy Celery's consumer builds for the job (on every connection)."""
    return JOB.start_strategy(app, consumer)


def _send(
    strategy: BatchingStrategy,
    message_id: str,
    *,
    payload: Any = _A_TICKET,
    retries: Any = 0,
    eta: str | None = None,
) -> Sent:
    """Hand the strategy one receive_ticket message, as the consumer does (protocol 2: no decoded body)."""
    headers: dict[str, Any] = {"id": message_id, "task": RECEIVE_TICKET, "retries": retries}
    if eta is not None:
        headers["eta"] = eta
    body = [[{"ticket_number": message_id}], {}, _EMBED] if payload is _A_TICKET else payload
    sent = Sent(FakeMessage(headers=headers, payload=body), Recorder(), Recorder())
    strategy(sent.message, None, sent.ack, sent.reject, set())
    return sent


def _batch_in_flight(consumer: FakeConsumer, strategy: BatchingStrategy, *message_ids: str) -> list[Sent]:
    """`message_ids` handed to the pool as one batch (one process, busy with "m-first" while they arrive)."""
    assert consumer.pool.num_processes == 1
    _send(strategy, "m-first")
    sent = [_send(strategy, message_id) for message_id in message_ids]
    consumer.pool.batches[0].done()
    assert consumer.pool.batches[-1].ids == list(message_ids)
    return sent


def _acked(consumer: FakeConsumer) -> list[tuple[Any, ...]]:
    return [(batches.logger, consumer.connection_errors)]


def _requeued(consumer: FakeConsumer) -> list[tuple[Any, ...]]:
    return [(batches.logger, consumer.connection_errors, True)]


def _reported_by_the_pool(exc: Exception) -> ExceptionInfo:
    """The ExceptionInfo billiard gives an error_callback for an error it detects in the main process."""
    try:
        raise exc
    except Exception:  # noqa: BLE001 - captured as billiard captures it
        return ExceptionInfo()


def _raised_in_a_pool_process(exc: Exception) -> ExceptionInfo:
    """The ExceptionInfo of an error raised in a pool process, as the main process unpickles it."""
    info: ExceptionInfo = pickle.loads(pickle.dumps(_reported_by_the_pool(exc)))  # noqa: S301 - our own bytes
    return info


# --- Handing messages to the pool ------------------------------------------------------


def test_with_two_processes_the_first_two_messages_each_go_to_the_pool_at_once_as_a_batch_of_one():
    consumer = FakeConsumer(num_processes=2)
    strategy = _start(consumer)

    _send(strategy, "m1")
    _send(strategy, "m2")

    assert [batch.ids for batch in consumer.pool.batches] == [["m1"], ["m2"]]
    assert all(batch.target is run_batch and batch.task_name == RECEIVE_TICKET for batch in consumer.pool.batches)


def test_a_batch_runs_under_the_workers_soft_and_hard_time_limits():
    consumer = FakeConsumer()
    strategy = _start(consumer)

    _send(strategy, "m1")

    (batch,) = consumer.pool.batches
    assert (batch.soft_timeout, batch.timeout) == (app.conf.task_soft_time_limit, app.conf.task_time_limit)


def test_the_pool_gets_each_messages_id_arguments_retries_and_queue():
    consumer = FakeConsumer()
    strategy = _start(consumer)

    _send(strategy, "m1", payload=[[{"ticket_number": "T1"}], {}, _EMBED], retries=3)
    _send(strategy, "m2", payload=[[], {"ticket_data": {"ticket_number": "T2"}}, _EMBED])

    assert [batch.deliveries for batch in consumer.pool.batches] == [
        [Delivery(id="m1", args=({"ticket_number": "T1"},), kwargs={}, retries=3, queue=TICKET_QUEUE)],
        [Delivery(id="m2", args=(), kwargs={"ticket_data": {"ticket_number": "T2"}}, retries=0, queue=TICKET_QUEUE)],
    ]


def test_messages_received_while_every_process_is_busy_go_as_one_batch_when_a_batch_finishes():
    consumer = FakeConsumer(num_processes=2)
    strategy = _start(consumer)
    for message_id in ("m1", "m2", "m3", "m4", "m5"):
        _send(strategy, message_id)

    assert [batch.ids for batch in consumer.pool.batches] == [["m1"], ["m2"]]

    consumer.pool.batches[0].done()

    assert [batch.ids for batch in consumer.pool.batches] == [["m1"], ["m2"], ["m3", "m4", "m5"]]


def test_a_batch_is_acknowledged_only_when_the_pool_reports_it_done_and_only_its_own_messages():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    first = _send(strategy, "m1")
    waiting = [_send(strategy, "m2"), _send(strategy, "m3")]

    assert first.ack.calls == []

    consumer.pool.batches[0].done()

    assert first.ack.calls == [(batches.logger, consumer.connection_errors)]
    assert [sent.ack.calls for sent in waiting] == [[], []]
    assert [sent.reject.calls for sent in [first, *waiting]] == [[], [], []]

    consumer.pool.batches[1].done()

    assert [sent.ack.calls for sent in waiting] == [[(batches.logger, consumer.connection_errors)]] * 2


def test_a_full_buffer_goes_to_the_pool_even_when_every_process_is_busy(settings):
    settings.INBOUND_BATCH_SIZE = 3
    consumer = FakeConsumer(num_processes=2)
    strategy = _start(consumer)
    for message_id in ("m1", "m2", "m3", "m4"):
        _send(strategy, message_id)

    assert [batch.ids for batch in consumer.pool.batches] == [["m1"], ["m2"]]

    _send(strategy, "m5")

    assert [batch.ids for batch in consumer.pool.batches] == [["m1"], ["m2"], ["m3", "m4", "m5"]]


def test_a_batch_never_holds_more_messages_than_the_batch_size(settings):
    settings.INBOUND_BATCH_SIZE = 3
    consumer = FakeConsumer(num_processes=2)
    strategy = _start(consumer)
    for number in range(10):
        _send(strategy, f"m{number}")

    assert consumer.pool.sizes == [1, 1, 3, 3]

    consumer.pool.batches[0].done()

    assert consumer.pool.sizes == [1, 1, 3, 3, 2]
    assert [batch.ids for batch in consumer.pool.batches][-1] == ["m8", "m9"]


# --- What the pool says of each message -----------------------------------------------


def test_each_message_of_a_batch_is_acknowledged_requeued_or_sent_again_alone_as_the_pool_says():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    acked, requeued, alone = _batch_in_flight(consumer, strategy, "m-ack", "m-requeue", "m-alone")

    consumer.pool.batches[-1].done([ACK, REQUEUE, ALONE])

    assert (acked.ack.calls, acked.reject.calls) == (_acked(consumer), [])
    assert (requeued.ack.calls, requeued.reject.calls) == ([], _requeued(consumer))
    assert (alone.ack.calls, alone.reject.calls) == ([], [])
    assert [batch.ids for batch in consumer.pool.batches[2:]] == [["m-alone"]]


def test_a_message_sent_again_alone_is_acknowledged_when_its_own_batch_is_done():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    _, alone = _batch_in_flight(consumer, strategy, "m-ack", "m-alone")
    consumer.pool.batches[-1].done([ACK, ALONE])

    consumer.pool.batches[-1].done()

    assert alone.ack.calls == _acked(consumer)


def test_messages_sent_again_alone_keep_the_processes_busy_so_new_messages_wait():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    _batch_in_flight(consumer, strategy, "m2", "m3")
    consumer.pool.batches[-1].done([ALONE, ALONE])

    _send(strategy, "m-new")

    assert [batch.ids for batch in consumer.pool.batches[2:]] == [["m2"], ["m3"]]
    assert strategy.buffer[0].delivery.id == "m-new"


# --- A batch the pool could not finish -------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [WorkerLostError("Worker exited prematurely: signal 9"), TimeLimitExceeded(300), RuntimeError("a bug")],
    ids=["process-lost", "hard-time-limit", "an-error"],
)
def test_a_batch_whose_process_was_lost_or_hit_the_hard_limit_runs_again_one_message_per_batch(exc):
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    stopped = _batch_in_flight(consumer, strategy, "m2", "m3", "m4")

    consumer.pool.batches[-1].fail(_reported_by_the_pool(exc))

    assert [batch.ids for batch in consumer.pool.batches[2:]] == [["m2"], ["m3"], ["m4"]]
    assert [(sent.ack.calls, sent.reject.calls) for sent in stopped] == [([], [])] * 3
    assert consumer.kept == []


def test_a_soft_time_limit_that_escapes_a_batch_runs_its_messages_again_one_per_batch():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    stopped = _batch_in_flight(consumer, strategy, "m2", "m3")

    # Raised in the pool process between the guarded calls (a log line, say): run_batch lets it out.
    consumer.pool.batches[-1].fail(_raised_in_a_pool_process(SoftTimeLimitExceeded()))

    assert [batch.ids for batch in consumer.pool.batches[2:]] == [["m2"], ["m3"]]
    assert [(sent.ack.calls, sent.reject.calls) for sent in stopped] == [([], [])] * 2
    assert consumer.kept == []


def test_a_lost_pool_process_that_ran_a_single_message_requeues_it_and_acknowledges_nothing():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    sent = _send(strategy, "m1")

    consumer.pool.batches[0].fail(_reported_by_the_pool(WorkerLostError("Worker exited prematurely: signal 9")))

    assert sent.reject.calls == _requeued(consumer)
    assert sent.ack.calls == []
    assert consumer.kept == []
    assert len(consumer.pool.batches) == 1


def test_a_message_that_loses_its_pool_process_a_second_time_is_kept_as_worker_lost():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    sent = _send(strategy, "m1")
    # RabbitMQ marks a message it delivers again (after a lost process, or a worker that died).
    sent.message.delivery_info["redelivered"] = True

    consumer.pool.batches[0].fail(_reported_by_the_pool(WorkerLostError("Worker exited prematurely: signal 9")))

    assert [(message, code) for message, code, _error in consumer.kept] == [(sent.message, "worker_lost")]
    assert (sent.ack.calls, sent.reject.calls) == ([], [])
    assert len(consumer.pool.batches) == 1


def test_a_single_message_stopped_by_the_hard_time_limit_is_kept_by_the_consumer_as_time_limit_exceeded():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    sent = _send(strategy, "m1")

    consumer.pool.batches[0].fail(_reported_by_the_pool(TimeLimitExceeded(300)))

    ((message, code, error),) = consumer.kept
    assert (message, code) == (sent.message, "time_limit_exceeded")
    assert error.startswith("TimeLimitExceeded")
    assert (sent.ack.calls, sent.reject.calls) == ([], [])
    assert len(consumer.pool.batches) == 1


def test_a_batch_that_raised_in_its_pool_process_is_kept_by_the_consumer_as_a_processing_error():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    sent = _send(strategy, "m1")

    consumer.pool.batches[0].fail(_raised_in_a_pool_process(RuntimeError("the dead-letter publish failed")))

    assert consumer.kept == [(sent.message, "processing_error", "RuntimeError: the dead-letter publish failed")]
    assert sent.ack.calls == []
    assert sent.reject.calls == []


def test_a_failed_batch_frees_its_process_for_the_messages_waiting():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    _send(strategy, "m1")
    _send(strategy, "m2")

    consumer.pool.batches[0].fail(_raised_in_a_pool_process(RuntimeError("boom")))

    assert [batch.ids for batch in consumer.pool.batches] == [["m1"], ["m2"]]


# --- Messages due later ----------------------------------------------------------------


def test_a_message_due_later_is_held_on_the_timer_and_joins_a_batch_when_due():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    due = datetime.now(UTC) + timedelta(minutes=5)

    _send(strategy, "m-later", eta=due.isoformat())

    assert consumer.pool.batches == []
    assert [entry.eta for entry in consumer.timer.entries] == [due]
    assert (consumer.qos.increments, consumer.qos.decrements) == (1, 0)

    consumer.timer.entries[0].fire()

    assert [batch.ids for batch in consumer.pool.batches] == [["m-later"]]
    assert (consumer.qos.increments, consumer.qos.decrements) == (1, 1)


def test_a_held_message_that_falls_due_while_the_processes_are_busy_joins_the_next_batch():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    _send(strategy, "m1")
    _send(strategy, "m-later", eta=(datetime.now(UTC) + timedelta(minutes=5)).isoformat())
    _send(strategy, "m2")

    consumer.timer.entries[0].fire()
    consumer.pool.batches[0].done()

    assert [batch.ids for batch in consumer.pool.batches] == [["m1"], ["m2", "m-later"]]


def test_an_eta_without_a_timezone_is_read_as_utc():
    consumer = FakeConsumer()
    strategy = _start(consumer)
    due = datetime.now(UTC) + timedelta(minutes=5)

    _send(strategy, "m-later", eta=due.replace(tzinfo=None).isoformat())

    assert [entry.eta for entry in consumer.timer.entries] == [due]
    assert consumer.pool.batches == []


def test_a_message_whose_eta_has_passed_goes_to_the_pool_at_once():
    consumer = FakeConsumer()
    strategy = _start(consumer)

    _send(strategy, "m-late", eta=(datetime.now(UTC) - timedelta(seconds=1)).isoformat())

    assert [batch.ids for batch in consumer.pool.batches] == [["m-late"]]
    assert consumer.timer.entries == []
    assert consumer.qos.increments == 0


def test_a_held_message_that_fell_due_is_not_cancelled_by_a_later_reconnect():
    consumer = FakeConsumer()
    strategy = _start(consumer)
    _send(strategy, "m-later", eta=(datetime.now(UTC) + timedelta(minutes=5)).isoformat())
    consumer.timer.entries[0].fire()

    _start(consumer)

    assert consumer.timer.entries[0].cancelled is False


# --- Reconnects ------------------------------------------------------------------------


def test_a_reconnect_closes_the_previous_strategy_and_drops_the_messages_it_had_not_handed_to_the_pool():
    consumer = FakeConsumer(num_processes=1)
    previous = _start(consumer)
    _send(previous, "m1")
    _send(previous, "m2")

    _start(consumer)

    assert previous.closed is True
    assert previous.buffer == []


def test_a_reconnect_cancels_the_timers_of_the_messages_the_previous_strategy_held_for_their_eta():
    consumer = FakeConsumer()
    previous = _start(consumer)
    due = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    _send(previous, "m-later-1", eta=due)
    _send(previous, "m-later-2", eta=due)

    _start(consumer)

    assert [entry.cancelled for entry in consumer.timer.entries] == [True, True]
    assert previous.held == {}


def test_a_held_message_falling_due_after_a_reconnect_goes_nowhere_and_leaves_the_prefetch_alone():
    consumer = FakeConsumer()
    previous = _start(consumer)
    _send(previous, "m-later", eta=(datetime.now(UTC) + timedelta(minutes=5)).isoformat())
    _start(consumer)

    consumer.timer.entries[0].fire()  # a timer that had already taken it when the entry was cancelled

    assert consumer.pool.batches == []
    assert (consumer.qos.increments, consumer.qos.decrements) == (1, 0)


def test_a_batch_finishing_after_a_reconnect_acknowledges_requeues_and_resubmits_nothing():
    consumer = FakeConsumer(num_processes=1)
    previous = _start(consumer)
    old = _batch_in_flight(consumer, previous, "m-ack", "m-requeue", "m-alone")
    _send(previous, "m-buffered")
    _start(consumer)

    consumer.pool.batches[-1].done([ACK, REQUEUE, ALONE])

    assert [(sent.ack.calls, sent.reject.calls) for sent in old] == [([], [])] * 3
    assert [batch.ids for batch in consumer.pool.batches] == [["m-first"], ["m-ack", "m-requeue", "m-alone"]]
    assert previous.in_flight == 0


@pytest.mark.parametrize(
    "exc",
    [WorkerLostError("Worker exited prematurely: signal 9"), TimeLimitExceeded(300), RuntimeError("boom")],
    ids=["process-lost", "hard-time-limit", "an-error"],
)
def test_a_batch_failing_after_a_reconnect_requeues_keeps_and_resubmits_nothing(exc):
    consumer = FakeConsumer(num_processes=1)
    previous = _start(consumer)
    old = _batch_in_flight(consumer, previous, "m2", "m3")
    _start(consumer)

    consumer.pool.batches[-1].fail(_reported_by_the_pool(exc))

    assert [(sent.ack.calls, sent.reject.calls) for sent in old] == [([], [])] * 2
    assert consumer.kept == []
    assert len(consumer.pool.batches) == 2
    assert previous.in_flight == 0


def test_the_strategy_built_on_a_reconnect_hands_the_new_channels_messages_to_the_pool():
    consumer = FakeConsumer(num_processes=1)
    previous = _start(consumer)
    _send(previous, "m-old")
    current = _start(consumer)

    _send(current, "m-new")

    assert [batch.ids for batch in consumer.pool.batches] == [["m-old"], ["m-new"]]
    assert current is JOB._strategy


# --- Prefetch and configuration --------------------------------------------------------


def test_the_prefetch_grows_by_one_batch_per_process_once_however_often_the_strategy_is_built(settings):
    settings.INBOUND_BATCH_SIZE = 3
    consumer = FakeConsumer(num_processes=2, initial_prefetch_count=2)

    _start(consumer)
    _start(consumer)  # the consumer builds its strategies again on every reconnect

    assert (consumer.initial_prefetch_count, consumer.batch_prefetch) == (2 + 3 * 2, 6)


def test_an_unlimited_prefetch_stays_unlimited(settings):
    settings.INBOUND_BATCH_SIZE = 3
    consumer = FakeConsumer(num_processes=2, initial_prefetch_count=0)

    _start(consumer)

    assert (consumer.initial_prefetch_count, consumer.batch_prefetch) == (0, 6)


def test_the_consumers_maximum_prefetch_includes_the_batches():
    consumer = DeadLetteringConsumer.__new__(DeadLetteringConsumer)  # only what max_prefetch_count reads
    consumer.pool = FakePool(num_processes=2)
    consumer.prefetch_multiplier = 1
    consumer.batch_prefetch = 6

    assert consumer.max_prefetch_count == 8


@pytest.mark.parametrize(
    "payload",
    [
        [[{"ticket_number": "T1"}], {}],
        [[{"ticket_number": "T1"}], "not kwargs", _EMBED],
        [{"ticket_number": "T1"}, {}, _EMBED],
        {"ticket_number": "T1"},
        "a ticket",
    ],
    ids=["two-parts", "kwargs-not-a-dict", "args-not-a-list", "a-dict", "a-string"],
)
def test_a_message_body_that_is_not_args_kwargs_embed_is_an_invalid_task(payload):
    consumer = FakeConsumer()
    strategy = _start(consumer)

    with pytest.raises(InvalidTaskError):
        _send(strategy, "m-bad", payload=payload)

    assert consumer.pool.batches == []


@pytest.mark.parametrize(
    "fields",
    [
        {"eta": "next tuesday"},
        {"retries": "three"},
        {"retries": float("inf")},
        {"retries": -1},
        {"retries": 10**7},
        {"payload": None},
        {"payload": 42},
    ],
    ids=[
        "eta-not-a-date",
        "retries-not-a-number",
        "retries-infinite",
        "retries-negative",
        "retries-absurd",
        "body-null",
        "body-a-number",
    ],
)
def test_a_message_with_unreadable_headers_or_a_scalar_body_is_an_invalid_task(fields):
    consumer = FakeConsumer()
    strategy = _start(consumer)

    with pytest.raises(InvalidTaskError):
        _send(strategy, "m-bad", **fields)

    assert consumer.pool.batches == []


def test_a_batch_size_below_one_is_refused(settings):
    settings.INBOUND_BATCH_SIZE = 0

    with pytest.raises(ValueError, match="INBOUND_BATCH_SIZE"):
        _start(FakeConsumer())


# --- Running a batch in a pool process (the database) ----------------------------------


def _counts() -> dict[str, int]:
    return dict(MessageCounter.objects.filter(task_name=RECEIVE_TICKET).values_list("outcome", "count"))


def _matching(setup, **overrides: Any) -> dict[str, Any]:
    """A ticket the published workflow of `setup` takes, so it is allocated."""
    workflow = setup.workflow
    return ticket_data(
        department=workflow.department, category=workflow.category, sub_category=workflow.sub_category, **overrides
    )


def _delivery(message_id: str, payload: Any, *, retries: int = 0) -> Delivery:
    """A receive_ticket message from no queue: a failure is recorded but not published."""
    return Delivery(id=message_id, args=(payload,), kwargs={}, retries=retries, queue="")


def _tasks_per_ticket() -> list[int]:
    return [Task.objects.filter(ticket=ticket).count() for ticket in Ticket.objects.order_by("ticket_number")]


class _Republished:
    """Stands in for the job's apply_async: remembers the options of each message it would publish."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **options: Any) -> None:
        self.calls.append(options)


@pytest.fixture
def recording_fails(monkeypatch) -> None:
    """The database refuses the failure rows: no failed message can be recorded (nor dead-lettered)."""

    def refuse(**_fields: Any) -> None:
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(InboundFailure.objects, "create", refuse)


def _intake_raising(exc: Exception) -> Any:
    def intake(**_kwargs: Any) -> None:
        raise exc

    return intake


@pytest.mark.django_db(transaction=True)
def test_a_batch_stores_each_valid_ticket_once_and_records_each_bad_message_alone(tenant):
    setup = published_setup(tenant=tenant)
    first, second = _matching(setup), _matching(setup)

    taken = JOB.run_batch(
        [
            _delivery("m-1", first),
            _delivery("m-2", second),
            _delivery("m-1-again", first),
            _delivery("m-poison", _matching(setup, priority="Whenever")),
            _delivery("m-not-a-dict", "not a dict"),
        ]
    )

    assert taken == [ACK] * 5
    tickets = Ticket.objects.order_by("ticket_number")
    assert [ticket.ticket_number for ticket in tickets] == sorted([first["ticket_number"], second["ticket_number"]])
    assert {ticket.allocation_state for ticket in tickets} == {AllocationState.ALLOCATED}
    assert _tasks_per_ticket() == [1, 1]
    assert sorted(InboundFailure.objects.values_list("task_name", "message_id", "error_code")) == [
        (RECEIVE_TICKET, "m-not-a-dict", "invalid_ticket"),
        (RECEIVE_TICKET, "m-poison", "invalid_ticket"),
    ]
    assert InboundFailure.objects.get(message_id="m-not-a-dict").body == {"args": ["not a dict"], "kwargs": {}}
    assert not InboundFailure.objects.filter(dead_lettered=True).exists()
    assert _counts() == {"created": 2, "duplicate": 1, "allocated": 2}


@pytest.mark.django_db(transaction=True)
def test_a_message_with_the_wrong_arguments_is_recorded_alone_as_invalid_arguments(tenant):
    setup = published_setup(tenant=tenant)
    payload = _matching(setup)

    JOB.run_batch(
        [_delivery("m-ok", payload), Delivery(id="m-kw", args=(), kwargs={"ticket": payload}, queue="")],
    )

    assert Ticket.objects.get().ticket_number == payload["ticket_number"]
    assert list(InboundFailure.objects.values_list("message_id", "error_code")) == [("m-kw", "invalid_arguments")]


@pytest.mark.django_db(transaction=True)
def test_the_pool_runs_a_batch_of_the_job_it_names(tenant):
    payload = ticket_data()

    taken = run_batch(RECEIVE_TICKET, [_delivery("m-1", payload)])

    assert taken == [ACK]
    assert Ticket.objects.get().ticket_number == payload["ticket_number"]


@pytest.mark.django_db(transaction=True)
def test_when_the_whole_batch_raises_each_message_is_run_again_alone_and_every_valid_ticket_is_stored(
    tenant, monkeypatch
):
    setup = published_setup(tenant=tenant)
    sizes: list[int] = []

    def intake_failing_for_batches(*, messages, **kwargs):
        sizes.append(len(messages))
        if len(messages) > 1:
            raise RuntimeError("a bug only a batch triggers")
        return tickets_intake(messages=messages, **kwargs)

    # tickets.tasks holds its own reference to the service.
    monkeypatch.setattr(tickets.tasks, "tickets_intake", intake_failing_for_batches)

    statuses = JOB.run_batch([_delivery(f"m-{number}", _matching(setup)) for number in range(3)])

    assert statuses == [ACK] * 3
    assert sizes == [3, 1, 1, 1]
    assert _tasks_per_ticket() == [1, 1, 1]
    assert not InboundFailure.objects.exists()
    assert _counts() == {"created": 3, "allocated": 3}


@pytest.mark.django_db(transaction=True)
def test_a_message_that_breaks_every_run_fails_alone_and_costs_the_others_one_retry(tenant, monkeypatch):
    setup = published_setup(tenant=tenant)
    poison = _matching(setup)
    runs: list[list[str]] = []

    def intake_breaking_on(*, messages, **kwargs):
        runs.append([message.message_id for message in messages])
        if any(message.payload["ticket_number"] == poison["ticket_number"] for message in messages):
            raise RuntimeError("a bug this ticket triggers")
        return tickets_intake(messages=messages, **kwargs)

    monkeypatch.setattr(tickets.tasks, "tickets_intake", intake_breaking_on)

    statuses = JOB.run_batch(
        [_delivery("m-1", _matching(setup)), _delivery("m-poison", poison), _delivery("m-3", _matching(setup))]
    )

    assert statuses == [ACK] * 3
    assert runs == [["m-1", "m-poison", "m-3"], ["m-1"], ["m-poison"], ["m-3"]]
    assert Ticket.objects.count() == 2
    failure = InboundFailure.objects.get()
    assert (failure.message_id, failure.error_code) == ("m-poison", "processing_error")
    assert failure.error == "RuntimeError: a bug this ticket triggers"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("retries", "longest"), [(0, 1), (2, 4), (10, 300)])
def test_a_transient_database_error_republishes_the_message_with_its_id_and_one_more_retry(
    tenant, monkeypatch, retries, longest
):
    republished = _Republished()
    monkeypatch.setattr(type(JOB), "apply_async", republished)

    def intake_with_the_database_restarting(**_kwargs):
        raise OperationalError("the database system is starting up")

    monkeypatch.setattr(tickets.tasks, "tickets_intake", intake_with_the_database_restarting)
    payload = ticket_data()

    statuses = JOB.run_batch([_delivery("m-7", payload, retries=retries)])

    assert statuses == [ACK]
    [call] = republished.calls
    # Exponential backoff (capped at 300 s) with full jitter: anywhere from 0 to 2**retries seconds.
    assert 0 <= call.pop("countdown") <= longest
    assert call == {"args": (payload,), "kwargs": {}, "task_id": "m-7", "retries": retries + 1, "queue": None}
    assert not InboundFailure.objects.exists()
    assert not Ticket.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_batch_stopped_by_its_soft_time_limit_sends_every_message_back_to_run_alone_and_records_nothing(
    tenant, monkeypatch
):
    runs: list[int] = []

    def intake_overrunning(*, messages, **_kwargs):
        runs.append(len(messages))
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(tickets.tasks, "tickets_intake", intake_overrunning)

    statuses = JOB.run_batch([_delivery("m-1", ticket_data()), _delivery("m-2", ticket_data())])

    assert statuses == [ALONE, ALONE]
    assert runs == [2]
    assert not InboundFailure.objects.exists()
    assert not Ticket.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_single_message_stopped_by_its_soft_time_limit_is_recorded_as_time_limit_exceeded_and_acknowledged(
    tenant, monkeypatch
):
    monkeypatch.setattr(tickets.tasks, "tickets_intake", _intake_raising(SoftTimeLimitExceeded()))

    statuses = JOB.run_batch([_delivery("m-1", ticket_data())])

    assert statuses == [ACK]
    assert list(InboundFailure.objects.values_list("message_id", "error_code", "error")) == [
        ("m-1", "time_limit_exceeded", f"stopped by the soft time limit ({app.conf.task_soft_time_limit} s)"),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_soft_time_limit_while_running_a_failed_batch_one_at_a_time_sends_that_message_and_the_rest_back_alone(
    tenant, monkeypatch
):
    runs: list[list[str]] = []

    def intake(*, messages, **kwargs):
        runs.append([message.message_id for message in messages])
        if len(messages) > 1:
            raise RuntimeError("a bug one message trips")
        if messages[0].message_id == "m-1":
            raise SoftTimeLimitExceeded()
        return tickets_intake(messages=messages, **kwargs)

    monkeypatch.setattr(tickets.tasks, "tickets_intake", intake)

    statuses = JOB.run_batch([_delivery(f"m-{i}", ticket_data()) for i in range(3)])

    assert statuses == [ACK, ALONE, ALONE]
    # The whole batch, then one message at a time until the limit; the last is not run at all.
    assert runs == [["m-0", "m-1", "m-2"], ["m-0"], ["m-1"]]
    assert Ticket.objects.count() == 1
    assert not InboundFailure.objects.exists()


# --- When even recording a failure, or publishing a retry, fails -------------------------


@pytest.mark.django_db(transaction=True)
def test_a_bad_message_that_cannot_be_recorded_is_requeued_and_the_rest_of_its_batch_commits(tenant, recording_fails):
    payload = ticket_data()

    statuses = JOB.run_batch([_delivery("m-ok", payload), _delivery("m-not-a-dict", "not a dict")])

    assert statuses == [ACK, REQUEUE]
    assert Ticket.objects.get().ticket_number == payload["ticket_number"]


@pytest.mark.django_db(transaction=True)
def test_a_message_failing_alone_that_cannot_be_recorded_is_requeued(tenant, monkeypatch, recording_fails):
    monkeypatch.setattr(tickets.tasks, "tickets_intake", _intake_raising(RuntimeError("a bug")))

    statuses = JOB.run_batch([_delivery("m-1", ticket_data())])

    assert statuses == [REQUEUE]


@pytest.mark.django_db(transaction=True)
def test_a_message_whose_retry_cannot_be_published_is_requeued_and_not_recorded(tenant, monkeypatch):
    def broker_down(**_options: Any) -> None:
        raise ConnectionRefusedError("the broker is down")

    monkeypatch.setattr(type(JOB), "apply_async", broker_down)
    monkeypatch.setattr(
        tickets.tasks, "tickets_intake", _intake_raising(OperationalError("the database system is starting up"))
    )

    statuses = JOB.run_batch([_delivery("m-1", ticket_data())])

    assert statuses == [REQUEUE]
    assert not InboundFailure.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_batch_logs_how_many_of_its_messages_got_each_status(tenant, recording_fails, caplog):
    caplog.set_level(logging.INFO, logger=batches.logger.name)

    JOB.run_batch([_delivery("m-1", ticket_data()), _delivery("m-2", ticket_data()), _delivery("m-bad", "not a dict")])

    (done,) = [record for record in caplog.records if record.getMessage() == "inbound batch done"]
    assert (done.messages, done.statuses, done.message_ids) == (3, {ACK: 2, REQUEUE: 1}, ["m-1", "m-2", "m-bad"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "poison",
    [{"subject": "a NUL \x00 inside"}, {"subject": float("nan")}, {"priority": float("inf")}],
    ids=["nul-character", "nan", "infinity"],
)
def test_a_message_jsonb_cannot_hold_is_still_recorded_and_acknowledged(tenant, poison):
    statuses = JOB.run_batch([_delivery("m-unstorable", ticket_data(**poison))])

    assert statuses == [ACK]
    failure = InboundFailure.objects.get()
    assert (failure.message_id, failure.error_code) == ("m-unstorable", "invalid_ticket")
    assert failure.body["args"][0]["ticket_number"].startswith("TX")


def test_a_batched_job_without_its_batch_function_is_refused_where_it_is_defined():
    with pytest.raises(TypeError, match="without batch_run"):
        type("NoBatchRun", (BatchedInboundJob,), {"name": "tests.no_batch_run"})
