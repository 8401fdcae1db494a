"""Factories for roles, memberships and the auth service's sync messages."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import factory

from role.models import Role, RoleMember
from workflow_api.core.tenancy import default_tenant


class RoleFactory(factory.django.DjangoModelFactory[Role]):
    class Meta:
        model = Role

    tenant = factory.LazyFunction(default_tenant)
    role_id = factory.Sequence(lambda n: 500 + n)
    name = factory.Sequence(lambda n: f"Role {n}")
    system = "tts"
    description = factory.Faker("sentence")


class RoleMemberFactory(factory.django.DjangoModelFactory[RoleMember]):
    class Meta:
        model = RoleMember

    role = factory.SubFactory(RoleFactory)
    tenant = factory.SelfAttribute("role.tenant")
    user_system_role_id = factory.Sequence(lambda n: 7000 + n)
    user_id = factory.Sequence(lambda n: 300 + n)
    full_name = factory.Faker("name")
    email = factory.Faker("email")
    is_active = True
    assigned_at = factory.Faker("date_time_this_year", tzinfo=UTC)


class RoleDataFactory(factory.DictFactory):
    """A `role_data` message as the auth service sends it (messages.md)."""

    role_id = factory.Sequence(lambda n: 100 + n)
    name = factory.Sequence(lambda n: f"Synced Role {n}")
    system = "tts"
    description = factory.Faker("sentence")
    is_custom = False
    created_at = "2026-11-01T08:00:00+00:00"
    action = "create"


class UserRoleDataFactory(factory.DictFactory):
    """A `user_role_data` message as the auth service sends it (messages.md)."""

    user_system_role_id = factory.Sequence(lambda n: 3000 + n)
    user_id = factory.Sequence(lambda n: 20 + n)
    user_email = factory.LazyAttribute(lambda o: f"user{o.user_id}@example.com")
    user_full_name = factory.Faker("name")
    system = "tts"
    role_id = 12
    role_name = "Asset Manager"
    assigned_at = "2026-11-02T10:15:00+00:00"
    is_active = True
    settings = factory.LazyFunction(dict)
    action = "create"


def role_data(**overrides: Any) -> dict[str, Any]:
    return RoleDataFactory.build(**overrides)


def user_role_data(**overrides: Any) -> dict[str, Any]:
    return UserRoleDataFactory.build(**overrides)
