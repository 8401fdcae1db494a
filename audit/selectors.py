"""Reading the audit trail: the timeline of one object, and checking the chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from django.db.models import QuerySet

from audit.models import AuditEvent
from audit.services import GENESIS_HASH, hash_of
from workflow_api.core.models import Tenant

VERIFY_CHUNK_SIZE = 2000


def audit_timeline(*, tenant: Tenant, target_type: str, target_id: str | int) -> QuerySet[AuditEvent]:
    """Every event about one object, oldest first."""
    return (
        AuditEvent.objects.for_tenant(tenant).filter(target_type=target_type, target_id=str(target_id)).order_by("id")
    )


class BreakKind(StrEnum):
    CONTENT = "content"
    LINK = "link"


@dataclass(frozen=True)
class ChainBreak:
    """The first row of a tenant's chain that does not check out."""

    event_id: int
    tenant_slug: str
    kind: BreakKind
    expected: str
    found: str

    @property
    def explanation(self) -> str:
        if self.kind is BreakKind.CONTENT:
            return "content hash mismatch: the row was altered after it was written"
        return "prev_hash mismatch: a row before it was removed or altered"

    def __str__(self) -> str:
        return (
            f"event {self.event_id} (tenant {self.tenant_slug}): {self.explanation} "
            f"(expected {self.expected[:16]}…, found {self.found[:16]}…)"
        )


@dataclass(frozen=True)
class ChainVerification:
    verified: int
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> ChainBreak | None:
        return min(self.breaks, key=lambda item: item.event_id, default=None)


def audit_chain_verify(*, tenant: Tenant | None = None) -> ChainVerification:
    """Walk each tenant's chain in id order, recomputing every hash.

    A row whose stored hash differs from the hash of its content was altered.
    A row whose prev_hash is not the hash of the tenant's previous row (or the
    genesis hash, for the first row) follows a row that was removed or whose
    hash was rewritten. Each tenant's walk stops at its first break; the rows
    are streamed in chunks, so memory does not grow with the table. Removing
    the newest rows of a chain cannot be seen from the chain itself.
    """
    events = AuditEvent.objects.order_by("tenant_id", "id")
    if tenant is not None:
        events = events.for_tenant(tenant)
    slugs = dict(Tenant.objects.values_list("id", "slug"))

    verified = 0
    breaks: list[ChainBreak] = []
    current_tenant: int | None = None
    expected_prev = GENESIS_HASH
    broken = False
    for event in events.iterator(chunk_size=VERIFY_CHUNK_SIZE):
        if event.tenant_id != current_tenant:
            current_tenant, expected_prev, broken = event.tenant_id, GENESIS_HASH, False
        if broken:
            continue
        recomputed = hash_of(event)
        problem: ChainBreak | None = None
        if recomputed != event.hash:
            problem = ChainBreak(event.id, slugs[event.tenant_id], BreakKind.CONTENT, recomputed, event.hash)
        elif event.prev_hash != expected_prev:
            problem = ChainBreak(event.id, slugs[event.tenant_id], BreakKind.LINK, expected_prev, event.prev_hash)
        if problem is not None:
            breaks.append(problem)
            broken = True
            continue
        verified += 1
        expected_prev = event.hash
    return ChainVerification(verified=verified, breaks=breaks)
