"""The task actions (api.md "Tasks"): transition, status, escalate, transfer, assign, cancel.

Each view parses its body with a serializer (400 with field errors), calls one
service in task.services (which runs the contract's checks in order, locks the
task and raises the domain errors), then answers 200 with the task as
`GET /api/v1/tasks/{id}/` shows it to the caller.
"""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from task import services
from task.api.serializers import TaskDetailSerializer
from task.models import ItemStatus
from task.selectors import task_get
from workflow_api.core.auth import TokenUser
from workflow_api.core.errors import ApiError, ErrorCode


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: "3", 3.0 and true are refused rather than coerced."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return cast(int, super().to_internal_value(data))


class TransitionInputSerializer(serializers.Serializer):
    transition_id = StrictIntegerField(
        allow_null=True, help_text="A transition id of the task's version (available_transitions); null finishes."
    )
    # Blank or missing notes are the service's `notes_required`, not a generic validation error.
    notes = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class StatusInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[ItemStatus.IN_PROGRESS, ItemStatus.ON_HOLD])
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class EscalateInputSerializer(serializers.Serializer):
    reason = serializers.CharField()


class TransferInputSerializer(serializers.Serializer):
    to_user_id = StrictIntegerField()
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class AssignInputSerializer(serializers.Serializer):
    user_id = StrictIntegerField()


class CancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField()


_ERRORS = {
    400: OpenApiResponse(description="Field errors (`validation_error`, `notes_required`) or `invalid_transition`."),
    403: OpenApiResponse(description="`not_assigned` or `permission_denied`."),
    404: OpenApiResponse(description="No such task visible to the caller (or no such transition)."),
    409: OpenApiResponse(
        description="`task_moved`: somebody else's action closed the caller's item (the task moved on, "
        "was completed or cancelled)."
    ),
    503: OpenApiResponse(description="`no_assignee`: nobody active holds the role that must take over."),
}


class _TaskAction(APIView):
    input_serializer: type[serializers.Serializer]

    def perform(self, *, task_id: int, user: TokenUser, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        parsed = self.input_serializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        user = cast(TokenUser, request.user)
        self.perform(task_id=pk, user=user, data=dict(parsed.validated_data))
        task = task_get(tenant=user.tenant, user=user, task_id=pk)
        if task is None:  # the action left it out of the caller's sight
            raise ApiError(ErrorCode.NOT_FOUND, "Task not found.", status_code=404)
        return Response(TaskDetailSerializer(task, context={"request": request, "user_id": user.user_id}).data)


class TaskTransitionView(_TaskAction):
    """Take a transition of the task's workflow version (`transition_id`), or finish the task (null)."""

    input_serializer = TransitionInputSerializer

    @extend_schema(request=TransitionInputSerializer, responses={200: TaskDetailSerializer, **_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, *, task_id: int, user: TokenUser, data: dict[str, Any]) -> None:
        services.task_transition(task_id=task_id, user=user, transition_id=data["transition_id"], notes=data["notes"])


class TaskStatusView(_TaskAction):
    """Set the caller's active item on the current step to in_progress or on_hold."""

    input_serializer = StatusInputSerializer

    @extend_schema(request=StatusInputSerializer, responses={200: TaskDetailSerializer, **_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, *, task_id: int, user: TokenUser, data: dict[str, Any]) -> None:
        services.task_item_status(task_id=task_id, user=user, status=data["status"], notes=data["notes"])


class TaskEscalateView(_TaskAction):
    """Hand the caller's item to the step's escalation role (origin `escalation`)."""

    input_serializer = EscalateInputSerializer

    @extend_schema(request=EscalateInputSerializer, responses={200: TaskDetailSerializer, **_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, *, task_id: int, user: TokenUser, data: dict[str, Any]) -> None:
        services.task_escalate(task_id=task_id, user=user, reason=data["reason"])


class TaskTransferView(_TaskAction):
    """Admin or ticket owner: move the current step's item to another person (origin `transferred`)."""

    input_serializer = TransferInputSerializer

    @extend_schema(request=TransferInputSerializer, responses={200: TaskDetailSerializer, **_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, *, task_id: int, user: TokenUser, data: dict[str, Any]) -> None:
        services.task_transfer(task_id=task_id, user=user, to_user_id=data["to_user_id"], notes=data["notes"])


class TaskAssignView(_TaskAction):
    """Admin: add an item for a user on the current step (origin `manual`)."""

    input_serializer = AssignInputSerializer

    @extend_schema(request=AssignInputSerializer, responses={200: TaskDetailSerializer, **_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, *, task_id: int, user: TokenUser, data: dict[str, Any]) -> None:
        services.task_assign(task_id=task_id, user=user, user_id=data["user_id"])


class TaskCancelView(_TaskAction):
    """Admin: cancel the task; its active items are closed."""

    input_serializer = CancelInputSerializer

    @extend_schema(request=CancelInputSerializer, responses={200: TaskDetailSerializer, **_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, *, task_id: int, user: TokenUser, data: dict[str, Any]) -> None:
        services.task_cancel(task_id=task_id, user=user, reason=data["reason"])
