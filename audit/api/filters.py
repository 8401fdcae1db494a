from __future__ import annotations

from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters

from audit.models import AuditAction, AuditEvent


class AuditEventFilter(filters.FilterSet):
    actor = filters.CharFilter(
        method="filter_actor", help_text="The actor's user id, or their display name (case-insensitive), or `system`."
    )
    action = filters.ChoiceFilter(choices=AuditAction.choices)
    target_type = filters.CharFilter()
    target_id = filters.CharFilter()
    since = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601; events at or after this time."
    )
    until = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601; events before this time."
    )

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "target_type", "target_id", "since", "until"]

    def filter_actor(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        condition = Q(actor_name__iexact=value)
        if value.isascii() and value.isdigit():
            condition |= Q(actor_id=int(value))
        return queryset.filter(condition)
