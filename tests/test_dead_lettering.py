"""Messages Celery itself cannot handle are kept, not dropped.

Celery acks a body it cannot decode and rejects a task name it does not know;
on a queue without broker-side dead-lettering either would be lost. The
engine's consumer records them and moves them to `<queue>.dlq` first.
"""

from __future__ import annotations

import json

import pytest
from kombu import Connection, Exchange, Producer

from workflow_api.core.messaging import ROLE_SYNC_QUEUE, TICKET_QUEUE, dead_letter_queue_name
from workflow_api.core.models import InboundFailure
from workflow_api.testing.worker import drain, purge, running_worker, upstream_client, wait_until

pytestmark = [
    pytest.mark.broker,
    pytest.mark.xdist_group("broker"),
    pytest.mark.django_db(transaction=True),
]


def _publish_raw(broker_url: str, queue: str, body: bytes, *, content_type: str, headers: dict) -> None:
    with Connection(broker_url) as conn:
        Producer(conn.channel()).publish(
            body,
            exchange=Exchange(queue, type="direct"),
            routing_key=queue,
            content_type=content_type,
            content_encoding="utf-8",
            headers=headers,
        )


def test_an_undecodable_body_and_an_unknown_task_end_in_the_dead_letter_queue(broker_url):
    purge(broker_url)
    with running_worker(broker_url):
        _publish_raw(
            broker_url,
            ROLE_SYNC_QUEUE,
            b"{this is not json",
            content_type="application/json",
            headers={"task": "core.outbox_relay", "id": "bad-json-1", "lang": "py"},
        )
        upstream_client(broker_url).send_task("role.tasks.no_such_task", args=[{"x": 1}], queue=TICKET_QUEUE)

        failures = wait_until(
            lambda: (
                (rows := list(InboundFailure.objects.filter(dead_lettered=True).order_by("id")))
                and len(rows) == 2
                and rows
            )
        )

    by_code = {failure.error_code: failure for failure in failures}
    assert set(by_code) == {"undecodable_message", "unknown_task"}
    assert by_code["undecodable_message"].queue == ROLE_SYNC_QUEUE
    assert by_code["undecodable_message"].body["raw"] == "{this is not json"
    assert by_code["unknown_task"].task_name == "role.tasks.no_such_task"

    [kept_raw] = drain(broker_url, dead_letter_queue_name(ROLE_SYNC_QUEUE), expect=1)
    assert kept_raw.body in (b"{this is not json", "{this is not json")
    assert kept_raw.headers["x-inbound-failure-id"] == by_code["undecodable_message"].id

    [kept_task] = drain(broker_url, dead_letter_queue_name(TICKET_QUEUE), expect=1)
    assert kept_task.headers["task"] == "role.tasks.no_such_task"
    assert json.loads(kept_task.body)[0] == [{"x": 1}]
