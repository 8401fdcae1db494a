"""Reads of the mirrored roles for the API, the admin and other apps.

Deleted (tombstoned) roles and memberships are kept for idempotency only:
every reader here leaves them out, and the members of a deleted role count
for nothing.
"""

from __future__ import annotations

from django.db.models import Count, F, Q, QuerySet

from role.assignment import active_members, rotation_order
from role.models import Role, RoleMember, RoundRobinPointer
from workflow_api.core.models import Tenant


def role_names_for_user(*, tenant: Tenant, user_id: int) -> list[str]:
    """Names of the live roles the user actively holds in the tenant."""
    return list(
        RoleMember.objects.for_tenant(tenant)
        .filter(user_id=user_id, is_active=True, deleted_at__isnull=True, role__deleted_at__isnull=True)
        .values_list("role__name", flat=True)
        .distinct()
    )


def role_list(*, tenant: Tenant) -> QuerySet[Role]:
    """The tenant's live roles, each annotated with `member_count` (live memberships) and
    `active_member_count` (live and active: the people work can be assigned to)."""
    live = Q(members__deleted_at__isnull=True)
    return (
        Role.objects.for_tenant(tenant)
        .filter(deleted_at__isnull=True)
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
    """The user ids round-robin will hand `role_name`'s work to, next one first.

    None when the tenant has no live role of that name (should two live roles
    share it, the synced one with the lowest role_id is meant). Only active,
    live memberships count, each user once, in the order
    `role.assignment.round_robin_next` would hand them out now: starting after
    the role's pointer, wrapping around. Reads the pointer without locking it,
    so it is a preview, not a reservation.
    """
    role = (
        Role.objects.for_tenant(tenant)
        .filter(name=role_name, deleted_at__isnull=True)
        .order_by(F("role_id").asc(nulls_last=True), "id")
        .first()
    )
    if role is None:
        return None
    last_user_id = RoundRobinPointer.objects.filter(role=role).values_list("last_user_id", flat=True).first()
    return [member.user_id for member in rotation_order(active_members(role=role), last_user_id)]
