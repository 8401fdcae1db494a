"""Celery entry points of the infrastructure (internal queue)."""

from __future__ import annotations

from celery import shared_task

from workflow_api.core.outbox import outbox_relay


@shared_task(name="core.outbox_relay", ignore_result=True, acks_late=False, time_limit=120, soft_time_limit=100)
def outbox_relay_job() -> int:
    """Publish pending outbox rows. Idempotent: a sent row is never sent again; concurrent runs are serialised."""
    return outbox_relay().sent
