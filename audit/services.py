"""Writing the audit trail.

`audit_append` is called by every service inside the transaction of the
change it records, so the event exists if and only if the change committed.
Events of a tenant form a hash chain; appends of one tenant are serialised
(a transaction-scoped advisory lock on PostgreSQL; on SQLite the settings open
every transaction with BEGIN IMMEDIATE, so there is one writer) so that two
concurrent appends never both chain onto the same predecessor.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from workflow_api.core.logging import current_correlation_id
from workflow_api.core.models import Tenant

GENESIS_HASH = "0" * 64
# First key of the two-int advisory lock: keeps the chain lock apart from any
# other advisory lock the application takes.
_CHAIN_LOCK_NAMESPACE = 0x00A0D17
_INT4 = 2**31
# What the logging context holds when there is no request or message.
_NO_CORRELATION_ID = "-"


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
        """An API caller (TokenUser) or a Django user (the admin site)."""
        user_id = getattr(user, "user_id", None)
        if user_id is None:
            user_id = user.pk
        name = getattr(user, "display_name", "")
        if not name and hasattr(user, "get_full_name"):
            name = user.get_full_name() or user.get_username()
        return cls(id=user_id, name=name or f"user {user_id}")


def _canonical(value: Any) -> Any:
    """The value as it reads back from any database, for hashing.

    PostgreSQL's jsonb keeps numbers as decimals, so a float written as
    `1e+16` or `2.0` may read back as the integer it equals; hashing integral
    numbers as exact integers makes the hash independent of that.
    """
    if isinstance(value, float) and value.is_integer():
        return int(Decimal(repr(value)))
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def _storable(value: Any) -> Any:
    """Plain JSON for the `changes` column: dates (ISO 8601), decimals, UUIDs become strings.

    NaN and infinity are not JSON (PostgreSQL refuses them), so they are kept as text.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


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
    """SHA-256 over the event's content and its predecessor's hash (hex)."""
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
            _canonical(changes),
            correlation_id,
            created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
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
    """Serialise appends of one tenant until the caller's transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Two int4 keys; an id beyond int4 shares a lock with another
            # tenant, which only serialises a little more.
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s::int4, %s::int4)", [_CHAIN_LOCK_NAMESPACE, tenant_id % _INT4]
            )


def audit_append(
    *,
    tenant: Tenant,
    actor: Actor,
    action: AuditAction | str,
    target_type: str,
    target_id: str | int,
    target_display: str = "",
    changes: dict[str, list[Any]] | None = None,
    correlation_id: str | None = None,
) -> AuditEvent:
    """Append one event to the tenant's chain and return it.

    Joins the caller's transaction (call it inside the `transaction.atomic`
    of the change it records) and holds the tenant's chain lock until that
    transaction ends. Inside `audit_batch()` the event is only queued and is
    written, with the batch, when the batch ends (its `hash` is empty until
    then). `correlation_id` defaults to the current request or message id.
    Raises ValueError for a code that is not an AuditAction or a target id
    longer than the column.
    """
    code = AuditAction(action)
    target_id = str(target_id)
    if len(target_id) > AuditEvent._meta.get_field("target_id").max_length:  # type: ignore[operator]
        raise ValueError(f"target_id {target_id[:20]!r}... is too long for the audit trail")
    if correlation_id is None:
        correlation_id = current_correlation_id()
        if correlation_id == _NO_CORRELATION_ID:
            correlation_id = ""
    event = AuditEvent(
        tenant=tenant,
        actor_id=actor.id,
        actor_name=actor.name[:200],
        action=code.value,
        target_type=target_type,
        target_id=target_id,
        target_display=target_display[:255],
        changes=_storable(changes or {}),
        correlation_id=correlation_id[:200],
        created_at=timezone.now(),
    )
    batch = _batch.get()
    if batch is not None:
        batch.add(event)
        return event
    _write_chained([event])
    return event


def _write_chained(events: list[AuditEvent]) -> None:
    """Chain `events` (in order) onto their tenants' chains and insert them.

    Per tenant one lock and one read of the chain head; one INSERT for all.
    """
    by_tenant: dict[int, list[AuditEvent]] = {}
    for event in events:
        by_tenant.setdefault(event.tenant_id, []).append(event)
    with transaction.atomic(savepoint=False):
        # Tenants in id order, so two batches spanning the same tenants cannot deadlock.
        for tenant_id in sorted(by_tenant):
            _lock_chain(tenant_id)
            previous = (
                AuditEvent.objects.filter(tenant_id=tenant_id).order_by("-id").values_list("hash", flat=True).first()
            )
            for event in by_tenant[tenant_id]:
                event.prev_hash = previous or GENESIS_HASH
                event.hash = hash_of(event)
                previous = event.hash
        if len(events) == 1:
            events[0].save()
        else:
            AuditEvent.objects.bulk_create(events)


class _Batch:
    """Events queued by audit_append inside audit_batch(), each with a marker of the savepoint it was queued in.

    The marker is a no-op on_commit callback: Django drops the callbacks of a
    savepoint that rolls back, so an event whose marker is gone was undone
    with its savepoint and is not written.
    """

    def __init__(self) -> None:
        self.queued: list[tuple[AuditEvent, Callable[[], None]]] = []

    def add(self, event: AuditEvent) -> None:
        def marker() -> None:
            return None

        transaction.on_commit(marker)
        self.queued.append((event, marker))

    def surviving(self) -> list[AuditEvent]:
        # Entries are (savepoint ids, callback, robust); the stubs know only two of them.
        alive = {id(entry[1]) for entry in connection.run_on_commit}
        return [event for event, marker in self.queued if id(marker) in alive]


_batch: ContextVar[_Batch | None] = ContextVar("audit_batch", default=None)


@contextmanager
def audit_batch() -> Iterator[None]:
    """Write every event appended inside the block together, when the block ends.

    For hot paths that append several events in one transaction (ticket
    intake): one chain lock, one read of the chain head and one INSERT
    instead of one each per event, and the tenant's chain lock is taken at
    the end of the transaction rather than at its first event, so concurrent
    writers wait on it for less time. Enter it inside the transaction, after
    `transaction.atomic()`, and leave it before the transaction ends. If the
    block raises, nothing is written (the transaction is rolling back).
    Events queued inside a savepoint that rolled back are dropped. Nested
    batches join the outer one.
    """
    if _batch.get() is not None:
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("audit_batch() must be entered inside transaction.atomic()")
    batch = _Batch()
    token = _batch.set(batch)
    try:
        yield
    finally:
        _batch.reset(token)
    events = batch.surviving()
    if events:
        _write_chained(events)


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """The `changes` of an event: {field: [old, new]} for fields that differ.

    A field missing on one side counts as None there, so a removed field is
    recorded as [old, None].
    """
    keys = [*before, *(key for key in after if key not in before)]
    return {key: [before.get(key), after.get(key)] for key in keys if before.get(key) != after.get(key)}
