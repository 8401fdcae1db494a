"""Task read shapes (api.md "Tasks").

`current_step` comes from the task's own workflow version: a list serializer
needs `steps` in its context (task.selectors.task_steps for the page), the
detail reads the version it has loaded. Step and role are shown by key and
name, the engine's stable identifiers.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from task.models import ItemOrigin, ItemStatus, Task, TaskItem, TaskStatus
from task.rules import available_transitions
from task.selectors import StepRef, task_current_step


class WorkflowRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class StepRefSerializer(serializers.Serializer):
    id = serializers.CharField(source="key", help_text="The step's key (stable across versions).")
    name = serializers.CharField()
    role = serializers.CharField(allow_null=True, help_text="The name of the role that works on the step.")


class TicketOwnerSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(source="ticket_owner_id")
    full_name = serializers.CharField(source="ticket_owner_name")


class TaskSerializer(serializers.ModelSerializer):
    """A row of the task lists."""

    ticket_number = serializers.CharField(read_only=True, allow_null=True)
    subject = serializers.CharField(source="ticket_subject", read_only=True, allow_null=True)
    # Plain strings in the schema: a ChoiceField would add a second "status" enum that clashes by name.
    status = serializers.CharField(read_only=True, help_text=f"One of {', '.join(TaskStatus.values)}.")
    workflow = serializers.SerializerMethodField()
    current_step = serializers.SerializerMethodField()
    ticket_owner = serializers.SerializerMethodField(help_text="The ticket's coordinator, or null.")

    class Meta:
        model = Task
        fields = [
            "id",
            "ticket_number",
            "subject",
            "status",
            "priority",
            "workflow",
            "current_step",
            "ticket_owner",
            "target_resolution",
            "created_at",
            "updated_at",
            "completed_at",
        ]
        read_only_fields = fields

    @extend_schema_field(WorkflowRefSerializer)
    def get_workflow(self, task: Task) -> dict[str, Any]:
        return {"id": task.workflow_id, "name": task.workflow_name}  # type: ignore[attr-defined]

    def _step(self, task: Task) -> StepRef:
        steps: dict[tuple[int, str], StepRef] = self.context.get("steps", {})
        found = steps.get((task.workflow_version_id, task.current_step_key))
        return found if found is not None else task_current_step(task)

    # The nested shapes are built as plain dicts (the serializers above document them): a nested
    # serializer per row costs more than the rest of the row, and a list page has 50 rows.
    @extend_schema_field(StepRefSerializer)
    def get_current_step(self, task: Task) -> dict[str, Any]:
        step = self._step(task)
        return {"id": step.key, "name": step.name, "role": step.role}

    @extend_schema_field(TicketOwnerSerializer(allow_null=True))
    def get_ticket_owner(self, task: Task) -> dict[str, Any] | None:
        if task.ticket_owner_id is None:
            return None
        return {"user_id": task.ticket_owner_id, "full_name": task.ticket_owner_name}


class ItemHistorySerializer(serializers.Serializer):
    status = serializers.CharField(help_text=f"One of {', '.join(ItemStatus.values)}.")
    at = serializers.DateTimeField()


class TaskItemSerializer(serializers.ModelSerializer):
    role = serializers.CharField(source="role_name", read_only=True)
    step = serializers.CharField(source="step_key", read_only=True, help_text="The step's key.")
    status = serializers.CharField(read_only=True, help_text=f"One of {', '.join(ItemStatus.values)}.")
    origin = serializers.CharField(read_only=True, help_text=f"One of {', '.join(ItemOrigin.values)}.")
    history = ItemHistorySerializer(many=True, read_only=True)

    class Meta:
        model = TaskItem
        fields = [
            "id",
            "user_id",
            "user_name",
            "role",
            "step",
            "step_name",
            "status",
            "origin",
            "assigned_on",
            "target_resolution",
            "acted_on",
            "notes",
            "history",
        ]
        read_only_fields = fields


class AvailableTransitionSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="1-based position of the transition in the task's workflow version.")
    name = serializers.CharField()
    to_step = serializers.CharField(help_text="The key of the step the transition leads to.")


class TaskDetailSerializer(TaskSerializer):
    """One task with its items and the transitions the caller (context `user_id`) can take now."""

    workflow_version = serializers.IntegerField(source="workflow_version.number", read_only=True)
    items = TaskItemSerializer(many=True, read_only=True)
    available_transitions = serializers.SerializerMethodField()

    class Meta(TaskSerializer.Meta):
        fields = [*TaskSerializer.Meta.fields, "workflow_version", "items", "available_transitions"]
        read_only_fields = fields

    @extend_schema_field(AvailableTransitionSerializer(many=True))
    def get_available_transitions(self, task: Task) -> list[dict[str, Any]]:
        return [
            dict(AvailableTransitionSerializer(transition).data)
            for transition in available_transitions(task, self.context["user_id"])
        ]
