"""Celery configuration, read from Django settings when Celery first needs it.

JSON only; queue names and routes are the message contract (messaging.py).
Jobs are acknowledged only after they finish (`acks_late`), re-queued when the
worker dies mid-way (`reject_on_worker_lost`), one message at a time per
process (prefetch 1), plus one batch per process for the batched ticket
intake (workflow_api.core.batches); publishing waits for the broker's confirm; the broker
connection is retried forever. Without CELERY_BROKER_URL, tasks run
in-process, so `make run` needs no broker.
"""

from __future__ import annotations

from django.conf import settings

from workflow_api.core import messaging

broker_url = settings.CELERY_BROKER_URL or "memory://"
broker_connection_retry_on_startup = True
broker_connection_max_retries = None
broker_transport_options = {"confirm_publish": True}
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
result_backend = None
task_queues = messaging.consumed_queues()
task_default_queue = messaging.INTERNAL_QUEUE
task_create_missing_queues = True
task_routes = messaging.task_routes()
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_time_limit = settings.CELERY_TASK_TIME_LIMIT
task_soft_time_limit = settings.CELERY_TASK_SOFT_TIME_LIMIT
# Celery's Django fixup closes the database connection before and after every
# job unless this is set, which made each job open a new PostgreSQL connection
# (about half of a ticket's intake time). With it set, the fixup closes them
# only every this many jobs; workflow_api.celery closes connections that are
# broken or older than CONN_MAX_AGE around every job instead, as Django does
# around every request.
CELERY_DB_REUSE_MAX = 1_000_000
task_always_eager = settings.CELERY_IN_PROCESS
task_eager_propagates = True
worker_hijack_root_logger = False
worker_consumer = "workflow_api.core.inbound:DeadLetteringConsumer"
beat_schedule = {
    "outbox-relay": {
        "task": "core.outbox_relay",
        "schedule": float(settings.OUTBOX_RELAY_INTERVAL_SECONDS),
        "options": {"expires": float(settings.OUTBOX_RELAY_INTERVAL_SECONDS)},
    },
}
timezone = "UTC"
