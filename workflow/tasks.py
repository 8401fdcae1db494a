"""Celery entry points of the workflow app (wire names from messages.md)."""

from __future__ import annotations

from celery import shared_task

from audit.services import Actor
from workflow.seed import seed_standard_workflows
from workflow_api.core.inbound import InboundJob, message_count
from workflow_api.core.tenancy import default_tenant


@shared_task(bind=True, base=InboundJob, name="workflow.seed_workflows")
def seed_workflows_job(self: InboundJob) -> str:
    """Seed the default tenant's standard workflows (queue workflow_seed_queue, no arguments).

    Sent by the auth service once it has seeded its roles and users.
    Idempotent (workflow.seed.seed_standard_workflows): a redelivered or
    repeated message finds everything in place and writes nothing.
    """
    report = seed_standard_workflows(tenant=default_tenant(), actor=Actor.system())
    outcome = "applied" if report.workflows_created or report.roles_created else "duplicate"
    message_count(task_name=self.name, outcome=outcome)
    return report.summary()
