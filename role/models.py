"""Roles and role membership, mirrored from the auth service.

`Role.role_id` is the auth service's id and the engine's key for the role.
Deletions are tombstones (`deleted_at`), so a late `update` arriving after a
`delete` cannot bring the row back. A membership that arrives before its role
creates a provisional role from the membership's role_id/role_name; the role's
own `create` later fills it in.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from workflow_api.core.models import TenantOwned


class Role(TenantOwned):
    role_id = models.BigIntegerField(null=True, blank=True, help_text="The auth service's role id.")
    name = models.CharField(max_length=200)
    system = models.CharField(max_length=64, default="tts")
    description = models.TextField(blank=True)
    is_custom = models.BooleanField(default=False)
    provisional = models.BooleanField(
        default=False, help_text="Created from a membership message before the role itself was synced."
    )
    created_at = models.DateTimeField(null=True, blank=True, help_text="When the auth service created it.")
    last_synced_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "role_id"], condition=models.Q(role_id__isnull=False), name="role_unique_role_id"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "name"], name="role_tenant_name_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class RoleMember(TenantOwned):
    """A user holding a role. Keyed by the auth service's user_system_role_id."""

    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="members")
    user_system_role_id = models.BigIntegerField(help_text="The auth service's id of this assignment.")
    user_id = models.BigIntegerField(db_index=True)
    full_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    is_active = models.BooleanField(default=True)
    settings = models.JSONField(default=dict, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["role", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user_system_role_id"], name="role_member_unique_assignment"),
        ]
        indexes = [models.Index(fields=["role", "is_active", "user_id"], name="role_member_active_idx")]

    def __str__(self) -> str:
        return f"{self.full_name or self.user_id} in {self.role}"


class RoundRobinPointer(TenantOwned):
    """Where a role's durable round-robin stands: the member who was handed work last.

    One row per role, written only by role.assignment under a row lock. Keeping
    the last *user id* (not an index) is what lets members join and leave
    without resetting the rotation: the next assignee is simply the first active
    member with a higher user id, wrapping around to the lowest.
    """

    role = models.OneToOneField(Role, on_delete=models.CASCADE, related_name="round_robin_pointer")
    last_user_id = models.BigIntegerField(
        null=True, blank=True, help_text="The user handed work last; empty until the first assignment."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "round-robin pointer"

    def __str__(self) -> str:
        return f"{self.role}: after {self.last_user_id}"
