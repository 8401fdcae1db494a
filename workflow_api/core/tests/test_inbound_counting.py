"""An inbound message's count (MessageCounter) commits with the work it counts, or not at all.

Shown with the role sync, whose services count inside their own transaction.
"""

from __future__ import annotations

import pytest

import role.services
from audit.models import AuditEvent
from role.models import Role
from role.services import role_member_sync, role_sync
from role.tasks import sync_role_job
from role.tests.factories import role_data, user_role_data
from workflow_api.core.models import MessageCounter

SYNC_ROLE = "role.tasks.sync_role"


def _counts() -> dict[tuple[str, str], int]:
    return {(c.task_name, c.outcome): c.count for c in MessageCounter.objects.all()}


class _CrashWhileCounting(Exception):
    pass


def _crash(**_: object) -> None:
    raise _CrashWhileCounting


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sync", "payload"),
    [(role_sync, role_data(role_id=12)), (role_member_sync, user_role_data(user_system_role_id=340, role_id=12))],
    ids=["role", "membership"],
)
def test_when_counting_fails_the_sync_it_counts_is_rolled_back_too(tenant, monkeypatch, sync, payload):
    monkeypatch.setattr(role.services, "message_count", _crash)

    with pytest.raises(_CrashWhileCounting):
        sync(payload=payload, counter="role.tasks.any")

    assert not Role.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_the_role_job_counts_once_per_message_including_those_for_other_systems(tenant):
    sync_role_job.apply(args=[role_data(role_id=12)])
    sync_role_job.apply(args=[role_data(role_id=13, system="hdts")])

    assert _counts() == {(SYNC_ROLE, "applied"): 1, (SYNC_ROLE, "ignored_other_system"): 1}
