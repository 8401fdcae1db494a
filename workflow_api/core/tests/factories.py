"""Factories for the infrastructure tables and Django users (standalone login)."""

from __future__ import annotations

import factory
from django.contrib.auth.models import User
from factory.django import DjangoModelFactory

from workflow_api.core.models import InboundFailure, MessageCounter, OutboxMessage, Tenant
from workflow_api.core.tenancy import default_tenant

PASSWORD = "correct horse battery staple"


class TenantFactory(DjangoModelFactory[Tenant]):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    first_name = "Ana"
    last_name = "Reyes"
    is_active = True
    password = factory.django.Password(PASSWORD)


class InboundFailureFactory(DjangoModelFactory[InboundFailure]):
    class Meta:
        model = InboundFailure

    tenant = factory.LazyFunction(default_tenant)
    task_name = "role.tasks.sync_role"
    queue = "tts.role.sync"
    message_id = factory.Faker("uuid4")
    body = factory.LazyFunction(lambda: {"args": [{"role_id": "not-a-number", "system": "tts"}], "kwargs": {}})
    error_code = "invalid_message"
    error = "role_id must be an integer"
    dead_lettered = True


class OutboxMessageFactory(DjangoModelFactory[OutboxMessage]):
    class Meta:
        model = OutboxMessage

    task_name = "send_ticket_status"
    queue = "ticket_status-default"
    args = factory.Sequence(lambda n: [f"TX2026112109{n:04d}", "In Progress"])
    kwargs = factory.LazyFunction(dict)


class MessageCounterFactory(DjangoModelFactory[MessageCounter]):
    class Meta:
        model = MessageCounter

    task_name = "role.tasks.sync_role"
    outcome = "ignored_other_system"
    count = 3
