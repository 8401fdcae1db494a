"""Infrastructure tables every app uses: tenants, the outbox, inbound failures, counters."""

from __future__ import annotations

import uuid
from typing import Self, TypeVar

from django.db import models
from django.utils import timezone


class Tenant(models.Model):
    """An organisation served by this installation. Every domain row belongs to one."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


_M = TypeVar("_M", bound=models.Model)


class TenantQuerySet(models.QuerySet[_M, _M]):
    def for_tenant(self, tenant: Tenant | int) -> Self:
        """The one rule that scopes domain rows to a tenant (selectors and API views go through it)."""
        return self.filter(tenant=tenant)


class TenantOwned(models.Model):
    """Base for domain rows: the tenant column and the one scoping method."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class OutboxMessage(models.Model):
    """A message to publish once the transaction that wrote it has committed.

    Written by `outbox.outbox_enqueue` in the caller's transaction; published
    in id order by `outbox.outbox_relay`. `message_id` becomes the Celery task
    id, so a consumer can drop a re-send; `dedupe_key` names the cause, so one
    cause is enqueued once however often the code path runs.
    """

    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    task_name = models.CharField(max_length=200)
    queue = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=255, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(sent_at__isnull=True), name="outbox_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} → {self.queue} ({self.message_id})"


class InboundFailure(models.Model):
    """A message that could not be processed, kept with its body for an operator."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    task_name = models.CharField(max_length=200, blank=True)
    queue = models.CharField(max_length=200, blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    body = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=64)
    error = models.TextField()
    dead_lettered = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.task_name or 'unknown'}: {self.error_code}"


class MessageCounter(models.Model):
    """How often an inbound message ended a given way (ignored, applied, …)."""

    task_name = models.CharField(max_length=200)
    outcome = models.CharField(max_length=64)
    count = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["task_name", "outcome"]
        constraints = [models.UniqueConstraint(fields=["task_name", "outcome"], name="message_counter_unique")]

    def __str__(self) -> str:
        return f"{self.task_name} {self.outcome}: {self.count}"
