"""Parsing and rendering for the workflow designer's API (api.md "Workflows").

Serializers only check the shape of a request (types, lengths, formats);
every rule about workflows themselves (unique names, graph structure, what
may be published) is checked by workflow.services, which report it in the
same error shape.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils.dateparse import parse_duration
from django.utils.duration import duration_iso_string
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from step.models import AssignmentStrategy
from workflow.definition import ProblemCode
from workflow.models import CompletionAction, Workflow, WorkflowStatus
from workflow.services import Graph, GraphEdge, GraphNode

# --- SLA -------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [{"type": "string", "example": "PT4H"}, {"type": "integer", "minimum": 1}],
        "description": "An ISO-8601 duration (PT4H, P2D) or a number of seconds. Always answered as ISO-8601.",
    }
)
class SlaDurationField(serializers.Field):
    """A positive duration given as ISO-8601 (`PT4H`, `P2D`) or as whole seconds."""

    # Deadlines are computed as "now + SLA"; a bound keeps that arithmetic far from datetime's limits.
    MAXIMUM = timedelta(days=3650)

    default_error_messages = {
        "invalid": "Enter an ISO-8601 duration such as PT4H or P2D, or a whole number of seconds.",
        "not_positive": "The duration must be longer than zero.",
        "too_long": "The duration must be at most 10 years.",
    }

    def to_internal_value(self, data: Any) -> timedelta:
        duration: timedelta | None = None
        try:
            if isinstance(data, int) and not isinstance(data, bool):
                duration = timedelta(seconds=data)
            elif isinstance(data, str):
                duration = parse_duration(data.strip())
        except OverflowError:
            self.fail("too_long")
        if duration is None:
            self.fail("invalid")
        if duration <= timedelta(0):
            self.fail("not_positive")
        if duration > self.MAXIMUM:
            self.fail("too_long")
        return duration

    def to_representation(self, value: timedelta) -> str:
        return duration_iso_string(value)


class SlaSerializer(serializers.Serializer):
    """Target resolution time per ticket priority. Omitted priorities keep their value (or the default)."""

    low = SlaDurationField(required=False)
    medium = SlaDurationField(required=False)
    high = SlaDurationField(required=False)
    urgent = SlaDurationField(required=False)


# --- workflows ---------------------------------------------------------------------


class WorkflowSerializer(serializers.Serializer):
    """A workflow as the API shows it. `status` changes only through publish/pause/retire."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    department = serializers.CharField(read_only=True)
    category = serializers.CharField(read_only=True)
    sub_category = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=WorkflowStatus.choices, read_only=True)
    sla = serializers.SerializerMethodField()
    completion_action = serializers.ChoiceField(choices=CompletionAction.choices, read_only=True)
    current_version = serializers.SerializerMethodField(help_text="The number of the version new tickets run on.")
    edit_version = serializers.IntegerField(
        read_only=True, help_text="Send it back with a change; a change based on an older value is refused (409)."
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field(SlaSerializer)
    def get_sla(self, workflow: Workflow) -> dict[str, str]:
        return {priority: duration_iso_string(value) for priority, value in workflow.sla().items()}

    def get_current_version(self, workflow: Workflow) -> int | None:
        return workflow.current_version.number if workflow.current_version_id else None  # type: ignore[union-attr]


class WorkflowCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, required=False)
    department = serializers.CharField(max_length=200)
    category = serializers.CharField(max_length=200)
    sub_category = serializers.CharField(max_length=200, allow_blank=True, required=False)
    sla = SlaSerializer(required=False)
    completion_action = serializers.ChoiceField(choices=CompletionAction.choices, allow_blank=True, required=False)

    def workflow_fields(self) -> dict[str, Any]:
        """The validated data as keyword arguments of workflow_create / workflow_update."""
        fields = {name: value for name, value in self.validated_data.items() if name not in ("sla", "edit_version")}
        for priority, value in self.validated_data.get("sla", {}).items():
            fields[f"sla_{priority}"] = value
        return fields


class WorkflowUpdateSerializer(WorkflowCreateSerializer):
    edit_version = serializers.IntegerField(
        required=False, min_value=1, help_text="The edit_version you read; omit to overwrite unconditionally."
    )


# --- the graph -----------------------------------------------------------------------


class GraphNodeSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True, help_text="The step's id.")
    key = serializers.SlugField(read_only=True, help_text="Stable across versions; running tasks move by it.")
    name = serializers.CharField(read_only=True)
    role_id = serializers.IntegerField(read_only=True, allow_null=True, help_text="The auth service's role id.")
    role_pk = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The engine's own role id (seeded roles have no role_id yet)."
    )
    role_name = serializers.CharField(read_only=True, allow_null=True)
    escalate_to_role_id = serializers.IntegerField(read_only=True, allow_null=True)
    escalate_to_role_pk = serializers.IntegerField(read_only=True, allow_null=True)
    weight = serializers.DecimalField(max_digits=8, decimal_places=2, coerce_to_string=False, read_only=True)
    is_start = serializers.BooleanField(read_only=True)
    is_end = serializers.BooleanField(read_only=True)
    instruction = serializers.CharField(read_only=True)
    x = serializers.IntegerField(read_only=True)
    y = serializers.IntegerField(read_only=True)
    assignment_strategy = serializers.ChoiceField(choices=AssignmentStrategy.choices, read_only=True)
    assignee_count = serializers.IntegerField(read_only=True)


# Adds the `from` and `to` fields, whose names are Python keywords (a comment, not
# a docstring: the schema would show it as the description of every edge).
class _FromTo:
    def get_fields(self) -> dict[str, serializers.Field]:
        fields: dict[str, serializers.Field] = super().get_fields()  # type: ignore[misc]
        fields.update(self.from_to_fields())
        return fields

    def from_to_fields(self) -> dict[str, serializers.Field]:
        raise NotImplementedError


class GraphEdgeSerializer(_FromTo, serializers.Serializer):
    id = serializers.IntegerField(read_only=True, help_text="The transition's id.")
    name = serializers.CharField(read_only=True)

    def from_to_fields(self) -> dict[str, serializers.Field]:
        return {
            "from": serializers.IntegerField(read_only=True, help_text="The id of the step it leaves."),
            "to": serializers.IntegerField(read_only=True, help_text="The id of the step it enters."),
        }


class GraphSerializer(serializers.Serializer):
    nodes = GraphNodeSerializer(many=True, read_only=True)
    edges = GraphEdgeSerializer(many=True, read_only=True)
    edit_version = serializers.IntegerField(read_only=True)


_CLIENT_ID_HELP = "A stored id keeps that step; any other string creates a new one that edges may refer to."


class GraphNodeInputSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=64, help_text=_CLIENT_ID_HELP)
    key = serializers.SlugField(
        max_length=100, required=False, help_text="For a new step only (stored steps keep theirs); made from the name."
    )
    name = serializers.CharField(max_length=200)
    role_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    role_pk = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Instead of role_id, for a seeded role."
    )
    escalate_to_role_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    escalate_to_role_pk = serializers.IntegerField(required=False, allow_null=True, default=None)
    # No minimum here: a negative weight is reported with the graph's other problems.
    weight = serializers.DecimalField(max_digits=8, decimal_places=2, required=False, default=Decimal("1"))
    is_start = serializers.BooleanField(required=False, default=False)
    is_end = serializers.BooleanField(required=False, default=False)
    instruction = serializers.CharField(required=False, allow_blank=True, default="")
    x = serializers.IntegerField(required=False, default=0, min_value=-(2**31), max_value=2**31 - 1)
    y = serializers.IntegerField(required=False, default=0, min_value=-(2**31), max_value=2**31 - 1)
    assignment_strategy = serializers.ChoiceField(
        choices=AssignmentStrategy.choices, required=False, default=AssignmentStrategy.ROUND_ROBIN
    )
    assignee_count = serializers.IntegerField(required=False, default=1, min_value=1, max_value=32767)


class GraphEdgeInputSerializer(_FromTo, serializers.Serializer):
    id = serializers.CharField(max_length=64, help_text="A stored id, or any string for a new transition.")
    name = serializers.CharField(max_length=100)

    def from_to_fields(self) -> dict[str, serializers.Field]:
        return {
            "from": serializers.CharField(max_length=64, help_text="The id (stored or client's) of a node."),
            "to": serializers.CharField(max_length=64, help_text="The id (stored or client's) of a node."),
        }


class GraphInputSerializer(serializers.Serializer):
    nodes = GraphNodeInputSerializer(many=True)
    edges = GraphEdgeInputSerializer(many=True)
    edit_version = serializers.IntegerField(
        required=False, min_value=1, help_text="The edit_version you read; omit to overwrite unconditionally."
    )

    def to_graph(self) -> Graph:
        """The validated payload as workflow_graph_replace takes it (all ids as strings)."""
        data = self.validated_data
        return Graph(
            nodes=[
                GraphNode(
                    id=node["id"],
                    key=node.get("key"),
                    name=node["name"],
                    role_id=node["role_id"],
                    escalate_to_role_id=node["escalate_to_role_id"],
                    role_pk=node["role_pk"],
                    escalation_role_pk=node["escalate_to_role_pk"],
                    weight=node["weight"],
                    is_start=node["is_start"],
                    is_end=node["is_end"],
                    instruction=node["instruction"],
                    x=node["x"],
                    y=node["y"],
                    assignment_strategy=node["assignment_strategy"],
                    assignee_count=node["assignee_count"],
                )
                for node in data["nodes"]
            ],
            edges=[
                GraphEdge(id=edge["id"], from_id=edge["from"], to_id=edge["to"], name=edge["name"])
                for edge in data["edges"]
            ],
        )


class ProblemSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=[(code.value, code.value) for code in ProblemCode])
    message = serializers.CharField()
    step = serializers.CharField(required=False, help_text="The step's id it concerns.")
    transition = serializers.CharField(required=False, help_text="The transition's id it concerns.")


class ValidationResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    # The contract's name; the metaclass moves declared fields off the class, so Serializer.errors still works.
    errors = ProblemSerializer(many=True)  # type: ignore[assignment]


# --- versions ---------------------------------------------------------------------------


class PublishedBySerializer(serializers.Serializer):
    user_id = serializers.IntegerField(source="published_by_id", allow_null=True)
    name = serializers.CharField(source="published_by_name")


class WorkflowVersionSerializer(serializers.Serializer):
    number = serializers.IntegerField(read_only=True)
    content_hash = serializers.CharField(read_only=True)
    published_at = serializers.DateTimeField(read_only=True)
    published_by = PublishedBySerializer(source="*", read_only=True)


class WorkflowVersionDetailSerializer(WorkflowVersionSerializer):
    definition = serializers.JSONField(read_only=True, help_text="The frozen definition; it never changes.")


class PublishResultSerializer(WorkflowVersionDetailSerializer):
    created = serializers.BooleanField(
        read_only=True, help_text="False when the definition was unchanged and the current version was kept."
    )


class VersionDiffQuerySerializer(serializers.Serializer):
    against = serializers.IntegerField(min_value=1, help_text="The number of the older version to compare with.")


class VersionDiffSerializer(serializers.Serializer):
    against = serializers.IntegerField(help_text="The version compared with (old side).")
    number = serializers.IntegerField(help_text="This version (new side).")
    steps_added = serializers.ListField(child=serializers.CharField(), help_text="Step keys.")
    steps_removed = serializers.ListField(child=serializers.CharField(), help_text="Step keys.")
    steps_changed = serializers.DictField(
        child=serializers.DictField(child=serializers.JSONField()), help_text="{step key: {field: [old, new]}}"
    )
    transitions_added = serializers.ListField(child=serializers.CharField())
    transitions_removed = serializers.ListField(child=serializers.CharField())
    other_changed = serializers.DictField(child=serializers.JSONField(), help_text="{field: [old, new]}")


# --- weights ---------------------------------------------------------------------------------


class StepWeightInputSerializer(serializers.Serializer):
    step_id = serializers.IntegerField()
    weight = serializers.DecimalField(max_digits=8, decimal_places=2)


class WeightsInputSerializer(serializers.Serializer):
    steps = StepWeightInputSerializer(many=True, allow_empty=False)
    edit_version = serializers.IntegerField(required=False, min_value=1)

    def validate_steps(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = [step["step_id"] for step in steps]
        twice = sorted({step_id for step_id in ids if ids.count(step_id) > 1})
        if twice:
            raise serializers.ValidationError(f"Each step may be given once; given more than once: {twice}.")
        return steps

    def to_weights(self) -> dict[int, Decimal]:
        return {step["step_id"]: step["weight"] for step in self.validated_data["steps"]}


class StepWeightSerializer(serializers.Serializer):
    step_id = serializers.IntegerField()
    key = serializers.SlugField()
    name = serializers.CharField()
    weight = serializers.DecimalField(max_digits=8, decimal_places=2, coerce_to_string=False)


class WeightsSerializer(serializers.Serializer):
    steps = StepWeightSerializer(many=True)
    edit_version = serializers.IntegerField()


# --- statistics, migration, transfer -------------------------------------------------------------


class StatisticsSerializer(serializers.Serializer):
    workflow = serializers.IntegerField()
    tasks_total = serializers.IntegerField()
    tasks_by_status = serializers.DictField(child=serializers.IntegerField())
    open_tasks_by_step = serializers.DictField(child=serializers.IntegerField(), help_text="{step key: open tasks}")
    average_seconds_per_step = serializers.DictField(child=serializers.FloatField(), help_text="{step key: seconds}")


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true or false: for a switch that decides whether tasks really move."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class MigrateInputSerializer(serializers.Serializer):
    dry_run = StrictBooleanField(help_text="true: only plan; false: move the mappable tasks.")


class TaskMoveSerializer(serializers.Serializer):
    task_id = serializers.IntegerField()
    from_version = serializers.IntegerField()
    step_key = serializers.CharField()


class MigrationBlockerSerializer(TaskMoveSerializer):
    reason = serializers.CharField()


class MigrationPlanSerializer(serializers.Serializer):
    target_version = serializers.IntegerField()
    applied = serializers.BooleanField()
    moves = TaskMoveSerializer(many=True)
    blockers = MigrationBlockerSerializer(many=True)


class ImportQuerySerializer(serializers.Serializer):
    publish = serializers.BooleanField(required=False, default=False, help_text="Publish it in the same go.")
