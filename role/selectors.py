"""Reads of the mirrored roles for the API, the admin and other apps.

Deleted (tombstoned) roles and memberships are kept for idempotency only:
every reader here leaves them out, and the members of a deleted role count
for nothing.
"""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from role.models import Role, RoleMember
from workflow_api.core.models import Tenant


def role_names_for_user(*, tenant: Tenant, user_id: int) -> list[str]:
    """Names of the live roles the user actively holds in the tenant."""
    return list(
        RoleMember.objects.filter(
            tenant=tenant, user_id=user_id, is_active=True, deleted_at__isnull=True, role__deleted_at__isnull=True
        )
        .values_list("role__name", flat=True)
        .distinct()
    )


def role_list(*, tenant: Tenant) -> QuerySet[Role]:
    """The tenant's live roles, each annotated with `member_count` (live memberships) and
    `active_member_count` (live and active: the people work can be assigned to)."""
    live = Q(members__deleted_at__isnull=True)
    return (
        Role.objects.filter(tenant=tenant, deleted_at__isnull=True)
        .annotate(
            member_count=Count("members", filter=live),
            active_member_count=Count("members", filter=live & Q(members__is_active=True)),
        )
        .order_by("name", "role_id")
    )


def role_members(*, role: Role) -> QuerySet[RoleMember]:
    """The role's live memberships (active or not), by user id."""
    return RoleMember.objects.filter(role=role, deleted_at__isnull=True).order_by("user_id", "id")


def round_robin_preview(*, tenant: Tenant, role_name: str) -> list[int] | None:
    """The user ids round-robin would hand `role_name`'s work to, next one first.

    None when the tenant has no live role of that name. Only active, live
    memberships count, each user once. Until the durable rotation pointer
    exists (a later issue), the rotation starts at the lowest user id, so the
    preview is simply the ids in ascending order.
    """
    roles = Role.objects.filter(tenant=tenant, name=role_name, deleted_at__isnull=True)
    if not roles.exists():
        return None
    return list(
        RoleMember.objects.filter(role__in=roles, is_active=True, deleted_at__isnull=True)
        .order_by("user_id")
        .values_list("user_id", flat=True)
        .distinct()
    )
