"""The Celery application; its configuration is workflow_api/core/celeryconfig.py."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_api.settings")

app = Celery("workflow_api")
# Loaded lazily, on first use, so that Django settings are read at run time.
app.config_from_object("workflow_api.core.celeryconfig")
app.autodiscover_tasks(["workflow_api.core", "role", "tickets", "workflow", "task", "audit", "fieldservice"])


@worker_ready.connect
def _declare_dead_letter_topology(sender: object, **_kwargs: object) -> None:
    from workflow_api.core.inbound import declare_dead_letter_queues

    declare_dead_letter_queues()


@task_prerun.connect(weak=False)
@task_postrun.connect(weak=False)
def _close_old_database_connections(sender: object = None, **_kwargs: object) -> None:
    """Around every job, close connections that are broken or older than CONN_MAX_AGE (as Django does per request).

    Celery's own fixup would close every connection around every job; it is
    held off by CELERY_DB_REUSE_MAX (workflow_api/core/celeryconfig.py), so
    a worker keeps one PostgreSQL connection across jobs, and a connection
    that failed (the database restarted) is replaced before the next job.
    """
    from django.db import close_old_connections

    # A job run in-process (`apply`, CELERY_IN_PROCESS) shares the caller's
    # connection and maybe its transaction: leave it alone, as Celery does.
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    close_old_connections()
