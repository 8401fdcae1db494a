from __future__ import annotations

from rest_framework import serializers

from role.models import Role, RoleMember


class RoleSerializer(serializers.ModelSerializer):
    member_count = serializers.IntegerField(read_only=True, help_text="Live memberships, active or not.")
    active_member_count = serializers.IntegerField(
        read_only=True, help_text="Live, active memberships: the people work can go to."
    )

    class Meta:
        model = Role
        fields = [
            "role_id",
            "name",
            "system",
            "description",
            "is_custom",
            "provisional",
            "created_at",
            "member_count",
            "active_member_count",
        ]
        read_only_fields = fields


class RoleMemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = RoleMember
        fields = ["user_id", "full_name", "email", "is_active", "assigned_at", "user_system_role_id"]
        read_only_fields = fields


class RoundRobinQuerySerializer(serializers.Serializer):
    role_name = serializers.CharField(max_length=200, help_text="The role's name, e.g. Asset Manager.")


class RoundRobinSerializer(serializers.Serializer):
    role_name = serializers.CharField()
    user_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="Active members in the order round-robin hands them out."
    )
