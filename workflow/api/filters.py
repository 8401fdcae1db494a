from __future__ import annotations

from django_filters import rest_framework as filters

from workflow.models import Workflow, WorkflowStatus


class WorkflowFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=WorkflowStatus.choices)
    # Like ticket matching, these ignore letter case.
    department = filters.CharFilter(lookup_expr="iexact")
    category = filters.CharFilter(lookup_expr="iexact")
    search = filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Part of the name.")

    class Meta:
        model = Workflow
        fields = ["status", "department", "category", "search"]
