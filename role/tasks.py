"""Celery entry points for the auth service's role messages (wire names from messages.md)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from role.services import role_member_sync, role_sync
from workflow_api.core.inbound import InboundJob


@shared_task(bind=True, base=InboundJob, name="role.tasks.sync_role")
def sync_role_job(self: InboundJob, role_data: Any) -> str:
    """Apply a `role_data` message (queue tts.role.sync) and count how it ended, in one transaction.

    Idempotent and order-independent (role.services.role_sync): a redelivered
    or duplicated message changes nothing. A bad message raises InvalidMessage,
    which InboundJob records and dead-letters.
    """
    return role_sync(payload=role_data, message_id=self.request.id or "", counter=self.name)


@shared_task(bind=True, base=InboundJob, name="role.tasks.sync_user_system_role")
def sync_user_system_role_job(self: InboundJob, user_role_data: Any) -> str:
    """Apply a `user_role_data` message (queue tts.user_system_role.sync) and count how it ended, in one transaction.

    Idempotent and order-independent (role.services.role_member_sync); a
    membership for a role not seen yet creates that role provisionally. A bad
    message raises InvalidMessage, which InboundJob records and dead-letters.
    """
    return role_member_sync(payload=user_role_data, message_id=self.request.id or "", counter=self.name)
