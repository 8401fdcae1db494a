"""At-least-once intake under a crashing worker: nothing lost, nothing doubled, poison kept aside.

A plain Celery client (as the helpdesk) publishes a shuffled batch of valid
tickets, re-sent copies of some of them (identical and edited) and poison
messages. A real worker is SIGKILLed twice mid-stream and restarted. Every
message acknowledged only after its commit means a killed worker's messages
are delivered again; the engine must converge anyway. Then the outbox relay
publishes the notifications, which are counted on the real queues.
"""

from __future__ import annotations

import json
import random
import sys
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count
from kombu import Connection

from role.models import RoundRobinPointer
from task.models import Task, TaskItem, TaskItemHistory
from task.tests.factories import Setup, published_setup
from tickets.models import AllocationState, Ticket
from tickets.tests.factories import ticket_data
from workflow_api.core.messaging import TICKET_QUEUE, contract_queue, dead_letter_queue_name
from workflow_api.core.models import InboundFailure, OutboxMessage, Tenant
from workflow_api.core.outbox import outbox_relay
from workflow_api.testing.worker import (
    WorkerProcess,
    drain,
    purge,
    queue_ready,
    upstream_client,
    upstream_client_close,
    wait_until,
)
from workflow_api.testing.worker import test_database_url as database_url_of_this_run

pytestmark = [
    pytest.mark.broker,
    pytest.mark.xdist_group("broker"),
    pytest.mark.django_db(transaction=True),
]

RECEIVE_TICKET = "tickets.tasks.receive_ticket"
ASSIGNMENT = "notifications.send_assignment_notification"
VALID = 300
IDENTICAL_COPIES = 30
EDITED_COPIES = 30
# Later than the example ticket's update_date: an edit wins whatever order it arrives in.
EDITED_AT = "2027-03-04T12:30:00+00:00"
LOST_PROCESS_TICKETS = 800


def _poison(routing: dict[str, str]) -> list[Any]:
    """Ten messages that can never become a ticket: not a dict, no usable number, wrong types."""
    return [
        "not a dict",
        ["a", "list"],
        42,
        None,
        {**routing, "subject": "no ticket number at all"},
        {**routing, "ticket_number": "  ", "ticket_id": None, "id": ""},
        {**routing, "ticket_number": 3.5},
        {**routing, "ticket_number": ["TXLIST"]},
        ticket_data(ticket_number="TXPOISON-PRIORITY", priority="Whenever", **routing),
        ticket_data(ticket_number="TXPOISON-DATE", update_date="yesterday", **routing),
    ]


def _batch(setup: Setup) -> tuple[list[tuple[str, Any]], dict[str, dict[str, Any]], Counter[str], set[str]]:
    """(message id, ticket_data) pairs shuffled, the final snapshot per number, copies per number, poison ids."""
    workflow = setup.workflow
    routing = {"department": workflow.department, "category": workflow.category, "sub_category": workflow.sub_category}
    originals = [ticket_data(**routing) for _ in range(VALID)]
    rng = random.Random(20270304)
    resent = rng.sample(originals, IDENTICAL_COPIES + EDITED_COPIES)
    edited = [
        {**original, "subject": f"{original['subject']} (edited)", "update_date": EDITED_AT}
        for original in resent[IDENTICAL_COPIES:]
    ]
    valid = [*originals, *[dict(original) for original in resent[:IDENTICAL_COPIES]], *edited]
    final = {payload["ticket_number"]: payload for payload in originals}
    final.update({payload["ticket_number"]: payload for payload in edited})
    copies = Counter(payload["ticket_number"] for payload in valid)
    poison = [(f"poison-{i}-{uuid.uuid4()}", payload) for i, payload in enumerate(_poison(routing))]
    messages = [(str(uuid.uuid4()), payload) for payload in valid] + poison
    rng.shuffle(messages)
    return messages, final, copies, {message_id for message_id, _ in poison}


def _done(broker_url: str, expected_poison: set[str]) -> bool:
    failed = set(InboundFailure.objects.filter(dead_lettered=True).values_list("message_id", flat=True))
    return (
        Ticket.objects.count() == VALID
        and Task.objects.count() == VALID
        and failed >= expected_poison
        and queue_ready(broker_url, TICKET_QUEUE) == 0
    )


def _kill_when_stored(worker: WorkerProcess, stored: int) -> int:
    """SIGKILL the worker (its whole process group) once `stored` tickets are committed; returns the count then."""
    wait_until(lambda: Ticket.objects.count() >= stored, timeout=40, interval=0.02)
    worker.kill()
    return Ticket.objects.count()


def test_a_batch_with_duplicates_and_poison_survives_two_sigkills_with_one_task_per_ticket_and_every_notification(
    tenant: Tenant, postgres: None, broker_url: str
):
    setup = published_setup(tenant=tenant, owner_users=(101, 102, 103))
    outbound = (settings.INAPP_NOTIFICATION_QUEUE, settings.TICKET_STATUS_QUEUE)
    with Connection(broker_url) as conn:
        for name in outbound:
            contract_queue(name)(conn.default_channel).declare()
    purge(broker_url)
    purge(broker_url, outbound)

    messages, final, copies, poison_ids = _batch(setup)
    client = upstream_client(broker_url)
    try:
        for message_id, payload in messages:
            client.send_task(RECEIVE_TICKET, args=[payload], queue=TICKET_QUEUE, task_id=message_id)
    finally:
        upstream_client_close(client)
    assert queue_ready(broker_url, TICKET_QUEUE) == len(messages)

    killed_at = []
    workers = [WorkerProcess(broker_url, concurrency=2) for _ in range(3)]
    try:
        for worker, stored in zip(workers, (VALID // 3, 2 * VALID // 3), strict=False):
            worker.start()
            killed_at.append(_kill_when_stored(worker, stored))
        last = workers[-1].start()
        wait_until(lambda: _done(broker_url, poison_ids), timeout=60, interval=0.2)
        last.stop()
    except BaseException:
        # The workers' own logs are what explain a failed expectation.
        for worker in workers:
            sys.stderr.write("---- worker output ----\n" + "".join(worker.output[-100:]))
        raise
    finally:
        for worker in workers:
            worker.kill()

    # The kills really happened mid-stream, and a graceful stop left nothing behind.
    assert all(0 < stored < VALID for stored in killed_at), killed_at
    assert queue_ready(broker_url, TICKET_QUEUE) == 0

    # Every valid ticket: one Ticket, one Task, with its newest snapshot; no delivery lost.
    tickets = {ticket.ticket_number: ticket for ticket in Ticket.objects.all()}
    assert set(tickets) == set(final)
    assert {n: t.snapshot["subject"] for n, t in tickets.items()} == {n: p["subject"] for n, p in final.items()}
    assert {t.allocation_state for t in tickets.values()} == {AllocationState.ALLOCATED}
    short = {n: (t.delivery_count, copies[n]) for n, t in tickets.items() if t.delivery_count < copies[n]}
    assert short == {}
    assert sorted(Task.objects.values_list("ticket__ticket_number", flat=True)) == sorted(final)

    # Every task holds exactly its start step's item, created once, with its history.
    per_task = Task.objects.annotate(n=Count("items")).values_list("n", flat=True)
    assert set(per_task) == {1}
    items = list(TaskItem.objects.all())
    assert {(item.step_key, item.status, item.origin) for item in items} == {("triage", "new", "system")}
    assert {item.user_id for item in items} <= {101, 102, 103}
    assert TaskItemHistory.objects.count() == len(items)

    # Poison: recorded and dead-lettered, and nothing else failed. A poison message
    # being handled when the worker died is handled again, so count distinct ids.
    failures = list(InboundFailure.objects.all())
    assert {failure.message_id for failure in failures} == poison_ids
    assert {failure.error_code for failure in failures} == {"invalid_ticket"}
    assert {f.message_id for f in failures if f.dead_lettered} == poison_ids
    kept = drain(broker_url, dead_letter_queue_name(TICKET_QUEUE), timeout=1)
    assert {message.headers["id"] for message in kept} == poison_ids
    assert {message.headers["task"] for message in kept} == {RECEIVE_TICKET}
    by_id = dict(messages)
    assert all(json.loads(message.body)[0] == [by_id[message.headers["id"]]] for message in kept)

    # Outbound: one assignment notification per committed item, each on the real queue once.
    rows = list(OutboxMessage.objects.all())
    assert len(rows) == len(items)
    assert {row.dedupe_key for row in rows} == {f"assignment:{item.pk}" for item in items}
    result = outbox_relay()
    assert (result.sent, result.failed) == (len(items), False)
    received = drain(broker_url, settings.INAPP_NOTIFICATION_QUEUE, expect=len(items), timeout=10)
    received += drain(broker_url, settings.INAPP_NOTIFICATION_QUEUE, timeout=0.5)
    ids = Counter(message.headers["id"] for message in received)
    assert set(ids) == {str(row.message_id) for row in rows}
    assert {message.headers["task"] for message in received} == {ASSIGNMENT}
    # The title is the subject when the task started: the original's, or the edit's if it came first.
    holder = dict(TaskItem.objects.values_list("task__ticket__ticket_number", "user_id"))
    titles = {number: {ticket_data()["subject"], payload["subject"]} for number, payload in final.items()}
    bodies = [json.loads(message.body) for message in received]
    assert all(kwargs == {} for _args, kwargs, _embed in bodies)
    assert sorted((user, number, role) for (user, number, _title, role), _kw, _embed in bodies) == sorted(
        (user, number, setup.owner.name) for number, user in holder.items()
    )
    assert all(title in titles[number] for (_user, number, title, _role), _kw, _embed in bodies)
    assert drain(broker_url, settings.TICKET_STATUS_QUEUE, timeout=0.5) == []


def _waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        (waiting,) = cursor.fetchone()
    return int(waiting)


def test_pool_processes_killed_mid_batch_give_their_messages_back_and_the_same_worker_finishes_them(
    tenant: Tenant, postgres: None, broker_url: str
):
    setup = published_setup(tenant=tenant, owner_users=(101, 102, 103))
    workflow = setup.workflow
    routing = {"department": workflow.department, "category": workflow.category, "sub_category": workflow.sub_category}
    purge(broker_url)
    client = upstream_client(broker_url)
    try:
        for _ in range(LOST_PROCESS_TICKETS):
            client.send_task(RECEIVE_TICKET, args=[ticket_data(**routing)], queue=TICKET_QUEUE)
    finally:
        upstream_client_close(client)
    pointer = RoundRobinPointer.objects.create(tenant=tenant, role=setup.owner)

    worker = WorkerProcess(broker_url, concurrency=2)
    try:
        # Holding the start role's round-robin pointer stops every batch inside its
        # transaction, so each kill surely lands in the middle of one.
        with psycopg.connect(database_url_of_this_run()) as holder:
            holder.execute("SELECT 1 FROM role_roundrobinpointer WHERE id = %s FOR UPDATE", [pointer.pk])
            worker.start()
            # The first two messages went to the two processes as batches of one.
            wait_until(lambda: _waiting_on_a_lock() == 2, timeout=40, interval=0.05)
            worker.kill_pool_processes()
            # The new processes took the batches that gathered meanwhile (the killed
            # processes' database sessions still wait, until the lock is released).
            wait_until(lambda: _waiting_on_a_lock() == 4, timeout=40, interval=0.05)
            worker.kill_pool_processes()
            holder.rollback()
        wait_until(
            lambda: Task.objects.count() == LOST_PROCESS_TICKETS and queue_ready(broker_url, TICKET_QUEUE) == 0,
            timeout=60,
            interval=0.2,
        )
        assert worker.process is not None
        assert worker.process.poll() is None, "the worker itself kept running"
        log = "".join(worker.output)
        # A lost batch of one goes back to the queue; a bigger one runs again message by message.
        assert "pool process lost; re-queueing its message" in log
        assert "batch stopped (WorkerLostError); running its messages again one at a time" in log
    except BaseException:
        sys.stderr.write("---- worker output ----\n" + "".join(worker.output[-100:]))
        raise
    finally:
        worker.stop()

    assert Ticket.objects.count() == Task.objects.count() == TaskItem.objects.count() == LOST_PROCESS_TICKETS
    # Nothing of the lost batches was recorded as a failure: their messages were run again.
    assert not InboundFailure.objects.exists()
