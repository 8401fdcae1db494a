from __future__ import annotations

from workflow_api.core.models import Tenant


def role_names_for_user(*, tenant: Tenant, user_id: int) -> list[str]:
    """Names of the live roles the user actively holds in the tenant."""
    from role.models import RoleMember

    return list(
        RoleMember.objects.filter(
            tenant=tenant, user_id=user_id, is_active=True, deleted_at__isnull=True, role__deleted_at__isnull=True
        )
        .values_list("role__name", flat=True)
        .distinct()
    )
