"""The role sync jobs: how messages are counted, and the real path RabbitMQ -> worker -> database.

The broker tests share one real `celery worker` process per module (started
once the test database exists) and publish with a plain Celery client, exactly
as the auth service does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from audit.models import AuditEvent
from role.models import Role, RoleMember
from role.tasks import sync_role_job, sync_user_system_role_job
from role.tests.factories import role_data, user_role_data
from workflow_api.core.messaging import ROLE_SYNC_QUEUE, USER_ROLE_SYNC_QUEUE, dead_letter_queue_name
from workflow_api.core.models import InboundFailure, MessageCounter
from workflow_api.testing.services import require_broker
from workflow_api.testing.worker import WorkerProcess, drain, purge, running_worker, wait_until

SYNC_ROLE = "role.tasks.sync_role"
SYNC_USER_ROLE = "role.tasks.sync_user_system_role"


def _counts(task_name: str) -> dict[str, int]:
    return dict(MessageCounter.objects.filter(task_name=task_name).values_list("outcome", "count"))


# --- The jobs, run in-process ------------------------------------------------------


@pytest.mark.django_db
def test_the_role_job_counts_how_each_message_ended(tenant):
    payload = role_data(role_id=12)

    sync_role_job.apply(args=[payload])
    sync_role_job.apply(args=[payload])
    sync_role_job.apply(args=[{**payload, "action": "delete"}])
    sync_role_job.apply(args=[{**payload, "action": "update"}])
    sync_role_job.apply(args=[{**payload, "system": "hdts"}])

    assert _counts(SYNC_ROLE) == {"applied": 2, "duplicate": 1, "ignored_deleted": 1, "ignored_other_system": 1}


@pytest.mark.django_db
def test_the_membership_job_counts_messages_of_other_systems_and_changes_nothing(tenant):
    sync_user_system_role_job.apply(args=[user_role_data(system="hdts")])
    sync_user_system_role_job.apply(args=[user_role_data(system="ams")])

    assert _counts(SYNC_USER_ROLE) == {"ignored_other_system": 2}
    assert not Role.objects.exists()
    assert not RoleMember.objects.exists()


@pytest.mark.django_db
def test_the_job_passes_its_message_id_to_the_audit_trail(tenant):
    sync_role_job.apply(args=[role_data(role_id=12)], task_id="auth-msg-77")

    assert AuditEvent.objects.get().correlation_id == "auth-msg-77"


@pytest.mark.django_db
def test_a_bad_message_is_recorded_as_an_inbound_failure_with_its_body(tenant):
    sync_user_system_role_job.apply(args=[user_role_data(user_id="21")], task_id="bad-1")

    failure = InboundFailure.objects.get()
    assert (failure.task_name, failure.message_id, failure.error_code) == (
        SYNC_USER_ROLE,
        "bad-1",
        "invalid_user_role_message",
    )
    assert "user_id must be an integer" in failure.error
    assert failure.body["args"][0]["user_id"] == "21"
    assert failure.tenant == tenant
    assert not RoleMember.objects.exists()


# --- A real worker behind RabbitMQ -------------------------------------------------


@pytest.fixture(scope="module")
def role_worker(django_db_setup, django_db_blocker) -> Iterator[WorkerProcess]:
    broker_url = require_broker()
    with django_db_blocker.unblock():
        purge(broker_url)
        with running_worker(broker_url) as worker:
            yield worker


@pytest.mark.usefixtures("role_worker")
@pytest.mark.broker
@pytest.mark.xdist_group("broker")
@pytest.mark.django_db(transaction=True)
def test_a_role_published_by_the_auth_service_is_applied_once_even_when_sent_twice(upstream):
    payload = role_data(role_id=12, name="Asset Manager")

    upstream.send_task(SYNC_ROLE, args=[payload], queue=ROLE_SYNC_QUEUE)
    role = wait_until(lambda: Role.objects.filter(role_id=12).first())
    upstream.send_task(SYNC_ROLE, args=[payload], queue=ROLE_SYNC_QUEUE)
    wait_until(lambda: _counts(SYNC_ROLE).get("duplicate") == 1)

    assert role.name == "Asset Manager"
    assert Role.objects.count() == 1
    assert AuditEvent.objects.filter(target_type="role").count() == 1
    assert _counts(SYNC_ROLE) == {"applied": 1, "duplicate": 1}


@pytest.mark.usefixtures("role_worker")
@pytest.mark.broker
@pytest.mark.xdist_group("broker")
@pytest.mark.django_db(transaction=True)
def test_a_membership_before_its_role_is_kept_through_the_worker(upstream):
    upstream.send_task(
        SYNC_USER_ROLE,
        args=[user_role_data(user_system_role_id=340, role_id=12, role_name="Asset Manager")],
        queue=USER_ROLE_SYNC_QUEUE,
    )
    member = wait_until(lambda: RoleMember.objects.select_related("role").filter(user_system_role_id=340).first())
    assert (member.role.role_id, member.role.provisional) == (12, True)

    upstream.send_task(SYNC_ROLE, args=[role_data(role_id=12, name="Asset Manager")], queue=ROLE_SYNC_QUEUE)

    wait_until(lambda: Role.objects.filter(role_id=12, provisional=False).exists())
    assert Role.objects.count() == 1


@pytest.mark.usefixtures("role_worker")
@pytest.mark.broker
@pytest.mark.xdist_group("broker")
@pytest.mark.django_db(transaction=True)
def test_poison_messages_are_kept_dead_lettered_and_the_worker_goes_on(upstream, broker_url):
    upstream.send_task(SYNC_ROLE, args=["not a dict"], queue=ROLE_SYNC_QUEUE)
    upstream.send_task(SYNC_ROLE, args=[role_data(role_id="abc")], queue=ROLE_SYNC_QUEUE)

    failures = wait_until(
        lambda: (
            (rows := list(InboundFailure.objects.filter(dead_lettered=True).order_by("id"))) and len(rows) == 2 and rows
        )
    )
    not_a_dict, bad_id = failures
    assert (not_a_dict.task_name, not_a_dict.queue, not_a_dict.error_code) == (
        SYNC_ROLE,
        ROLE_SYNC_QUEUE,
        "invalid_role_message",
    )
    assert not_a_dict.body == {"args": ["not a dict"], "kwargs": {}}
    assert "role_data must be a JSON object" in not_a_dict.error
    assert bad_id.body["args"][0]["role_id"] == "abc"
    assert "role_id must be an integer" in bad_id.error

    kept = drain(broker_url, dead_letter_queue_name(ROLE_SYNC_QUEUE), expect=2)
    assert [message.headers["task"] for message in kept] == [SYNC_ROLE, SYNC_ROLE]
    assert sorted(message.headers["id"] for message in kept) == sorted(f.message_id for f in failures)
    assert [json.loads(message.body)[0] for message in kept] == [["not a dict"], [bad_id.body["args"][0]]]

    upstream.send_task(SYNC_ROLE, args=[role_data(role_id=13, name="Budget Manager")], queue=ROLE_SYNC_QUEUE)
    wait_until(lambda: Role.objects.filter(role_id=13).exists())
    assert not Role.objects.exclude(role_id=13).exists()
