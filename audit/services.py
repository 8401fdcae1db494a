"""Writing the audit trail.

`audit_append` is called by every service inside the transaction of the
change it records, so the event exists if and only if the change committed.
Events of a tenant form a hash chain; appends of one tenant are serialised
(a transaction-scoped advisory lock on PostgreSQL; SQLite has one writer) so
that two concurrent appends never both chain onto the same predecessor.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from workflow_api.core.logging import current_correlation_id
from workflow_api.core.models import Tenant

GENESIS_HASH = "0" * 64
_CHAIN_LOCK_NAMESPACE = 0x00A0D17


@dataclass(frozen=True)
class Actor:
    """Who did it: a user (auth service id and display name) or the system."""

    id: int | None
    name: str

    @classmethod
    def system(cls) -> Actor:
        return cls(id=None, name=AuditEvent.SYSTEM_ACTOR)

    @classmethod
    def of(cls, user: Any) -> Actor:
        return cls(id=user.user_id, name=user.display_name)


def event_hash(
    *,
    prev_hash: str,
    tenant_id: int,
    actor_id: int | None,
    actor_name: str,
    action: str,
    target_type: str,
    target_id: str,
    target_display: str,
    changes: Any,
    correlation_id: str,
    created_at: datetime,
) -> str:
    payload = json.dumps(
        [
            prev_hash,
            tenant_id,
            actor_id,
            actor_name,
            action,
            target_type,
            target_id,
            target_display,
            changes,
            correlation_id,
            created_at.isoformat(timespec="microseconds"),
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def hash_of(event: AuditEvent) -> str:
    return event_hash(
        prev_hash=event.prev_hash,
        tenant_id=event.tenant_id,
        actor_id=event.actor_id,
        actor_name=event.actor_name,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        target_display=event.target_display,
        changes=event.changes,
        correlation_id=event.correlation_id,
        created_at=event.created_at,
    )


def _lock_chain(tenant_id: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_CHAIN_LOCK_NAMESPACE, tenant_id])


def audit_append(
    *,
    tenant: Tenant,
    actor: Actor,
    action: AuditAction,
    target_type: str,
    target_id: str | int,
    target_display: str = "",
    changes: dict[str, list[Any]] | None = None,
    correlation_id: str | None = None,
) -> AuditEvent:
    """Append one event to the tenant's chain. Joins the caller's transaction."""
    with transaction.atomic():
        _lock_chain(tenant.id)
        previous = AuditEvent.objects.filter(tenant=tenant).order_by("-id").values_list("hash", flat=True).first()
        event = AuditEvent(
            tenant=tenant,
            actor_id=actor.id,
            actor_name=actor.name[:200],
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            target_display=target_display[:255],
            changes=json.loads(json.dumps(changes or {}, default=str)),
            correlation_id=(correlation_id if correlation_id is not None else current_correlation_id())[:200],
            created_at=timezone.now(),
            prev_hash=previous or GENESIS_HASH,
        )
        event.hash = hash_of(event)
        event.save()
        return event


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """The `changes` of an event: {field: [old, new]} for fields that differ."""
    return {key: [before.get(key), after.get(key)] for key in after if before.get(key) != after.get(key)}
