"""The steps of a workflow's draft graph and the named transitions between them."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from workflow_api.core.models import TenantOwned


class AssignmentStrategy(models.TextChoices):
    ROUND_ROBIN = "round_robin", "Round robin"
    LEAST_LOADED = "least_loaded", "Least loaded"


class Step(TenantOwned):
    workflow = models.ForeignKey("workflow.Workflow", on_delete=models.CASCADE, related_name="steps")
    key = models.SlugField(
        max_length=100, help_text="Stable identifier: survives renames, maps running tasks between versions."
    )
    name = models.CharField(max_length=200)
    instruction = models.TextField(blank=True)
    role = models.ForeignKey("role.Role", on_delete=models.PROTECT, null=True, blank=True, related_name="owned_steps")
    escalation_role = models.ForeignKey(
        "role.Role", on_delete=models.PROTECT, null=True, blank=True, related_name="escalation_steps"
    )
    weight = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("1"), validators=[MinValueValidator(Decimal("0"))]
    )
    is_start = models.BooleanField(default=False)
    is_end = models.BooleanField(default=False)
    x = models.IntegerField(default=0)
    y = models.IntegerField(default=0)
    assignment_strategy = models.CharField(
        max_length=16, choices=AssignmentStrategy.choices, default=AssignmentStrategy.ROUND_ROBIN
    )
    assignee_count = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["workflow", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "key"], name="step_unique_key_per_workflow"),
            models.CheckConstraint(condition=Q(weight__gte=0), name="step_weight_not_negative"),
            models.CheckConstraint(condition=Q(assignee_count__gte=1), name="step_assignee_count_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class Transition(TenantOwned):
    workflow = models.ForeignKey("workflow.Workflow", on_delete=models.CASCADE, related_name="transitions")
    from_step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="outgoing")
    to_step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="incoming")
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["workflow", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(from_step=F("to_step")),
                name="transition_no_self_loop",
                violation_error_message="A transition cannot lead from a step back to the same step.",
            ),
            models.UniqueConstraint(fields=["from_step", "to_step", "name"], name="transition_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.from_step} —{self.name}→ {self.to_step}"
