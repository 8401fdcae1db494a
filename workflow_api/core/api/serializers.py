from __future__ import annotations

from rest_framework import serializers

from workflow_api.core.models import InboundFailure


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False)


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(required=False, help_text="Defaults to the refresh_token cookie.")


class MeSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    email = serializers.CharField()
    username = serializers.CharField()
    full_name = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    tenant = serializers.CharField()


class InboundFailureSerializer(serializers.ModelSerializer):
    class Meta:
        model = InboundFailure
        fields = [
            "id",
            "task_name",
            "queue",
            "message_id",
            "body",
            "error_code",
            "error",
            "dead_lettered",
            "created_at",
        ]
