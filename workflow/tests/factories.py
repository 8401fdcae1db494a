"""Factories for workflows and their draft graphs.

Shared by the workflow tests: add new factories, never rewrite existing ones.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import factory

from role.models import Role
from role.tests.factories import RoleFactory
from step.models import Step, Transition
from task.models import Task, TaskStatus
from workflow.definition import Draft, DraftStep, DraftTransition, RoleRef
from workflow.models import Workflow
from workflow_api.core.tenancy import default_tenant


class WorkflowFactory(factory.django.DjangoModelFactory[Workflow]):
    """A draft workflow; each one matches its own category, so publishing two never clashes."""

    class Meta:
        model = Workflow

    tenant = factory.LazyFunction(default_tenant)
    name = factory.Sequence(lambda n: f"Workflow {n}")
    description = factory.Faker("sentence")
    department = "Asset Department"
    category = factory.Sequence(lambda n: f"Category {n}")
    sub_category = ""


class StepFactory(factory.django.DjangoModelFactory[Step]):
    class Meta:
        model = Step

    workflow = factory.SubFactory(WorkflowFactory)
    tenant = factory.SelfAttribute("workflow.tenant")
    key = factory.Sequence(lambda n: f"step-{n}")
    name = factory.Sequence(lambda n: f"Step {n}")
    weight = Decimal("1")


class TransitionFactory(factory.django.DjangoModelFactory[Transition]):
    class Meta:
        model = Transition

    from_step = factory.SubFactory(StepFactory)
    workflow = factory.SelfAttribute("from_step.workflow")
    tenant = factory.SelfAttribute("from_step.tenant")
    to_step = factory.SubFactory(StepFactory, workflow=factory.SelfAttribute("..workflow"))
    name = "Submit"


class GraphNodeDataFactory(factory.DictFactory):
    """A node of a graph PUT (api.md "Workflows"); `id` is a client-chosen string until stored."""

    id = factory.Sequence(lambda n: f"node-{n}")
    name = factory.Sequence(lambda n: f"Step {n}")
    role_id = None
    escalate_to_role_id = None
    weight = 1
    is_start = False
    is_end = False
    instruction = ""
    x = factory.Sequence(lambda n: 120 * n)
    y = 80


class GraphEdgeDataFactory(factory.DictFactory):
    """An edge of a graph PUT; `from` and `to` are node ids (Python keywords, hence the renames)."""

    id = factory.Sequence(lambda n: f"edge-{n}")
    from_ = "a"
    to = "b"
    name = "Submit"

    class Meta:
        rename = {"from_": "from"}


# --- added for the service, definition and seed tests ---------------------------------


class DraftStepFactory(factory.Factory[DraftStep]):
    """A step of a plain-data Draft (workflow.definition), owned by a made-up role."""

    class Meta:
        model = DraftStep

    ref = factory.Sequence(lambda n: f"s{n}")
    key = factory.LazyAttribute(lambda o: f"key-{o.ref}")
    name = factory.LazyAttribute(lambda o: f"Step {o.ref}")
    role = factory.Sequence(lambda n: RoleRef(pk=n + 1, role_id=n + 1, name=f"Role {n + 1}"))


class DraftTransitionFactory(factory.Factory[DraftTransition]):
    class Meta:
        model = DraftTransition

    ref = factory.Sequence(lambda n: f"t{n}")
    from_ref = "s1"
    to_ref = "s2"
    name = "Submit"


def valid_sla() -> dict[str, timedelta | None]:
    return {
        "urgent": timedelta(hours=4),
        "high": timedelta(hours=8),
        "medium": timedelta(days=2),
        "low": timedelta(days=5),
    }


class DraftFactory(factory.Factory[Draft]):
    """An empty Draft with complete matching keys and SLAs; give it steps and transitions."""

    class Meta:
        model = Draft

    department = "IT Department"
    category = factory.Sequence(lambda n: f"Category {n}")
    sub_category = ""
    sla = factory.LazyFunction(valid_sla)
    steps = factory.LazyFunction(list)
    transitions = factory.LazyFunction(list)


class TaskFactory(factory.django.DjangoModelFactory[Task]):
    """A running task pinned to its workflow's current version."""

    class Meta:
        model = Task

    workflow = factory.SubFactory(WorkflowFactory)
    tenant = factory.SelfAttribute("workflow.tenant")
    # Read from the database: a workflow object published by a service is not refreshed in place.
    workflow_version = factory.LazyAttribute(
        lambda o: Workflow.objects.select_related("current_version").get(pk=o.workflow.pk).current_version
    )
    current_step_key = "triage"
    status = TaskStatus.IN_PROGRESS


def three_step_workflow(*, owner: Role | None = None, resolver: Role | None = None, **fields: Any) -> Workflow:
    """A publishable draft: triage -Submit-> resolve -Approve-> finalize, resolve -Reject-> triage."""
    workflow = WorkflowFactory.create(**fields)
    owner = owner or RoleFactory.create(tenant=workflow.tenant, name="Admin")
    resolver = resolver or RoleFactory.create(tenant=workflow.tenant, name="Asset Manager")
    triage = StepFactory.create(workflow=workflow, key="triage", name="Triage", role=owner, is_start=True, x=10)
    resolve = StepFactory.create(workflow=workflow, key="resolve", name="Resolve", role=resolver, x=200)
    finalize = StepFactory.create(workflow=workflow, key="finalize", name="Finalize", role=owner, is_end=True, x=400)
    TransitionFactory.create(from_step=triage, to_step=resolve, name="Submit")
    TransitionFactory.create(from_step=resolve, to_step=finalize, name="Approve")
    TransitionFactory.create(from_step=resolve, to_step=triage, name="Reject")
    return workflow
