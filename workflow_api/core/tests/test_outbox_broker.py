"""The outbox against a real RabbitMQ: an outage, then delivery exactly once, in order, on the wire."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from kombu import Connection

from audit.services import Actor
from workflow_api.core.messaging import contract_queue
from workflow_api.core.models import OutboxMessage
from workflow_api.core.outbox import BrokerPublisher, outbox_enqueue, outbox_relay, outbox_retry_now
from workflow_api.testing.worker import drain

QUEUE = "inapp-notification-queue"

pytestmark = [
    pytest.mark.broker,
    pytest.mark.xdist_group("broker"),
    pytest.mark.django_db(transaction=True),
]

ASSIGNMENT_ARGS = [21, "TX20261121093015", "Laptop screen flickers after docking", "Asset Manager"]
ESCALATION_KWARGS = {
    "from_user_id": 21,
    "to_user_id": 34,
    "from_ticket_number": "TX20261121093015",
    "to_ticket_number": "TX20261121093015",
    "task_title": "Laptop screen flickers after docking",
    "escalated_from_role": "Asset Manager",
    "escalated_to_role": "IT Lead",
    "escalation_reason": "No answer within the SLA",
    "escalated_by_id": 21,
    "escalated_by_name": "Li Wei",
}
TRANSFER_ARGS = [21, 34, "TX20261121093015", "TX20261121093015", "Laptop", 1, "Ana Reyes", "On leave"]


@pytest.fixture
def empty_queue(broker_url: str) -> str:
    """No notification queue at all: the publisher must declare it as a Celery consumer would."""
    with Connection(broker_url) as conn:
        conn.default_channel.queue_delete(QUEUE)
    return broker_url


def _enqueue_three() -> list[OutboxMessage]:
    with transaction.atomic():
        outbox_enqueue(task_name="notifications.send_assignment_notification", args=ASSIGNMENT_ARGS)
        outbox_enqueue(task_name="notifications.send_escalation_notification", kwargs=ESCALATION_KWARGS)
        outbox_enqueue(task_name="notifications.send_task_transfer_notification", args=TRANSFER_ARGS)
    return list(OutboxMessage.objects.order_by("id"))


class Counting:
    def __init__(self, publisher: Any) -> None:
        self.publisher = publisher
        self.calls = 0

    def __call__(self, message: OutboxMessage) -> None:
        self.calls += 1
        self.publisher(message)


def test_messages_survive_a_broker_outage_and_are_then_delivered_once_in_order(empty_queue, closed_broker_url):
    rows = _enqueue_three()

    # The broker is down.
    with BrokerPublisher(closed_broker_url, connect_timeout=1) as unreachable:
        down = Counting(unreachable)
        result = outbox_relay(publisher=down)
        assert result.failed
        assert result.sent == 0

        first, *later = OutboxMessage.objects.order_by("id")
        assert first.sent_at is None
        assert first.attempts == 1
        assert first.last_error
        assert first.next_attempt_at > timezone.now()
        assert [(m.attempts, m.sent_at) for m in later] == [(0, None), (0, None)]

        # Backing off: not even tried again yet, and the others keep waiting behind it.
        assert outbox_relay(publisher=down).sent == 0
        assert down.calls == 1

    # The broker is back: the engine's own publisher (the Celery app's connection).
    outbox_retry_now(message_ids=[first.id], actor=Actor.system())
    result = outbox_relay()
    assert (result.sent, result.failed) == (3, False)
    assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 0

    received = drain(empty_queue, QUEUE, expect=3, timeout=10)
    assert [m.headers["task"] for m in received] == [row.task_name for row in rows]
    assert [m.headers["id"] for m in received] == [str(row.message_id) for row in rows]
    assert [m.properties["correlation_id"] for m in received] == [str(row.message_id) for row in rows]
    assert all(m.content_type == "application/json" for m in received)
    assert all(m.properties["delivery_mode"] == 2 for m in received)  # persistent
    bodies = [m.decode() for m in received]
    assert [(args, kwargs) for args, kwargs, _embed in bodies] == [
        (ASSIGNMENT_ARGS, {}),
        ([], ESCALATION_KWARGS),
        (TRANSFER_ARGS, {}),
    ]

    # The queue was declared exactly as the notification service's Celery declares it
    # (RabbitMQ refuses a re-declaration with other arguments).
    with Connection(empty_queue) as conn:
        contract_queue(QUEUE)(conn.default_channel).declare()

    # Nothing is ever sent twice.
    assert outbox_relay().sent == 0
    assert drain(empty_queue, QUEUE, timeout=0.5) == []


def test_a_publisher_for_an_injected_broker_url_delivers_there(empty_queue):
    rows = _enqueue_three()

    with BrokerPublisher(empty_queue) as publisher:
        assert outbox_relay(publisher=publisher).sent == 3

    received = drain(empty_queue, QUEUE, expect=3, timeout=10)
    assert [m.headers["id"] for m in received] == [str(row.message_id) for row in rows]
