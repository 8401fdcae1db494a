"""Fixtures of the workflow tests. Shared: add fixtures, never rewrite existing ones."""

from __future__ import annotations

import pytest

from audit.services import Actor
from role.models import Role
from role.tests.factories import RoleFactory
from workflow_api.core.models import Tenant


@pytest.fixture
def roles(tenant: Tenant) -> dict[str, Role]:
    """The standard roles of the default tenant, with the auth service's ids, by name."""
    return {
        name: RoleFactory.create(tenant=tenant, role_id=role_id, name=name)
        for role_id, name in ((10, "Admin"), (12, "Asset Manager"), (13, "Budget Manager"))
    }


@pytest.fixture
def actor() -> Actor:
    """A workflow designer, as the services record them."""
    return Actor(id=42, name="Dana Designer")
