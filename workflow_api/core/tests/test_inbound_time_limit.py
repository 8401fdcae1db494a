"""An inbound job stopped by its soft time limit is kept (InboundFailure + dead letter), not acknowledged and lost."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction

from role.models import Role
from role.services import role_sync
from role.tests.factories import role_data
from workflow_api.celery import app
from workflow_api.core.inbound import InboundJob
from workflow_api.core.messaging import ROLE_SYNC_QUEUE, dead_letter_queue_name
from workflow_api.core.models import InboundFailure, Tenant
from workflow_api.testing.worker import (
    drain,
    purge,
    queue_ready,
    running_worker,
    upstream_client,
    upstream_client_close,
    wait_until,
)
from workflow_api.testing.worker import test_database_url as database_url_of_this_run

SYNC_ROLE = "role.tasks.sync_role"


@app.task(bind=True, base=InboundJob, name="core_tests.overrunning_inbound", soft_time_limit=7)
def overrunning_inbound_job(self: InboundJob, slug: str) -> str:
    """Writes a tenant, then is interrupted as the pool interrupts a job at its soft limit (test only)."""
    with transaction.atomic():
        Tenant.objects.create(slug=slug, name=slug)
        raise SoftTimeLimitExceeded()


@pytest.mark.django_db
def test_a_job_stopped_by_its_soft_time_limit_is_recorded_and_its_work_rolled_back():
    result = overrunning_inbound_job.apply(args=["half-done"], task_id="slow-1")

    assert result.successful()
    assert result.result is None
    failure = InboundFailure.objects.get()
    assert (failure.task_name, failure.message_id, failure.error_code) == (
        "core_tests.overrunning_inbound",
        "slow-1",
        "time_limit_exceeded",
    )
    assert failure.error == "stopped by the soft time limit (7 s)"
    assert failure.body == {"args": ["half-done"], "kwargs": {}}
    assert not Tenant.objects.filter(slug="half-done").exists()


# --- A real worker, a real soft time limit ---------------------------------------


@contextmanager
def _row_locked_by_another_session(table: str, role_id: int) -> Iterator[None]:
    """Another session holds the row's lock, so a job syncing that role waits for as long as the test wants."""
    with psycopg.connect(database_url_of_this_run()) as other_session:
        other_session.execute(f"SELECT id FROM {table} WHERE role_id = %s FOR UPDATE", [role_id])
        try:
            yield
        finally:
            other_session.rollback()


@pytest.mark.broker
@pytest.mark.postgres
@pytest.mark.xdist_group("broker")
@pytest.mark.django_db(transaction=True)
def test_in_a_worker_a_job_past_its_soft_time_limit_is_dead_lettered_and_acknowledged(postgres, broker_url, tenant):
    role_sync(payload=role_data(role_id=12, name="Asset Manager"))
    purge(broker_url)
    upstream = upstream_client(broker_url)
    try:
        with (
            running_worker(broker_url, extra_env={"CELERY_TASK_SOFT_TIME_LIMIT": "2", "CELERY_TASK_TIME_LIMIT": "60"}),
            _row_locked_by_another_session(Role._meta.db_table, 12),
        ):
            upstream.send_task(
                SYNC_ROLE,
                args=[role_data(role_id=12, name="Renamed", action="update")],
                queue=ROLE_SYNC_QUEUE,
                task_id="slow-sync-1",
            )
            failure = wait_until(
                lambda: InboundFailure.objects.filter(message_id="slow-sync-1", dead_lettered=True).first(),
                timeout=60,
            )
    finally:
        upstream_client_close(upstream)

    assert (failure.task_name, failure.queue, failure.error_code) == (SYNC_ROLE, ROLE_SYNC_QUEUE, "time_limit_exceeded")
    assert failure.error == "stopped by the soft time limit (2 s)"
    kept = drain(broker_url, dead_letter_queue_name(ROLE_SYNC_QUEUE), expect=1)
    assert [(message.headers["task"], message.headers["id"]) for message in kept] == [(SYNC_ROLE, "slow-sync-1")]
    assert queue_ready(broker_url, ROLE_SYNC_QUEUE) == 0
    assert Role.objects.get(role_id=12).name == "Asset Manager"
