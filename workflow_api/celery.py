"""The Celery application; its configuration is workflow_api/core/celeryconfig.py."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_api.settings")

app = Celery("workflow_api")
# Loaded lazily, on first use, so that Django settings are read at run time.
app.config_from_object("workflow_api.core.celeryconfig")
app.autodiscover_tasks(["workflow_api.core", "role", "tickets", "workflow", "task", "audit", "fieldservice"])


@worker_ready.connect
def _declare_dead_letter_topology(sender: object, **_kwargs: object) -> None:
    from workflow_api.core.inbound import declare_dead_letter_queues

    declare_dead_letter_queues()
