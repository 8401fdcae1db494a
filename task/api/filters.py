"""Filters of `GET /api/v1/tasks/` (api.md "Tasks"); the queries themselves live in task.selectors."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from task import selectors
from task.models import Task, TaskStatus


class TaskFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=TaskStatus.choices)
    workflow = django_filters.NumberFilter(field_name="workflow_id", help_text="A workflow id.")
    ticket_number = django_filters.CharFilter(field_name="ticket__ticket_number", lookup_expr="iexact")
    assignee = django_filters.NumberFilter(
        method="filter_assignee", help_text="A user id holding an active (new, in_progress, on_hold) item."
    )
    role = django_filters.CharFilter(method="filter_role", help_text="The role name of an active item, any case.")
    overdue = django_filters.BooleanFilter(
        method="filter_overdue", help_text="true: open tasks past their target resolution."
    )
    search = django_filters.CharFilter(method="filter_search", help_text="Part of the ticket number or subject.")

    class Meta:
        model = Task
        fields = ["status", "workflow", "ticket_number", "assignee", "role", "overdue", "search"]

    def filter_assignee(self, queryset: QuerySet[Task], name: str, value: int | None) -> QuerySet[Task]:
        if value is None:
            return queryset
        return selectors.tasks_with_active_assignee(queryset, self.request.user.tenant, int(value))

    def filter_role(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        return selectors.tasks_with_active_role(queryset, value.strip()) if value.strip() else queryset

    def filter_overdue(self, queryset: QuerySet[Task], name: str, value: bool | None) -> QuerySet[Task]:
        # overdue=false is "no filter", not "on time": the contract only defines overdue=true.
        return selectors.tasks_overdue(queryset) if value else queryset

    def filter_search(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        return selectors.tasks_matching(queryset, value.strip()) if value.strip() else queryset
