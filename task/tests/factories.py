"""Factories for the task engine's tests: published workflows with staffed roles, tasks and items."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import factory

from audit.services import Actor
from role.models import Role, RoleMember
from role.tests.factories import RoleFactory, RoleMemberFactory
from task.models import ItemOrigin, ItemStatus, Task, TaskItem, TaskItemHistory
from task.services import TICKET_OWNER_ROLE
from tickets.models import Ticket
from tickets.tests.factories import TicketFactory
from workflow.models import Workflow
from workflow.services import workflow_publish
from workflow.tests.factories import TaskFactory, three_step_workflow
from workflow_api.core.models import Tenant
from workflow_api.core.tenancy import default_tenant

__all__ = [
    "Setup",
    "TaskFactory",
    "TaskItemFactory",
    "TaskItemHistoryFactory",
    "TicketFactory",
    "members",
    "published_setup",
]


_setups = itertools.count(1)


def members(role: Role, *user_ids: int) -> list[RoleMember]:
    """Active members of `role` with the given auth-service user ids."""
    return [
        RoleMemberFactory.create(role=role, tenant=role.tenant, user_id=user_id, full_name=f"User {user_id}")
        for user_id in user_ids
    ]


@dataclass
class Setup:
    """A published three-step workflow (triage -> resolve -> finalize) and its roles."""

    workflow: Workflow
    owner: Role  # holds triage and finalize
    resolver: Role
    coordinator: Role

    def ticket(self, **fields: Any) -> Ticket:
        """A stored, not yet allocated ticket that matches the workflow."""
        return TicketFactory.create(
            tenant=self.workflow.tenant,
            department=self.workflow.department,
            category=self.workflow.category,
            sub_category=self.workflow.sub_category,
            **fields,
        )


def published_setup(
    *,
    tenant: Tenant | None = None,
    owner_users: tuple[int, ...] = (101, 102, 103),
    resolver_users: tuple[int, ...] = (201,),
    coordinator_users: tuple[int, ...] = (901, 902),
    start_strategy: str = "round_robin",
    start_count: int = 1,
    weights: tuple[Decimal, Decimal, Decimal] | None = None,
    **workflow_fields: Any,
) -> Setup:
    """Roles with members, and a three-step workflow published on them (see Setup).

    The "Ticket Coordinator" role is per tenant: a second setup in a tenant
    reuses it and adds `coordinator_users` to it.
    """
    tenant = tenant or default_tenant()
    n = next(_setups)
    owner = RoleFactory.create(tenant=tenant, name=f"Admin {n}")
    resolver = RoleFactory.create(tenant=tenant, name=f"Asset Manager {n}")
    # The tenant has one coordinator role; a second setup in the same tenant shares it.
    coordinator = Role.objects.filter(tenant=tenant, name=TICKET_OWNER_ROLE).first() or RoleFactory.create(
        tenant=tenant, name=TICKET_OWNER_ROLE
    )
    members(owner, *owner_users)
    members(resolver, *resolver_users)
    members(coordinator, *coordinator_users)
    workflow = three_step_workflow(owner=owner, resolver=resolver, tenant=tenant, **workflow_fields)
    steps = {step.key: step for step in workflow.steps.all()}
    steps["triage"].assignment_strategy = start_strategy
    steps["triage"].assignee_count = start_count
    steps["triage"].save()
    if weights is not None:
        for key, weight in zip(("triage", "resolve", "finalize"), weights, strict=True):
            steps[key].weight = weight
            steps[key].save()
    workflow_publish(workflow=workflow, actor=Actor.system())
    workflow.refresh_from_db()
    return Setup(workflow=workflow, owner=owner, resolver=resolver, coordinator=coordinator)


class TaskItemFactory(factory.django.DjangoModelFactory[TaskItem]):
    """An item on a task's current step; give it a `role`."""

    class Meta:
        model = TaskItem

    task = factory.SubFactory(TaskFactory)
    tenant = factory.SelfAttribute("task.tenant")
    step_key = factory.SelfAttribute("task.current_step_key")
    step_name = factory.LazyAttribute(lambda o: o.step_key.title())
    role = factory.SubFactory(RoleFactory, tenant=factory.SelfAttribute("..tenant"))
    role_name = factory.SelfAttribute("role.name")
    user_id = factory.Sequence(lambda n: 4000 + n)
    user_name = factory.LazyAttribute(lambda o: f"User {o.user_id}")
    status = ItemStatus.NEW
    origin = ItemOrigin.SYSTEM


class TaskItemHistoryFactory(factory.django.DjangoModelFactory[TaskItemHistory]):
    class Meta:
        model = TaskItemHistory

    item = factory.SubFactory(TaskItemFactory)
    tenant = factory.SelfAttribute("item.tenant")
    status = factory.SelfAttribute("item.status")


def task_of(ticket: Ticket) -> Task:
    return Task.objects.get(ticket=ticket)
