"""Workflows and their published, immutable versions.

A Workflow row and its Steps/Transitions (step app) are the *draft* that
designers edit. Publishing validates the draft and freezes it into a
WorkflowVersion: the complete definition as JSON plus its content hash.
Version rows are append-only at the database (like the audit trail). Tasks
are pinned to the version they started on, so editing or re-publishing a
workflow never changes a running task; `workflow_migrate` moves tasks to a
newer version explicitly.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from workflow_api.core.models import TenantOwned


class WorkflowStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    PAUSED = "paused", "Paused"
    RETIRED = "retired", "Retired"


class CompletionAction(models.TextChoices):
    NONE = "", "None (resolve the ticket)"
    CREATE_FIELD_JOB = "create_field_job", "Create a field job"
    NOTIFY_OWNER = "notify_owner", "Notify the ticket owner"


PRIORITIES = ("urgent", "high", "medium", "low")


class Workflow(TenantOwned):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    department = models.CharField(max_length=200)
    category = models.CharField(max_length=200)
    sub_category = models.CharField(max_length=200, blank=True)
    sla_urgent = models.DurationField(default=timedelta(hours=4), validators=[MinValueValidator(timedelta(0))])
    sla_high = models.DurationField(default=timedelta(hours=8), validators=[MinValueValidator(timedelta(0))])
    sla_medium = models.DurationField(default=timedelta(days=2), validators=[MinValueValidator(timedelta(0))])
    sla_low = models.DurationField(default=timedelta(days=5), validators=[MinValueValidator(timedelta(0))])
    status = models.CharField(max_length=16, choices=WorkflowStatus.choices, default=WorkflowStatus.DRAFT)
    completion_action = models.CharField(max_length=32, choices=CompletionAction.choices, blank=True, default="")
    current_version = models.ForeignKey(
        "workflow.WorkflowVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    edit_version = models.PositiveIntegerField(
        default=1, help_text="Bumped on every draft change; a save based on an older value is refused."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Versions are append-only, so a deleted workflow is hidden, not removed.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=models.Q(deleted_at__isnull=True),
                name="workflow_unique_name_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def sla(self) -> dict[str, timedelta]:
        return {priority: getattr(self, f"sla_{priority}") for priority in PRIORITIES}


class WorkflowVersion(TenantOwned):
    """One published definition. Never changed after it is written (database triggers)."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    content_hash = models.CharField(max_length=64)
    # Normalised matching keys (lower case, trimmed), so matching is one indexed query.
    match_department = models.CharField(max_length=200)
    match_category = models.CharField(max_length=200)
    match_sub_category = models.CharField(max_length=200, blank=True)
    published_by_id = models.BigIntegerField(null=True, blank=True)
    published_by_name = models.CharField(max_length=200)
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="workflow_version_unique_number")]
        indexes = [
            models.Index(
                fields=["tenant", "match_department", "match_category", "match_sub_category"],
                name="workflow_version_match_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.workflow} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("Workflow versions cannot be changed.")
        super().save(*args, **kwargs)

    def step(self, key: str) -> dict[str, Any] | None:
        return next((step for step in self.definition["steps"] if step["key"] == key), None)
