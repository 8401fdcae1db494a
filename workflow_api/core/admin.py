"""The operator's view of the infrastructure: tenants, failed inbound messages, the outbox, counters.

Everything but tenants is read-only here; the one state change, "Retry now",
goes through `outbox.outbox_retry_now`.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.services import Actor
from workflow_api.core.admin_mixins import ReadOnlyAdminMixin
from workflow_api.core.models import InboundFailure, MessageCounter, OutboxMessage, Tenant
from workflow_api.core.outbox import outbox_retry_now


def _pretty_json(value: Any) -> SafeString:
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str),
    )


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    ordering = ["slug"]

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> list[str]:
        # Tokens and messages name a tenant by its slug; renaming it would orphan them.
        return ["slug", "created_at"] if obj is not None else ["created_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # every domain row points at its tenant (on_delete=PROTECT)


@admin.register(InboundFailure)
class InboundFailureAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "task_name", "queue", "error_code", "dead_lettered", "tenant"]
    list_filter = ["error_code", "task_name", "dead_lettered", "queue", "tenant"]
    search_fields = ["task_name", "queue", "message_id", "error"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "created_at",
        "tenant",
        "task_name",
        "queue",
        "message_id",
        "error_code",
        "error",
        "dead_lettered",
        "pretty_body",
    )

    @admin.display(description="body")
    def pretty_body(self, obj: InboundFailure) -> SafeString:
        return _pretty_json(obj.body)


class OutboxStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("pending", "pending"), ("sent", "sent")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> QuerySet[OutboxMessage]:
        if self.value() == "pending":
            return queryset.filter(sent_at__isnull=True)
        if self.value() == "sent":
            return queryset.filter(sent_at__isnull=False)
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "task_name", "queue", "status", "attempts", "next_attempt_at", "sent_at", "short_error"]
    list_filter = [OutboxStatusFilter, "queue", "task_name"]
    search_fields = ["task_name", "message_id", "dedupe_key", "last_error"]
    date_hierarchy = "created_at"
    actions = ["retry_now"]
    fields = readonly_fields = (
        "message_id",
        "tenant",
        "task_name",
        "queue",
        "pretty_args",
        "pretty_kwargs",
        "dedupe_key",
        "created_at",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
    )

    @admin.display(description="status")
    def status(self, obj: OutboxMessage) -> str:
        return "sent" if obj.sent_at else "pending"

    @admin.display(description="last error")
    def short_error(self, obj: OutboxMessage) -> str:
        return obj.last_error[:120]

    @admin.display(description="args")
    def pretty_args(self, obj: OutboxMessage) -> SafeString:
        return _pretty_json(obj.args)

    @admin.display(description="kwargs")
    def pretty_kwargs(self, obj: OutboxMessage) -> SafeString:
        return _pretty_json(obj.kwargs)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("core.change_outboxmessage")

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        count = outbox_retry_now(message_ids=queryset.values_list("id", flat=True), actor=Actor.of(request.user))
        self.message_user(
            request,
            f"{count} pending message(s) are due now; the relay publishes them on its next run.",
            messages.SUCCESS if count else messages.WARNING,
        )


@admin.register(MessageCounter)
class MessageCounterAdmin(ReadOnlyAdmin):
    list_display = ["task_name", "outcome", "count", "updated_at"]
    list_filter = ["outcome", "task_name"]
    search_fields = ["task_name", "outcome"]
