"""The transactional outbox with a stand-in publisher (the real broker is in test_outbox_broker.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connections, transaction
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from audit.services import Actor
from workflow_api.celery import app
from workflow_api.core.models import OutboxMessage
from workflow_api.core.outbox import _ADVISORY_LOCK_KEY, outbox_enqueue, outbox_relay, outbox_retry_now
from workflow_api.core.tests.factories import OutboxMessageFactory

ASSIGNMENT = "notifications.send_assignment_notification"
STATUS = "send_ticket_status"

delivered: list[tuple[str, list[Any], dict[str, Any]]] = []


@app.task(name="core_tests.record_delivery", bind=True)
def record_delivery_job(self, *args: Any, **kwargs: Any) -> None:
    """Remembers what it was called with (test only)."""
    delivered.append((self.request.id, list(args), kwargs))


@app.task(name="core_tests.cascade")
def cascade_job(ticket_number: str) -> None:
    """Like a job that changes state and queues a notification of it (test only)."""
    with transaction.atomic():
        outbox_enqueue(task_name="core_tests.record_delivery", args=[ticket_number], queue="core-tests")


@pytest.fixture(autouse=True)
def _clear_deliveries():
    delivered.clear()


class Recorder:
    """A publisher that remembers what it was given, and can be told to fail like a broker that is down."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.published: list[OutboxMessage] = []
        self.calls = 0

    def __call__(self, message: OutboxMessage) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        self.published.append(message)


def _enqueue_status(ticket_number: str, status: str = "In Progress", **kwargs: Any) -> None:
    outbox_enqueue(task_name=STATUS, args=[ticket_number, status], **kwargs)


def _enqueue_then_fail(enqueue: Callable[[], None]) -> None:
    """A service whose change fails after it queued its message."""

    def service() -> None:
        with transaction.atomic():
            enqueue()
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError, match="the change failed"):
        service()


def test_a_message_enqueued_in_a_rolled_back_transaction_is_never_sent(db):
    _enqueue_then_fail(lambda: _enqueue_status("TX1"))
    recorder = Recorder()

    result = outbox_relay(publisher=recorder)

    assert not OutboxMessage.objects.exists()
    assert result.sent == 0
    assert recorder.calls == 0


def test_committed_messages_are_sent_once_in_id_order(db):
    with transaction.atomic():
        for number in ("TX1", "TX2", "TX3"):
            _enqueue_status(number)
    recorder = Recorder()

    first = outbox_relay(publisher=recorder)
    again = outbox_relay(publisher=recorder)

    rows = list(OutboxMessage.objects.order_by("id"))
    assert first.sent == 3
    assert not first.failed
    assert again.sent == 0
    assert [m.id for m in recorder.published] == [row.id for row in rows]
    assert [m.args[0] for m in recorder.published] == ["TX1", "TX2", "TX3"]
    assert all(row.sent_at is not None and row.attempts == 1 for row in rows)


def test_the_queue_defaults_to_the_contracts_route(db):
    outbox_enqueue(task_name=ASSIGNMENT, args=[21, "TX1", "Laptop", "Asset Manager"])
    _enqueue_status("TX1")

    queues = dict(OutboxMessage.objects.values_list("task_name", "queue"))

    assert queues == {ASSIGNMENT: "inapp-notification-queue", STATUS: "ticket_status-default"}


def test_a_task_without_a_route_needs_an_explicit_queue(db):
    with pytest.raises(KeyError):
        outbox_enqueue(task_name="nobody.listens")


def test_a_dedupe_key_makes_one_cause_one_message(db):
    with transaction.atomic():
        _enqueue_status("TX1", dedupe_key="ticket:TX1:in-progress")
        _enqueue_status("TX1", dedupe_key="ticket:TX1:in-progress")
    _enqueue_status("TX1", dedupe_key="ticket:TX1:in-progress")
    _enqueue_status("TX1", "Resolved", dedupe_key="ticket:TX1:resolved")
    recorder = Recorder()

    outbox_relay(publisher=recorder)

    assert [m.args for m in recorder.published] == [["TX1", "In Progress"], ["TX1", "Resolved"]]


def test_a_failed_publish_backs_off_and_later_messages_wait_behind_it(db):
    for number in ("TX1", "TX2", "TX3"):
        _enqueue_status(number)
    first, second, third = OutboxMessage.objects.order_by("id")
    down = Recorder(down=True)

    before = timezone.now()
    result = outbox_relay(publisher=down)

    assert result.failed
    assert result.sent == 0
    first.refresh_from_db()
    assert first.sent_at is None
    assert first.attempts == 1
    assert first.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert before + timedelta(seconds=1) <= first.next_attempt_at <= timezone.now() + timedelta(seconds=1)
    for later in (second, third):
        later.refresh_from_db()
        assert (later.attempts, later.last_error, later.sent_at) == (0, "", None)

    # Still backing off: nothing is tried, not even the later messages.
    assert outbox_relay(publisher=down).sent == 0
    assert down.calls == 1

    outbox_retry_now(message_ids=[first.id], actor=Actor.system())
    outbox_relay(publisher=down)
    first.refresh_from_db()
    assert first.attempts == 2
    assert first.next_attempt_at >= timezone.now() + timedelta(seconds=1)  # 2 s now

    outbox_retry_now(message_ids=[first.id], actor=Actor.system())
    back = Recorder()
    assert outbox_relay(publisher=back).sent == 3
    assert [m.args[0] for m in back.published] == ["TX1", "TX2", "TX3"]
    first.refresh_from_db()
    assert (first.attempts, first.last_error) == (3, "")


def test_the_backoff_is_capped(db):
    message = OutboxMessageFactory.create(attempts=20)

    outbox_relay(publisher=Recorder(down=True))

    message.refresh_from_db()
    assert message.next_attempt_at <= timezone.now() + timedelta(seconds=300)


def test_retry_now_leaves_sent_messages_alone(db):
    pending = OutboxMessageFactory.create(next_attempt_at=timezone.now() + timedelta(minutes=5), attempts=4)
    sent_at = timezone.now() - timedelta(hours=1)
    sent = OutboxMessageFactory.create(sent_at=sent_at, next_attempt_at=sent_at)

    assert outbox_retry_now(message_ids=[pending.id, sent.id], actor=Actor(id=7, name="Ops Person")) == 1

    pending.refresh_from_db()
    sent.refresh_from_db()
    assert pending.next_attempt_at <= timezone.now()
    assert pending.attempts == 4
    assert sent.next_attempt_at == sent_at


def test_retry_now_is_audited_with_the_operator_as_actor(db):
    pending = OutboxMessageFactory.create(next_attempt_at=timezone.now() + timedelta(minutes=5), attempts=2)

    outbox_retry_now(message_ids=[pending.id], actor=Actor(id=7, name="Ops Person"))

    [event] = AuditEvent.objects.filter(action=AuditAction.OUTBOX_RETRIED)
    assert (event.actor_id, event.actor_name) == (7, "Ops Person")
    assert event.target_type == "outbox_message"
    assert event.target_id == str(pending.id)


def test_a_batch_size_limits_one_run(db):
    OutboxMessageFactory.create_batch(3)
    recorder = Recorder()

    assert outbox_relay(publisher=recorder, batch_size=2).sent == 2
    assert outbox_relay(publisher=recorder, batch_size=2).sent == 1


def test_only_one_relay_publishes_at_a_time(postgres):
    OutboxMessageFactory.create()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_ADVISORY_LOCK_KEY])
        recorder = Recorder()

        result = outbox_relay(publisher=recorder)

        assert result.locked_out
        assert recorder.calls == 0
    finally:
        # Unlock before closing: a closed session's locks are freed only once its backend exits.
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_ADVISORY_LOCK_KEY])
        other.close()
    assert outbox_relay(publisher=Recorder()).sent == 1


@override_settings(CELERY_IN_PROCESS=True)
def test_in_process_a_known_task_runs_right_after_commit(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbox_enqueue(task_name="core_tests.record_delivery", args=["TX1"], kwargs={"status": "x"}, queue="q")
        assert delivered == []

    row = OutboxMessage.objects.get()
    assert delivered == [(str(row.message_id), ["TX1"], {"status": "x"})]
    assert row.sent_at is not None


@override_settings(CELERY_IN_PROCESS=True)
def test_in_process_an_unknown_task_is_logged_and_marked_sent(db, django_capture_on_commit_callbacks, caplog):
    caplog.set_level("INFO", logger="workflow_api.core.outbox")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbox_enqueue(task_name=ASSIGNMENT, args=[21, "TX1", "Laptop", "Asset Manager"])

    row = OutboxMessage.objects.get()
    assert row.sent_at is not None
    (record,) = [r for r in caplog.records if r.name == "workflow_api.core.outbox"]
    assert record.task_name == ASSIGNMENT
    assert record.task_args == [21, "TX1", "Laptop", "Asset Manager"]
    assert record.outbox_message_id == str(row.message_id)


@override_settings(CELERY_IN_PROCESS=True)
def test_in_process_nothing_is_delivered_before_commit_or_after_rollback(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _enqueue_then_fail(lambda: outbox_enqueue(task_name="core_tests.record_delivery", args=["TX1"], queue="q"))

    assert delivered == []
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
@override_settings(CELERY_IN_PROCESS=True)
def test_in_process_a_job_that_queues_a_message_gets_each_delivered_once():
    with transaction.atomic():
        outbox_enqueue(task_name="core_tests.cascade", args=["TX9"], queue="q")

    assert [args for _, args, _ in delivered] == [["TX9"]]
    assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 0
    assert OutboxMessage.objects.count() == 2


def test_the_relay_command_refuses_a_zero_interval(db):
    with pytest.raises(CommandError, match="--interval"):
        call_command("outbox_relay", "--interval", "0")


def test_the_relay_job_relays(db, monkeypatch):
    from workflow_api.core import outbox, tasks

    recorder = Recorder()
    monkeypatch.setattr(outbox, "default_publisher", lambda: recorder)
    OutboxMessageFactory.create_batch(2)

    assert tasks.outbox_relay_job.apply().get() == 2
    assert recorder.calls == 2


@pytest.mark.parametrize("batch_size", ["0", "-1"])
def test_the_relay_command_refuses_a_batch_size_below_one(db, batch_size):
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("outbox_relay", "--batch-size", batch_size)
