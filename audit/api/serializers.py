from __future__ import annotations

from rest_framework import serializers

from audit.models import AuditAction, AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    action = serializers.ChoiceField(choices=AuditAction.choices, read_only=True)
    action_label = serializers.CharField(read_only=True)
    changes = serializers.JSONField(read_only=True, help_text="{field: [old, new]}")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "actor_id",
            "actor_name",
            "action",
            "action_label",
            "target_type",
            "target_id",
            "target_display",
            "changes",
            "correlation_id",
            "created_at",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields
