"""The one place that decides which tenant a caller or a message belongs to."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from workflow_api.core.models import Tenant, TenantQuerySet


class UnknownTenant(Exception):
    pass


def default_tenant() -> Tenant:
    tenant, _ = Tenant.objects.get_or_create(slug=settings.DEFAULT_TENANT_SLUG, defaults={"name": "Default"})
    return tenant


def tenant_from_slug(slug: str | None) -> Tenant:
    """The tenant a token or message names; absent means the default tenant."""
    if slug is None or slug == "" or slug == settings.DEFAULT_TENANT_SLUG:
        return default_tenant()
    try:
        return Tenant.objects.get(slug=slug)
    except Tenant.DoesNotExist as exc:
        raise UnknownTenant(f"Unknown tenant {slug!r}") from exc


def scope_to_tenant(queryset: QuerySet[Any], tenant: Tenant) -> QuerySet[Any]:
    """`queryset` limited to `tenant`'s rows, by TenantQuerySet.for_tenant, the one scoping rule.

    Raises TypeError for a queryset of a model that is not tenant-owned, so
    a view cannot silently serve rows it never scoped.
    """
    if not isinstance(queryset, TenantQuerySet):
        raise TypeError(f"{queryset.model.__name__} rows are not tenant-owned (no TenantQuerySet)")
    return queryset.for_tenant(tenant)


class TenantScopedMixin:
    """For API views: every queryset is filtered to the caller's tenant.

    Objects of other tenants are therefore simply not found (404), never a 403
    that would reveal they exist.
    """

    request: Any

    def get_queryset(self) -> QuerySet[Any]:
        queryset = super().get_queryset()  # type: ignore[misc]
        return scope_to_tenant(queryset, self.request.user.tenant)
