from __future__ import annotations

import django_filters

from role.models import Role, RoleMember


class RoleFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Role
        fields = ["name", "is_custom", "provisional"]


class RoleMemberFilter(django_filters.FilterSet):
    class Meta:
        model = RoleMember
        fields = ["is_active", "user_id"]
