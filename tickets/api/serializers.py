from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tickets.models import Ticket


class TicketSerializer(serializers.ModelSerializer):
    allocated = serializers.BooleanField(source="is_allocated", read_only=True)

    class Meta:
        model = Ticket
        fields = [
            "ticket_number",
            "subject",
            "status",
            "priority",
            "department",
            "category",
            "sub_category",
            "allocated",
            "allocation_state",
            "allocation_reason",
            "received_at",
            "updated_at",
            "delivery_count",
        ]
        read_only_fields = fields


class TicketDetailSerializer(TicketSerializer):
    ticket_data = serializers.JSONField(
        source="snapshot", read_only=True, help_text="The helpdesk's ticket_data as last received."
    )
    tasks = serializers.SerializerMethodField(help_text="Ids of the ticket's tasks.")

    class Meta(TicketSerializer.Meta):
        fields = [*TicketSerializer.Meta.fields, "ticket_data", "tasks"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_tasks(self, ticket: Ticket) -> list[int]:
        return [task.pk for task in ticket.tasks.all()]


class TicketReceiveSerializer(serializers.Serializer):
    ticket_data = serializers.JSONField(help_text="The helpdesk's ticket_data, exactly as on the queue.")

    def validate_ticket_data(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value
