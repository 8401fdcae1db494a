"""Roles and memberships for people: browse, filter, search. Never edited here.

Both tables mirror the auth service (role.services applies its messages), so
the admin is read-only: a change made here would be silently overwritten by
the next sync, or would resurrect what the auth service deleted.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from role.models import Role, RoleMember
from workflow_api.core.admin_mixins import ReadOnlyAdminMixin


class LiveListFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "Live"), ("deleted", "Deleted (tombstone)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "live":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


class RoleMemberInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = RoleMember
    fields = ("user_id", "full_name", "email", "is_active", "assigned_at", "user_system_role_id", "deleted_at")
    readonly_fields = fields
    ordering = ["user_id"]
    extra = 0
    show_change_link = True


@admin.register(Role)
class RoleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "role_id", "tenant", "system", "is_custom", "provisional", "last_synced_at", "deleted_at"]
    list_filter = [LiveListFilter, "provisional", "is_custom", "system", "tenant"]
    search_fields = ["name", "description", "=role_id"]
    list_select_related = ["tenant"]
    readonly_fields = (
        "tenant",
        "role_id",
        "name",
        "system",
        "description",
        "is_custom",
        "provisional",
        "created_at",
        "last_synced_at",
        "deleted_at",
    )
    fields = readonly_fields
    inlines = [RoleMemberInline]


@admin.register(RoleMember)
class RoleMemberAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user_id", "full_name", "email", "role", "tenant", "is_active", "assigned_at", "deleted_at"]
    list_filter = [LiveListFilter, "is_active", "role", "tenant"]
    search_fields = ["full_name", "email", "=user_id", "=user_system_role_id", "role__name"]
    list_select_related = ["role", "tenant"]
    readonly_fields = (
        "tenant",
        "role",
        "user_system_role_id",
        "user_id",
        "full_name",
        "email",
        "is_active",
        "settings",
        "assigned_at",
        "last_synced_at",
        "deleted_at",
    )
    fields = readonly_fields
