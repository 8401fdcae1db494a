"""The audit trail in the admin: searchable, filterable, and read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from audit.models import AuditAction, AuditEvent
from workflow_api.core.admin_mixins import ReadOnlyAdminMixin


class ActionFilter(admin.SimpleListFilter):
    # The column has no choices (see AuditAction), so the labels come from the enum.
    title = "action"
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(code, str(label)) for code, label in AuditAction.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        if self.value():
            return queryset.filter(action=self.value())
        return queryset


class TargetTypeFilter(admin.SimpleListFilter):
    title = "target type"
    parameter_name = "target_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        types = AuditEvent.objects.order_by("target_type").values_list("target_type", flat=True).distinct()
        return [(value, value) for value in types]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        if self.value():
            return queryset.filter(target_type=self.value())
        return queryset


_DETAIL_FIELDS = (
    "id",
    "tenant",
    "created_at",
    "actor",
    "action_display",
    "target",
    "changes_table",
    "correlation_id",
    "prev_hash",
    "hash",
)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "tenant", "actor", "action_display", "target", "correlation_id"]
    list_filter = [ActionFilter, TargetTypeFilter, "created_at", "tenant"]
    search_fields = ["actor_name", "actor_id__exact", "target_id", "target_display", "correlation_id"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant"]
    show_full_result_count = False
    fields = _DETAIL_FIELDS
    readonly_fields = _DETAIL_FIELDS

    @admin.display(description="actor", ordering="actor_name")
    def actor(self, obj: AuditEvent) -> str:
        return obj.actor_name if obj.actor_id is None else f"{obj.actor_name} (#{obj.actor_id})"

    @admin.display(description="action", ordering="action")
    def action_display(self, obj: AuditEvent) -> str:
        return obj.action_label

    @admin.display(description="target", ordering="target_type")
    def target(self, obj: AuditEvent) -> str:
        label = f"{obj.target_type} {obj.target_id}"
        return f"{label}: {obj.target_display}" if obj.target_display else label

    @admin.display(description="changes")
    def changes_table(self, obj: AuditEvent) -> str:
        if not obj.changes:
            return "—"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            ((name, _shown(values, 0), _shown(values, 1)) for name, values in sorted(obj.changes.items())),
        )
        return format_html("<table><tr><th>field</th><th>old</th><th>new</th></tr>{}</table>", rows)


def _shown(values: Any, index: int) -> str:
    """One side of a [old, new] pair, tolerating a malformed pair rather than hiding the row."""
    if isinstance(values, list) and len(values) == 2:
        value = values[index]
        return "—" if value is None else str(value)
    return str(values) if index == 1 else ""
