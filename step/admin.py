"""Steps and transitions across workflows, to browse and search (which steps does a role own?).

They are edited only on their workflow's page, where the whole graph is
validated and replaced by workflow.services in one transaction; editing one
row here would bypass that, so these lists are read-only and link there.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from step.models import Step, Transition
from workflow_api.core.admin_mixins import ReadOnlyAdminMixin


def _workflow_link(workflow_id: int, label: object) -> SafeString:
    return format_html('<a href="{}">{}</a>', reverse("admin:workflow_workflow_change", args=[workflow_id]), label)


@admin.register(Step)
class StepAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "key", "workflow_shown", "role", "escalation_role", "weight", "is_start", "is_end"]
    list_filter = ["is_start", "is_end", ("role", admin.RelatedOnlyFieldListFilter), "tenant"]
    search_fields = ["name", "key", "workflow__name", "role__name"]
    list_select_related = ["workflow", "role", "escalation_role"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Step]:
        return super().get_queryset(request).filter(workflow__deleted_at__isnull=True)

    @admin.display(description="workflow", ordering="workflow__name")
    def workflow_shown(self, obj: Step) -> SafeString:
        return _workflow_link(obj.workflow_id, obj.workflow)


@admin.register(Transition)
class TransitionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "from_step", "to_step", "workflow_shown"]
    search_fields = ["name", "from_step__name", "to_step__name", "workflow__name"]
    list_select_related = ["workflow", "from_step", "to_step"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Transition]:
        return super().get_queryset(request).filter(workflow__deleted_at__isnull=True)

    @admin.display(description="workflow", ordering="workflow__name")
    def workflow_shown(self, obj: Transition) -> SafeString:
        return _workflow_link(obj.workflow_id, obj.workflow)
