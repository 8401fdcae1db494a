"""Upstream services and our worker declare the inbound queues identically.

RabbitMQ refuses (PRECONDITION_FAILED) to re-declare a queue with other
arguments, so whoever declares a contract queue first, the auth service's
plain Celery client or our worker, the other must still be able to use it.
"""

from __future__ import annotations

import pytest
from kombu import Connection

from role.models import Role
from role.tests.factories import role_data
from workflow_api.core.messaging import INBOUND_QUEUES
from workflow_api.testing.worker import purge, running_worker, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.xdist_group("broker"), pytest.mark.django_db(transaction=True)]


def _publish_to_every_inbound_queue(upstream, first_role_id: int) -> set[int]:
    # A role message on every queue: the worker runs a message by its task
    # name whatever queue it came from, so each one shows up as a role row.
    role_ids = set()
    for offset, queue in enumerate(INBOUND_QUEUES):
        role_id = first_role_id + offset
        upstream.send_task("role.tasks.sync_role", args=[role_data(role_id=role_id)], queue=queue)
        role_ids.add(role_id)
    return role_ids


def test_a_plain_celery_client_can_publish_to_every_inbound_queue_before_and_after_our_worker_declares_it(
    broker_url, upstream
):
    with Connection(broker_url) as conn:
        channel = conn.channel()
        for queue in INBOUND_QUEUES:
            channel.queue_delete(queue)
            channel.exchange_delete(queue)
    purge(broker_url)

    before = _publish_to_every_inbound_queue(upstream, 100)
    with running_worker(broker_url) as worker:
        wait_until(lambda: set(Role.objects.values_list("role_id", flat=True)) == before)
        after = _publish_to_every_inbound_queue(upstream, 200)
        wait_until(lambda: set(Role.objects.values_list("role_id", flat=True)) == before | after)

    assert not any("PRECONDITION_FAILED" in line for line in worker.output)
