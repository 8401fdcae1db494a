"""Tasks for people: find a task by ticket, see who holds which step and what happened to each item.

Read-only: tasks change only through the task engine's services (the API's
actions), which keep items, history, audit and notifications consistent; an
edit here would bypass all of that.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from task.models import Task, TaskItem, TaskItemHistory
from workflow_api.core.admin_mixins import ReadOnlyAdminMixin

ITEM_FIELDS = (
    "step_key",
    "step_name",
    "role_name",
    "user_id",
    "user_name",
    "status",
    "origin",
    "assigned_on",
    "target_resolution",
    "acted_on",
    "notes",
    "assignment_reason",
)


class TaskItemInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TaskItem
    fields = ("id", *ITEM_FIELDS[:-1])
    readonly_fields = fields
    extra = 0
    show_change_link = True


class TaskItemHistoryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TaskItemHistory
    fields = ("status", "at", "actor_id", "actor_name", "notes")
    readonly_fields = fields
    extra = 0


@admin.register(Task)
class TaskAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "ticket",
        "workflow",
        "current_step_key",
        "status",
        "priority",
        "ticket_owner_name",
        "target_resolution",
        "created_at",
    ]
    list_filter = ["status", "workflow", "priority", "tenant"]
    search_fields = ["ticket__ticket_number", "ticket__subject"]
    list_select_related = ["ticket", "workflow"]
    date_hierarchy = "created_at"
    fields = (
        "tenant",
        "ticket",
        "workflow",
        "workflow_version",
        "current_step_key",
        "status",
        "priority",
        "ticket_owner_id",
        "ticket_owner_name",
        "target_resolution",
        "created_at",
        "updated_at",
        "completed_at",
        "item_history",
    )
    readonly_fields = fields
    inlines = [TaskItemInline]

    @admin.display(description="Item history")
    def item_history(self, task: Task) -> SafeString:
        rows = (
            TaskItemHistory.objects.filter(item__task=task)
            .select_related("item")
            .order_by("at", "id")
            .values_list("at", "item__step_name", "item__user_name", "item__user_id", "status", "actor_name", "notes")
        )
        lines = format_html_join(
            "",
            "<li>{:%Y-%m-%d %H:%M} · {} · {} ({}) → {} by {} {}</li>",
            (
                (at, step, name, user_id, status, actor or "system", notes)
                for at, step, name, user_id, status, actor, notes in rows
            ),
        )
        return format_html("<ul>{}</ul>", lines) if lines else format_html("<p>{}</p>", "No items yet.")


@admin.register(TaskItem)
class TaskItemAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "task", "step_name", "role_name", "user_id", "user_name", "status", "origin", "assigned_on"]
    list_filter = ["status", "origin", "role_name"]
    search_fields = ["task__ticket__ticket_number", "user_name", "user_email", "=user_id"]
    list_select_related = ["task__ticket"]
    fields = ("tenant", "task", *ITEM_FIELDS)
    readonly_fields = fields
    inlines = [TaskItemHistoryInline]
