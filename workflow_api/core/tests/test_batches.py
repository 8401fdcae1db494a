"""Batched inbound jobs (workflow_api.core.batches), without a broker.

The worker side (BatchingStrategy) runs against a stand-in consumer: a pool
that records the batches handed to it and lets the test report each one done
or failed, a timer and a QoS that record what they are asked. The pool side
(BatchedInboundJob.run_batch) runs `receive_ticket` batches against the
database, with deliveries that name no queue, so nothing is published; those
tests are transactional, as a pool process is (run_batch closes a connection
it finds inside a transaction, as a test's own would be).
"""

from __future__ import annotations

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
from workflow_api.core.batches import BatchedInboundJob, BatchingStrategy, run_batch
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

    def done(self) -> None:
        self.callback(len(self.deliveries))

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
    eta: datetime
    fun: Any
    args: tuple[Any, ...]
    priority: int

    def fire(self) -> None:
        self.fun(*self.args)


class FakeTimer:
    def __init__(self) -> None:
        self.entries: list[TimerEntry] = []

    def call_at(self, eta: datetime, fun: Any, args: tuple[Any, ...] = (), priority: int = 0) -> None:
        self.entries.append(TimerEntry(eta, fun, args, priority))


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


# --- A batch the pool could not finish -------------------------------------------------


def test_a_lost_pool_process_requeues_its_batch_and_acknowledges_nothing():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    sent = _send(strategy, "m1")

    consumer.pool.batches[0].fail(_reported_by_the_pool(WorkerLostError("Worker exited prematurely: signal 9")))

    assert sent.reject.calls == [(batches.logger, consumer.connection_errors, True)]
    assert sent.ack.calls == []
    assert consumer.kept == []


def test_a_batch_stopped_by_the_hard_time_limit_is_kept_by_the_consumer_as_time_limit_exceeded():
    consumer = FakeConsumer(num_processes=1)
    strategy = _start(consumer)
    _send(strategy, "m1")
    stopped = [_send(strategy, "m2"), _send(strategy, "m3")]
    consumer.pool.batches[0].done()

    consumer.pool.batches[1].fail(_reported_by_the_pool(TimeLimitExceeded(300)))

    assert [(message, code) for message, code, _ in consumer.kept] == [
        (stopped[0].message, "time_limit_exceeded"),
        (stopped[1].message, "time_limit_exceeded"),
    ]
    assert all(error.startswith("TimeLimitExceeded") for _, _, error in consumer.kept)
    assert [(sent.ack.calls, sent.reject.calls) for sent in stopped] == [([], []), ([], [])]


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
    [{"eta": "next tuesday"}, {"retries": "three"}, {"payload": None}, {"payload": 42}],
    ids=["eta-not-a-date", "retries-not-a-number", "body-null", "body-a-number"],
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

    assert taken == 5
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

    assert taken == 1
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

    JOB.run_batch([_delivery(f"m-{number}", _matching(setup)) for number in range(3)])

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

    JOB.run_batch(
        [_delivery("m-1", _matching(setup)), _delivery("m-poison", poison), _delivery("m-3", _matching(setup))]
    )

    assert runs == [["m-1", "m-poison", "m-3"], ["m-1"], ["m-poison"], ["m-3"]]
    assert Ticket.objects.count() == 2
    failure = InboundFailure.objects.get()
    assert (failure.message_id, failure.error_code) == ("m-poison", "processing_error")
    assert failure.error == "RuntimeError: a bug this ticket triggers"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("retries", "countdown"), [(0, 1), (2, 4), (10, 300)])
def test_a_transient_database_error_republishes_the_message_with_its_id_and_one_more_retry(
    tenant, monkeypatch, retries, countdown
):
    republished = _Republished()
    monkeypatch.setattr(type(JOB), "apply_async", republished)

    def intake_with_the_database_restarting(**_kwargs):
        raise OperationalError("the database system is starting up")

    monkeypatch.setattr(tickets.tasks, "tickets_intake", intake_with_the_database_restarting)
    payload = ticket_data()

    JOB.run_batch([_delivery("m-7", payload, retries=retries)])

    assert republished.calls == [
        {
            "args": (payload,),
            "kwargs": {},
            "task_id": "m-7",
            "countdown": countdown,
            "retries": retries + 1,
            "queue": None,
        }
    ]
    assert not InboundFailure.objects.exists()
    assert not Ticket.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_batch_stopped_by_its_soft_time_limit_records_every_message_as_time_limit_exceeded(tenant, monkeypatch):
    runs: list[int] = []

    def intake_overrunning(*, messages, **_kwargs):
        runs.append(len(messages))
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(tickets.tasks, "tickets_intake", intake_overrunning)

    JOB.run_batch([_delivery("m-1", ticket_data()), _delivery("m-2", ticket_data())])

    assert runs == [2]
    assert sorted(InboundFailure.objects.values_list("message_id", "error_code", "error")) == [
        ("m-1", "time_limit_exceeded", f"stopped by the soft time limit ({app.conf.task_soft_time_limit} s)"),
        ("m-2", "time_limit_exceeded", f"stopped by the soft time limit ({app.conf.task_soft_time_limit} s)"),
    ]
    assert not Ticket.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_soft_time_limit_while_running_a_failed_batch_one_at_a_time_stops_there_and_records_the_rest(
    tenant, monkeypatch
):
    runs: list[int] = []

    def intake(*, messages, **_kwargs):
        runs.append(len(messages))
        if len(messages) > 1:
            raise RuntimeError("a bug one message trips")
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(tickets.tasks, "tickets_intake", intake)

    JOB.run_batch([_delivery(f"m-{i}", ticket_data()) for i in range(3)])

    # The whole batch, then the first message alone; the others are not run at all.
    assert runs == [3, 1]
    assert sorted(InboundFailure.objects.values_list("message_id", "error_code")) == [
        ("m-0", "time_limit_exceeded"),
        ("m-1", "time_limit_exceeded"),
        ("m-2", "time_limit_exceeded"),
    ]
