"""Mirroring the auth service's `tts` roles and role memberships.

Two inbound messages feed this module (shared contract, messages.md):
`role_data` -> `role_sync` and `user_role_data` -> `role_member_sync`.
Delivery is at-least-once and unordered, so both services are written to
converge to the same state whatever order, and however often, the messages of
one entity arrive in:

- Strict validation. A payload that is not a dict, an id that is not an
  integer (a bool is not one), an unknown `action`, an unreadable date, a
  missing name or an unknown `tenant` raises `InvalidMessage`; the inbound job
  records and dead-letters it. Nothing is written.
- Other systems. A message whose `system` is not `"tts"` is not ours: it
  returns `SyncOutcome.IGNORED_OTHER_SYSTEM` before the rest is checked and
  changes nothing.
- `create` inserts the entity if it is absent. It also fills in a
  *provisional* role (one made from a membership message) and adopts a
  *seeded* role (same name, no `role_id` yet, in that tenant). It never
  overwrites a live synced entity (`DUPLICATE`).
- `update` upserts: it overwrites every field the message carries (and fills
  in or adopts like `create`).
- `delete` writes a tombstone (`deleted_at`) carrying the message's fields,
  inserting one if the entity was never seen. A tombstone wins forever: any
  later or repeated `create`/`update` of that id is `IGNORED_DELETED` and a
  repeated `delete` is a `DUPLICATE`.
- A membership whose role is unknown makes a provisional role from its
  `role_id`/`role_name` (or adopts a seeded role of that name), so no
  membership is ever lost; the role's own messages fill it in later. A
  role's tombstone leaves its memberships alone: readers hide the members of
  deleted roles (role.selectors).
- A message that changes nothing (a duplicate, a stale `create`, an `update`
  equal to the stored state) writes nothing, not even an audit row. Every
  real change writes one audit row in the same transaction: actor = the
  system, correlation id = the message id, changes = {field: [old, new]}.

With these rules, any order of one `create`, one `update` and an optional
`delete` per entity (plus duplicates) ends in the same rows. Two `update`s of
one entity carry no version to order them by, so their last arrival wins.

Concurrency: the entity row is locked (`select_for_update`) while it is
compared and changed, and inserts rely on the unique constraints
(tenant, role_id) and (tenant, user_system_role_id). When two workers insert
the same entity at once, the loser's IntegrityError rolls its transaction
back and the whole use case is retried, now finding the winner's row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.models import AuditAction
from audit.services import Actor, audit_append, diff
from role.models import Role, RoleMember
from workflow_api.core.inbound import InvalidMessage, message_count
from workflow_api.core.models import Tenant
from workflow_api.core.tenancy import UnknownTenant, tenant_from_slug

TTS_SYSTEM = "tts"
INVALID_ROLE_MESSAGE = "invalid_role_message"
INVALID_USER_ROLE_MESSAGE = "invalid_user_role_message"
UNKNOWN_TENANT = "unknown_tenant"

_MAX_DB_ID = 2**63 - 1
_INSERT_ATTEMPTS = 3


class SyncAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class SyncOutcome(StrEnum):
    """How a sync message ended; the inbound jobs count these (MessageCounter)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED_DELETED = "ignored_deleted"
    IGNORED_OTHER_SYSTEM = "ignored_other_system"


# --- Reading the messages ------------------------------------------------------


class _Reader:
    """Typed access to one message's fields; every problem is an InvalidMessage."""

    def __init__(self, payload: Any, *, code: str, what: str) -> None:
        if not isinstance(payload, dict):
            raise InvalidMessage(f"{what} must be a JSON object, got {type(payload).__name__}", code=code)
        self.payload: dict[str, Any] = payload
        self.code = code
        self.tenant: Tenant | None = None

    def fail(self, message: str) -> InvalidMessage:
        return InvalidMessage(message, code=self.code, tenant=self.tenant)

    def identifier(self, key: str) -> int:
        value = self.payload.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{key} must be an integer, got {value!r}")
        if not 0 < value <= _MAX_DB_ID:
            raise self.fail(f"{key} must be a positive 64-bit integer, got {value!r}")
        return value

    def text(self, key: str, *, max_length: int, required: bool = False) -> str:
        value = self.payload.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            raise self.fail(f"{key} must be a string, got {value!r}")
        value = value.strip()
        if required and not value:
            raise self.fail(f"{key} must not be blank")
        if len(value) > max_length:
            raise self.fail(f"{key} is longer than {max_length} characters")
        return value

    def flag(self, key: str, *, default: bool) -> bool:
        value = self.payload.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(f"{key} must be true or false, got {value!r}")
        return value

    def moment(self, key: str) -> datetime | None:
        """An ISO-8601 date-time or null; one without an offset is taken as UTC."""
        value = self.payload.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{key} must be an ISO-8601 date-time string, got {value!r}")
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is None:
            raise self.fail(f"{key} is not an ISO-8601 date-time: {value!r}")
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, UTC)
        return parsed

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.payload.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{key} must be a JSON object, got {value!r}")
        return value

    def action(self) -> SyncAction:
        value = self.payload.get("action")
        if isinstance(value, str) and value in SyncAction._value2member_map_:
            return SyncAction(value)
        allowed = ", ".join(action.value for action in SyncAction)
        raise self.fail(f"action must be one of {allowed}, got {value!r}")

    def is_for_other_system(self) -> bool:
        system = self.payload.get("system")
        if not isinstance(system, str):
            raise self.fail(f"system must be a string, got {system!r}")
        return system != TTS_SYSTEM

    def resolve_tenant(self) -> Tenant:
        slug = self.payload.get("tenant")
        if slug is not None and not isinstance(slug, str):
            raise InvalidMessage(f"tenant must be a string (a tenant slug), got {slug!r}", code=UNKNOWN_TENANT)
        try:
            self.tenant = tenant_from_slug(slug)
        except UnknownTenant as exc:
            raise InvalidMessage(str(exc), code=UNKNOWN_TENANT) from exc
        return self.tenant


@dataclass(frozen=True)
class RoleData:
    tenant: Tenant
    action: SyncAction
    role_id: int
    name: str
    description: str
    is_custom: bool
    created_at: datetime | None

    def fields(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "system": TTS_SYSTEM,
            "description": self.description,
            "is_custom": self.is_custom,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class MembershipData:
    tenant: Tenant
    action: SyncAction
    user_system_role_id: int
    user_id: int
    email: str
    full_name: str
    role_id: int
    role_name: str
    assigned_at: datetime | None
    is_active: bool
    settings: dict[str, Any]

    def fields(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "email": self.email,
            "full_name": self.full_name,
            "assigned_at": self.assigned_at,
            "is_active": self.is_active,
            "settings": self.settings,
        }


def role_data_parse(payload: Any) -> RoleData | None:
    """Validate a `role_data` message; None when it is for another system. Raises InvalidMessage."""
    reader = _Reader(payload, code=INVALID_ROLE_MESSAGE, what="role_data")
    if reader.is_for_other_system():
        return None
    tenant = reader.resolve_tenant()
    return RoleData(
        tenant=tenant,
        action=reader.action(),
        role_id=reader.identifier("role_id"),
        name=reader.text("name", max_length=200, required=True),
        description=reader.text("description", max_length=10000),
        is_custom=reader.flag("is_custom", default=False),
        created_at=reader.moment("created_at"),
    )


def membership_data_parse(payload: Any) -> MembershipData | None:
    """Validate a `user_role_data` message; None when it is for another system. Raises InvalidMessage."""
    reader = _Reader(payload, code=INVALID_USER_ROLE_MESSAGE, what="user_role_data")
    if reader.is_for_other_system():
        return None
    tenant = reader.resolve_tenant()
    return MembershipData(
        tenant=tenant,
        action=reader.action(),
        user_system_role_id=reader.identifier("user_system_role_id"),
        user_id=reader.identifier("user_id"),
        email=reader.text("user_email", max_length=254),
        full_name=reader.text("user_full_name", max_length=200),
        role_id=reader.identifier("role_id"),
        role_name=reader.text("role_name", max_length=200, required=True),
        assigned_at=reader.moment("assigned_at"),
        is_active=reader.flag("is_active", default=True),
        settings=reader.mapping("settings"),
    )


# --- Shared machinery ------------------------------------------------------------


class _InsertConflict(Exception):
    """Another transaction inserted the same key first; retry the use case."""


def _insert(instance: Role | RoleMember) -> None:
    try:
        with transaction.atomic():
            instance.save(force_insert=True)
    except IntegrityError as exc:
        raise _InsertConflict from exc


def _retrying_insert_conflicts(apply: Callable[[], SyncOutcome], *, counter: str | None) -> SyncOutcome:
    for attempt in range(1, _INSERT_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                outcome = apply()
                _count(counter, outcome)
                return outcome
        except _InsertConflict as exc:
            if attempt == _INSERT_ATTEMPTS:
                raise IntegrityError(f"still conflicting after {attempt} attempts: {exc.__cause__}") from exc
    raise AssertionError("unreachable")


def _count(counter: str | None, outcome: SyncOutcome) -> None:
    """Count the outcome under the inbound job's name (`counter`), in the caller's transaction if there is one."""
    if counter is not None:
        message_count(task_name=counter, outcome=outcome.value)


def _audit_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _audit_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    return diff({k: _audit_value(v) for k, v in before.items()}, {k: _audit_value(v) for k, v in after.items()})


# --- Roles -----------------------------------------------------------------------

_ROLE_AUDITED = ("role_id", "name", "system", "description", "is_custom", "created_at", "provisional", "deleted_at")


def _role_state(role: Role) -> dict[str, Any]:
    return {name: getattr(role, name) for name in _ROLE_AUDITED}


def _role_audit(*, tenant: Tenant, role: Role, action: AuditAction, before: Mapping[str, Any], message_id: str) -> None:
    audit_append(
        tenant=tenant,
        actor=Actor.system(),
        action=action,
        target_type="role",
        target_id=role.role_id if role.role_id is not None else role.pk,
        target_display=role.name,
        changes=_audit_changes(before, _role_state(role)),
        correlation_id=message_id or None,
    )


def _role_locked(*, tenant: Tenant, role_id: int, name: str) -> Role | None:
    """The role with this auth id, else a seeded one (no role_id yet) of this name; row-locked."""
    role = Role.objects.select_for_update(no_key=True).filter(tenant=tenant, role_id=role_id).first()
    if role is None:
        role = (
            Role.objects.select_for_update(no_key=True)
            .filter(tenant=tenant, role_id__isnull=True, name=name, deleted_at__isnull=True)
            .order_by("id")
            .first()
        )
    return role


def _role_apply(data: RoleData, message_id: str) -> SyncOutcome:
    now = timezone.now()
    role = _role_locked(tenant=data.tenant, role_id=data.role_id, name=data.name)
    deleting = data.action is SyncAction.DELETE

    if role is None:
        role = Role(
            tenant=data.tenant,
            role_id=data.role_id,
            provisional=False,
            last_synced_at=now,
            deleted_at=now if deleting else None,
            **data.fields(),
        )
        _insert(role)
        action = AuditAction.ROLE_DELETED if deleting else AuditAction.ROLE_CREATED
        _role_audit(tenant=data.tenant, role=role, action=action, before={}, message_id=message_id)
        return SyncOutcome.APPLIED

    if role.deleted_at is not None:
        return SyncOutcome.DUPLICATE if deleting else SyncOutcome.IGNORED_DELETED
    adopting = role.role_id is None
    if data.action is SyncAction.CREATE and not role.provisional and not adopting:
        return SyncOutcome.DUPLICATE

    before = _role_state(role)
    for name, value in data.fields().items():
        setattr(role, name, value)
    role.role_id = data.role_id
    role.provisional = False
    if deleting:
        role.deleted_at = now
    if _role_state(role) == before:
        return SyncOutcome.DUPLICATE
    role.last_synced_at = now
    role.save()
    action = AuditAction.ROLE_DELETED if deleting else AuditAction.ROLE_UPDATED
    _role_audit(tenant=data.tenant, role=role, action=action, before=before, message_id=message_id)
    return SyncOutcome.APPLIED


def role_sync(*, payload: Any, message_id: str = "", counter: str | None = None) -> SyncOutcome:
    """Apply one `role_data` message (create | update | delete) to the role it names.

    Idempotent and order-independent under the rules of this module's
    docstring; returns how the message ended. Runs in its own transaction,
    row-locks the role, retries when a concurrent insert of the same role wins.
    With `counter` (the inbound task name) the outcome is counted
    (MessageCounter) in that same transaction, so a crash after the commit
    cannot lose the count and a redelivery after a rollback is not counted
    twice. Raises InvalidMessage for a message that can never be applied.
    """
    data = role_data_parse(payload)
    if data is None:
        _count(counter, SyncOutcome.IGNORED_OTHER_SYSTEM)
        return SyncOutcome.IGNORED_OTHER_SYSTEM
    return _retrying_insert_conflicts(lambda: _role_apply(data, message_id), counter=counter)


# --- Memberships -----------------------------------------------------------------

_MEMBER_AUDITED = ("role_id", "user_id", "email", "full_name", "assigned_at", "is_active", "settings", "deleted_at")


def _member_state(member: RoleMember) -> dict[str, Any]:
    state = {name: getattr(member, name) for name in _MEMBER_AUDITED if name != "role_id"}
    state["role_id"] = member.role.role_id
    return state


def _member_audit(
    *, tenant: Tenant, member: RoleMember, action: AuditAction, before: Mapping[str, Any], message_id: str
) -> None:
    audit_append(
        tenant=tenant,
        actor=Actor.system(),
        action=action,
        target_type="role_member",
        target_id=member.user_system_role_id,
        target_display=f"{member.full_name or member.email or member.user_id} in {member.role.name}"[:255],
        changes=_audit_changes(before, _member_state(member)),
        correlation_id=message_id or None,
    )


def _role_for_membership(data: MembershipData, message_id: str) -> Role:
    """The membership's role, made provisional (or adopted from a seeded role) if it is unknown."""
    role = Role.objects.filter(tenant=data.tenant, role_id=data.role_id).first()
    if role is not None:
        return role
    now = timezone.now()
    role = (
        Role.objects.select_for_update(no_key=True)
        .filter(tenant=data.tenant, role_id__isnull=True, name=data.role_name, deleted_at__isnull=True)
        .order_by("id")
        .first()
    )
    if role is not None:
        before = _role_state(role)
        role.role_id = data.role_id
        role.provisional = True
        role.last_synced_at = now
        role.save(update_fields=["role_id", "provisional", "last_synced_at"])
        _role_audit(
            tenant=data.tenant, role=role, action=AuditAction.ROLE_UPDATED, before=before, message_id=message_id
        )
        return role
    role = Role(
        tenant=data.tenant,
        role_id=data.role_id,
        name=data.role_name,
        system=TTS_SYSTEM,
        provisional=True,
        last_synced_at=now,
    )
    _insert(role)
    _role_audit(tenant=data.tenant, role=role, action=AuditAction.ROLE_CREATED, before={}, message_id=message_id)
    return role


def _member_apply(data: MembershipData, message_id: str) -> SyncOutcome:
    # The role first, whatever happens to the membership: a membership message
    # must never be lost, and a role it names must exist in every arrival order.
    role = _role_for_membership(data, message_id)
    now = timezone.now()
    deleting = data.action is SyncAction.DELETE
    member = (
        RoleMember.objects.select_for_update(no_key=True, of=("self",))
        .select_related("role")
        .filter(tenant=data.tenant, user_system_role_id=data.user_system_role_id)
        .first()
    )

    if member is None:
        member = RoleMember(
            tenant=data.tenant,
            role=role,
            user_system_role_id=data.user_system_role_id,
            last_synced_at=now,
            deleted_at=now if deleting else None,
            **data.fields(),
        )
        _insert(member)
        action = AuditAction.ROLE_MEMBER_REMOVED if deleting else AuditAction.ROLE_MEMBER_ADDED
        _member_audit(tenant=data.tenant, member=member, action=action, before={}, message_id=message_id)
        _wake_waiting_tickets(member)
        return SyncOutcome.APPLIED

    if member.deleted_at is not None:
        return SyncOutcome.DUPLICATE if deleting else SyncOutcome.IGNORED_DELETED
    if data.action is SyncAction.CREATE:
        return SyncOutcome.DUPLICATE

    before = _member_state(member)
    for name, value in data.fields().items():
        setattr(member, name, value)
    member.role = role
    if deleting:
        member.deleted_at = now
    if _member_state(member) == before:
        return SyncOutcome.DUPLICATE
    member.last_synced_at = now
    member.save()
    action = AuditAction.ROLE_MEMBER_REMOVED if deleting else AuditAction.ROLE_MEMBER_UPDATED
    _member_audit(tenant=data.tenant, member=member, action=action, before=before, message_id=message_id)
    _wake_waiting_tickets(member)
    return SyncOutcome.APPLIED


def _wake_waiting_tickets(member: RoleMember) -> None:
    """A member who can take work may unblock tickets that found nobody in this role."""
    if member.is_active and member.deleted_at is None:
        from tickets.services import tickets_wake_waiting

        tickets_wake_waiting(tenant=member.tenant)


def role_member_sync(*, payload: Any, message_id: str = "", counter: str | None = None) -> SyncOutcome:
    """Apply one `user_role_data` message (create | update | delete) to the membership it names.

    Memberships are keyed by (tenant, user_system_role_id). An unknown role is
    created provisionally from role_id/role_name first (audited), so nothing
    is lost. Idempotent and order-independent under the rules of this
    module's docstring; runs in its own transaction, row-locks the membership,
    retries when a concurrent insert wins. With `counter` (the inbound task
    name) the outcome is counted in that same transaction, as in `role_sync`.
    Raises InvalidMessage for a message that can never be applied.
    """
    data = membership_data_parse(payload)
    if data is None:
        _count(counter, SyncOutcome.IGNORED_OTHER_SYSTEM)
        return SyncOutcome.IGNORED_OTHER_SYSTEM
    return _retrying_insert_conflicts(lambda: _member_apply(data, message_id), counter=counter)


def role_ensure_seeded(*, tenant: Tenant, name: str, description: str, actor: Actor) -> tuple[Role, bool]:
    """The tenant's live role with this name (any letter case, synced roles first), or a new seeded one.

    A seeded role has no `role_id`: it exists so standard workflows can name
    it before the auth service has synced its roles. A later `create` or
    `update` for a role of the same name adopts it instead of making a twin
    (see `_role_locked`). Returns (role, created); a creation is audited.
    """
    with transaction.atomic():
        role = (
            Role.objects.filter(tenant=tenant, name__iexact=name, deleted_at__isnull=True)
            .order_by(F("role_id").asc(nulls_last=True), "id")
            .first()
        )
        if role is not None:
            return role, False
        role = Role.objects.create(tenant=tenant, name=name, role_id=None, system="tts", description=description)
        audit_append(
            tenant=tenant,
            actor=actor,
            action=AuditAction.ROLE_CREATED,
            target_type="role",
            target_id=role.pk,
            target_display=role.name,
            changes={"name": [None, role.name], "system": [None, role.system], "role_id": [None, None]},
        )
        return role, True
