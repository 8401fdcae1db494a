"""Celery entry points of the infrastructure (internal queue)."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import task_postrun, task_prerun

from workflow_api.core.logging import bind_correlation_id, unbind_correlation_id
from workflow_api.core.outbox import outbox_relay

_tokens: dict[str, Any] = {}


@task_prerun.connect
def _bind_message_id(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _tokens[task_id] = bind_correlation_id(task_id)


@task_postrun.connect
def _unbind_message_id(task_id: str | None = None, **_: Any) -> None:
    token = _tokens.pop(task_id or "", None)
    if token is not None:
        unbind_correlation_id(token)


@shared_task(name="core.outbox_relay", ignore_result=True, acks_late=False, time_limit=120, soft_time_limit=100)
def outbox_relay_job() -> int:
    """Publish pending outbox rows. Idempotent; concurrent runs are serialised by a lock."""
    return outbox_relay().sent
