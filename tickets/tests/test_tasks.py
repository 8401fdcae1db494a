"""The receive_ticket job: counting outcomes, and the real path RabbitMQ -> worker -> database.

The broker tests share one real `celery worker` process per module and publish
with a plain Celery client, exactly as the helpdesk does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from audit.models import AuditEvent
from tickets.models import Ticket
from tickets.tasks import receive_ticket_job
from tickets.tests.factories import example_ticket, ticket_data
from workflow_api.core.messaging import TICKET_QUEUE, dead_letter_queue_name
from workflow_api.core.models import InboundFailure, MessageCounter
from workflow_api.testing.services import require_broker
from workflow_api.testing.worker import WorkerProcess, drain, purge, running_worker, wait_until

RECEIVE_TICKET = "tickets.tasks.receive_ticket"


def _counts() -> dict[str, int]:
    return dict(MessageCounter.objects.filter(task_name=RECEIVE_TICKET).values_list("outcome", "count"))


# --- The job, run in-process ------------------------------------------------------------


@pytest.mark.django_db
def test_the_job_counts_created_updated_and_duplicate_deliveries(tenant):
    payload = ticket_data(ticket_number="TX1")

    receive_ticket_job.apply(args=[payload])
    receive_ticket_job.apply(args=[payload])
    receive_ticket_job.apply(args=[{**payload, "subject": "Edited"}])

    # No workflow matches here, so each delivery also tries allocation and leaves the ticket unallocated.
    assert _counts() == {"created": 1, "duplicate": 1, "updated": 1, "unallocated": 3}
    assert Ticket.objects.count() == 1


@pytest.mark.django_db
def test_the_job_passes_its_message_id_to_the_audit_trail(tenant):
    receive_ticket_job.apply(args=[ticket_data()], task_id="hdts-msg-9")

    assert AuditEvent.objects.get(action="ticket.received").correlation_id == "hdts-msg-9"


@pytest.mark.django_db
def test_a_malformed_ticket_is_recorded_as_an_inbound_failure_with_its_body(tenant):
    receive_ticket_job.apply(args=[ticket_data(ticket_number="TX2", priority="Whenever")], task_id="bad-1")

    failure = InboundFailure.objects.get()
    assert (failure.task_name, failure.message_id, failure.error_code) == (RECEIVE_TICKET, "bad-1", "invalid_ticket")
    assert "priority" in failure.error
    assert failure.body["args"][0]["priority"] == "Whenever"
    assert not Ticket.objects.exists()
    assert _counts() == {}


# --- A real worker behind RabbitMQ -------------------------------------------------------


@pytest.fixture(scope="module")
def ticket_worker(django_db_setup, django_db_blocker) -> Iterator[WorkerProcess]:
    broker_url = require_broker()
    with django_db_blocker.unblock():
        purge(broker_url)
        with running_worker(broker_url) as worker:
            yield worker


@pytest.mark.usefixtures("ticket_worker")
@pytest.mark.broker
@pytest.mark.xdist_group("broker")
@pytest.mark.django_db(transaction=True)
def test_a_ticket_published_twice_and_a_poison_message_end_in_one_ticket_and_one_dead_letter(upstream, broker_url):
    upstream.send_task(RECEIVE_TICKET, args=[example_ticket()], queue=TICKET_QUEUE)
    upstream.send_task(RECEIVE_TICKET, args=["not a dict"], queue=TICKET_QUEUE)
    upstream.send_task(RECEIVE_TICKET, args=[example_ticket()], queue=TICKET_QUEUE)

    wait_until(lambda: _counts() == {"created": 1, "duplicate": 1, "unallocated": 2})
    failure = wait_until(lambda: InboundFailure.objects.filter(dead_lettered=True).first())

    ticket = Ticket.objects.get()
    assert ticket.snapshot == example_ticket()
    assert ticket.delivery_count == 2
    assert (failure.task_name, failure.queue, failure.error_code) == (RECEIVE_TICKET, TICKET_QUEUE, "invalid_ticket")
    assert failure.body == {"args": ["not a dict"], "kwargs": {}}
    (kept,) = drain(broker_url, dead_letter_queue_name(TICKET_QUEUE), expect=1)
    assert kept.headers["task"] == RECEIVE_TICKET
    assert kept.headers["id"] == failure.message_id
    assert json.loads(kept.body)[0] == ["not a dict"]

    upstream.send_task(RECEIVE_TICKET, args=[ticket_data(ticket_number="TXAFTER")], queue=TICKET_QUEUE)
    wait_until(lambda: Ticket.objects.filter(ticket_number="TXAFTER").exists())
    assert Ticket.objects.count() == 2
