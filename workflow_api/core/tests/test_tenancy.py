"""Scoping rows to a tenant: one rule, TenantQuerySet.for_tenant."""

from __future__ import annotations

import pytest

from role.models import Role
from role.tests.factories import RoleFactory
from workflow_api.core.models import OutboxMessage
from workflow_api.core.tenancy import UnknownTenant, scope_to_tenant, tenant_from_slug


def test_scoping_keeps_only_the_tenants_own_rows(tenant, other_tenant):
    ours = RoleFactory.create(tenant=tenant)
    RoleFactory.create(tenant=other_tenant)

    assert list(scope_to_tenant(Role.objects.all(), tenant)) == [ours]
    assert list(Role.objects.for_tenant(tenant)) == [ours]


def test_scoping_a_queryset_of_rows_that_are_not_tenant_owned_is_refused(tenant):
    with pytest.raises(TypeError, match="OutboxMessage rows are not tenant-owned"):
        scope_to_tenant(OutboxMessage.objects.all(), tenant)


def test_a_missing_slug_is_the_default_tenant_and_an_unknown_one_is_refused(tenant):
    assert tenant_from_slug(None) == tenant
    assert tenant_from_slug("") == tenant
    with pytest.raises(UnknownTenant, match="nope"):
        tenant_from_slug("nope")
