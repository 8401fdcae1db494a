from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from tickets.models import AllocationState, Ticket, TicketPriority
from tickets.services import PRIORITIES


class TicketFilter(django_filters.FilterSet):
    status = django_filters.CharFilter(lookup_expr="iexact", help_text="The helpdesk's status, any letter case.")
    department = django_filters.CharFilter(lookup_expr="iexact")
    category = django_filters.CharFilter(lookup_expr="iexact")
    sub_category = django_filters.CharFilter(lookup_expr="iexact")
    priority = django_filters.CharFilter(
        method="filter_priority",
        help_text="low, medium, high or urgent; the helpdesk's Low/Medium/High/Critical/Urgent in any case too.",
    )
    allocated = django_filters.BooleanFilter(
        method="filter_allocated", help_text="true: has its task; false: pending or unallocated."
    )
    allocation_state = django_filters.ChoiceFilter(choices=AllocationState.choices)

    class Meta:
        model = Ticket
        fields = ["status", "department", "category", "sub_category", "priority", "allocated", "allocation_state"]

    def filter_priority(self, queryset: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        key = value.strip().lower()
        priority = PRIORITIES.get(key) or (key if key in TicketPriority.values else None)
        if priority is None:
            return queryset.none()
        return queryset.filter(priority=priority)

    def filter_allocated(self, queryset: QuerySet[Ticket], name: str, value: bool | None) -> QuerySet[Ticket]:
        if value is None:
            return queryset
        if value:
            return queryset.filter(allocation_state=AllocationState.ALLOCATED)
        return queryset.exclude(allocation_state=AllocationState.ALLOCATED)
