"""Audit events are only ever written by `audit_append`, so the factory calls it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from unittest import mock

import factory
from factory.django import DjangoModelFactory

from audit.models import AuditAction, AuditEvent
from audit.services import Actor, audit_append
from workflow_api.core.models import Tenant
from workflow_api.core.tenancy import default_tenant


class TenantFactory(DjangoModelFactory[Tenant]):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class AuditEventFactory(factory.Factory[AuditEvent]):
    """`at=` pins the event's time (audit_append always stamps "now")."""

    class Meta:
        model = AuditEvent

    tenant = factory.LazyFunction(default_tenant)
    actor = factory.Sequence(lambda n: Actor(id=100 + n, name=f"User {100 + n}"))
    action = AuditAction.ROLE_UPDATED
    target_type = "role"
    target_id = factory.Sequence(lambda n: str(n))
    target_display = factory.LazyAttribute(lambda o: f"Role {o.target_id}")
    changes = factory.LazyFunction(lambda: {"name": ["Old", "New"]})
    correlation_id = factory.Sequence(lambda n: f"req-{n}")
    at: Any = None

    @classmethod
    def _create(
        cls, model_class: type[AuditEvent], *args: Any, at: datetime | None = None, **kwargs: Any
    ) -> AuditEvent:
        if at is None:
            return audit_append(**kwargs)
        with mock.patch("audit.services.timezone.now", return_value=at):
            return audit_append(**kwargs)
