"""role_sync / role_member_sync: validation, the sync semantics, convergence, concurrency."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction

from audit.models import AuditAction, AuditEvent
from role import services
from role.models import Role, RoleMember
from role.selectors import role_list
from role.services import SyncOutcome, role_member_sync, role_sync
from role.tests.factories import RoleFactory, role_data, user_role_data
from workflow_api.core.inbound import InvalidMessage
from workflow_api.testing.concurrency import in_lockstep

pytestmark = pytest.mark.django_db


def _audit(action: AuditAction | None = None) -> list[AuditEvent]:
    events = AuditEvent.objects.order_by("id")
    if action is not None:
        events = events.filter(action=action)
    return list(events)


# --- Validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"role_id": None}, "role_id must be an integer"),
        ({"role_id": "12"}, "role_id must be an integer"),
        ({"role_id": "abc"}, "role_id must be an integer"),
        ({"role_id": True}, "role_id must be an integer"),
        ({"role_id": 12.0}, "role_id must be an integer"),
        ({"role_id": 0}, "positive"),
        ({"role_id": 2**63}, "positive"),
        ({"action": "upsert"}, "action must be one of create, update, delete"),
        ({"action": None}, "action must be one of"),
        ({"created_at": "yesterday"}, "created_at is not an ISO-8601 date-time"),
        ({"created_at": "2026-13-45T00:00:00"}, "created_at is not an ISO-8601 date-time"),
        ({"created_at": 1700000000}, "created_at must be an ISO-8601 date-time string"),
        ({"name": None}, "name must be a string"),
        ({"name": "   "}, "name must not be blank"),
        ({"name": "x" * 201}, "name is longer than 200"),
        ({"description": ["a"]}, "description must be a string"),
        ({"is_custom": "yes"}, "is_custom must be true or false"),
        ({"system": None}, "system must be a string"),
    ],
)
def test_a_role_message_with_a_bad_field_is_rejected_and_writes_nothing(tenant, overrides, complaint):
    payload = role_data(**overrides)

    with pytest.raises(InvalidMessage, match=complaint) as raised:
        role_sync(payload=payload, message_id="m-1")

    assert raised.value.code == services.INVALID_ROLE_MESSAGE
    assert not Role.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_role_message_without_role_id_is_rejected(tenant):
    payload = role_data()
    del payload["role_id"]

    with pytest.raises(InvalidMessage, match="role_id must be an integer") as raised:
        role_sync(payload=payload)

    assert raised.value.code == services.INVALID_ROLE_MESSAGE


@pytest.mark.parametrize("payload", [["role_id", 1], "not a dict", None, 12])
def test_a_role_message_that_is_not_an_object_is_rejected(tenant, payload):
    with pytest.raises(InvalidMessage, match="role_data must be a JSON object") as raised:
        role_sync(payload=payload)

    assert raised.value.code == services.INVALID_ROLE_MESSAGE


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"user_system_role_id": None}, "user_system_role_id must be an integer"),
        ({"user_system_role_id": "340"}, "user_system_role_id must be an integer"),
        ({"user_id": False}, "user_id must be an integer"),
        ({"user_id": "21"}, "user_id must be an integer"),
        ({"role_id": True}, "role_id must be an integer"),
        ({"role_id": "abc"}, "role_id must be an integer"),
        ({"role_name": None}, "role_name must be a string"),
        ({"action": "remove"}, "action must be one of"),
        ({"assigned_at": "2026-02-30T10:00:00Z"}, "assigned_at is not an ISO-8601 date-time"),
        ({"is_active": "true"}, "is_active must be true or false"),
        ({"settings": "none"}, "settings must be a JSON object"),
        ({"user_email": 5}, "user_email must be a string"),
        ({"user_full_name": "x" * 201}, "user_full_name is longer than 200"),
    ],
)
def test_a_membership_message_with_a_bad_field_is_rejected_and_writes_nothing(tenant, overrides, complaint):
    payload = user_role_data(**overrides)

    with pytest.raises(InvalidMessage, match=complaint) as raised:
        role_member_sync(payload=payload)

    assert raised.value.code == services.INVALID_USER_ROLE_MESSAGE
    assert not Role.objects.exists()
    assert not RoleMember.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("missing", ["user_system_role_id", "user_id", "role_id", "role_name"])
def test_a_membership_message_missing_a_key_is_rejected(tenant, missing):
    payload = user_role_data()
    del payload[missing]

    with pytest.raises(InvalidMessage, match=missing) as raised:
        role_member_sync(payload=payload)

    assert raised.value.code == services.INVALID_USER_ROLE_MESSAGE


@pytest.mark.parametrize("payload", [[], "not a dict", None])
def test_a_membership_message_that_is_not_an_object_is_rejected(tenant, payload):
    with pytest.raises(InvalidMessage, match="user_role_data must be a JSON object"):
        role_member_sync(payload=payload)


def test_a_message_naming_an_unknown_tenant_is_rejected(tenant):
    with pytest.raises(InvalidMessage, match="Unknown tenant") as raised:
        role_sync(payload=role_data(tenant="nowhere"))

    assert raised.value.code == services.UNKNOWN_TENANT
    assert not Role.objects.exists()


# --- Roles -------------------------------------------------------------------------


def test_create_inserts_the_role_and_audits_it_as_the_system_with_the_message_id(tenant):
    outcome = role_sync(payload=role_data(role_id=12, name="Asset Manager", is_custom=True), message_id="m-12")

    assert outcome is SyncOutcome.APPLIED
    role = Role.objects.get(role_id=12)
    assert (role.tenant, role.name, role.is_custom, role.provisional) == (tenant, "Asset Manager", True, False)
    assert role.created_at == datetime(2026, 11, 1, 8, tzinfo=UTC)
    [event] = _audit()
    assert event.action == AuditAction.ROLE_CREATED
    assert (event.actor_id, event.actor_name) == (None, AuditEvent.SYSTEM_ACTOR)
    assert event.correlation_id == "m-12"
    assert (event.target_type, event.target_id) == ("role", "12")
    assert event.changes["name"] == [None, "Asset Manager"]
    assert event.changes["created_at"] == [None, "2026-11-01T08:00:00+00:00"]


def test_a_duplicate_create_changes_nothing_and_writes_no_second_audit_row(tenant):
    payload = role_data(role_id=12)
    role_sync(payload=payload, message_id="m-1")
    synced_at = Role.objects.get(role_id=12).last_synced_at

    outcome = role_sync(payload=payload, message_id="m-1")

    assert outcome is SyncOutcome.DUPLICATE
    assert Role.objects.count() == 1
    assert Role.objects.get(role_id=12).last_synced_at == synced_at
    assert len(_audit()) == 1


def test_a_late_create_never_overwrites_a_synced_role(tenant):
    role_sync(payload=role_data(role_id=12, name="Asset Manager", action="update"))

    outcome = role_sync(payload=role_data(role_id=12, name="Asset Mgr", action="create"))

    assert outcome is SyncOutcome.DUPLICATE
    assert Role.objects.get(role_id=12).name == "Asset Manager"


def test_update_overwrites_the_fields_and_audits_only_what_changed(tenant):
    role_sync(payload=role_data(role_id=12, name="Asset Manager", description="old"))

    outcome = role_sync(
        payload=role_data(role_id=12, name="Asset Manager", description="new", action="update"), message_id="u"
    )

    assert outcome is SyncOutcome.APPLIED
    assert Role.objects.get(role_id=12).description == "new"
    [event] = _audit(AuditAction.ROLE_UPDATED)
    assert event.changes == {"description": ["old", "new"]}
    assert event.correlation_id == "u"


def test_an_update_equal_to_the_stored_role_is_a_duplicate(tenant):
    payload = role_data(role_id=12)
    role_sync(payload=payload)

    outcome = role_sync(payload={**payload, "action": "update"})

    assert outcome is SyncOutcome.DUPLICATE
    assert len(_audit()) == 1


def test_an_update_of_an_unknown_role_inserts_it(tenant):
    outcome = role_sync(payload=role_data(role_id=40, name="Budget Manager", action="update"))

    assert outcome is SyncOutcome.APPLIED
    assert Role.objects.get(role_id=40).name == "Budget Manager"
    assert [event.action for event in _audit()] == [AuditAction.ROLE_CREATED]


def test_delete_writes_a_tombstone_that_readers_leave_out(tenant):
    role_sync(payload=role_data(role_id=12))

    outcome = role_sync(payload=role_data(role_id=12, action="delete"), message_id="d")

    assert outcome is SyncOutcome.APPLIED
    role = Role.objects.get(role_id=12)
    assert role.is_deleted
    assert not role_list(tenant=tenant).exists()
    [event] = _audit(AuditAction.ROLE_DELETED)
    assert event.changes["deleted_at"][0] is None
    assert event.changes["deleted_at"][1] is not None


def test_a_late_update_or_create_after_delete_does_not_resurrect_the_role(tenant):
    role_sync(payload=role_data(role_id=12, name="Old"))
    role_sync(payload=role_data(role_id=12, name="Old", action="delete"))
    events_before = len(_audit())

    late_update = role_sync(payload=role_data(role_id=12, name="Renamed", action="update"))
    late_create = role_sync(payload=role_data(role_id=12, name="Renamed", action="create"))
    second_delete = role_sync(payload=role_data(role_id=12, name="Old", action="delete"))

    assert (late_update, late_create, second_delete) == (
        SyncOutcome.IGNORED_DELETED,
        SyncOutcome.IGNORED_DELETED,
        SyncOutcome.DUPLICATE,
    )
    role = Role.objects.get(role_id=12)
    assert role.is_deleted
    assert role.name == "Old"
    assert len(_audit()) == events_before


def test_a_delete_before_any_create_leaves_a_tombstone_that_wins(tenant):
    assert role_sync(payload=role_data(role_id=12, action="delete")) is SyncOutcome.APPLIED

    assert role_sync(payload=role_data(role_id=12, action="create")) is SyncOutcome.IGNORED_DELETED
    assert Role.objects.get(role_id=12).is_deleted
    assert [event.action for event in _audit()] == [AuditAction.ROLE_DELETED]


def test_create_adopts_a_seeded_role_of_the_same_name_instead_of_making_a_twin(tenant):
    seeded = RoleFactory.create(role_id=None, name="Ticket Coordinator", description="")

    role_sync(payload=role_data(role_id=4, name="Ticket Coordinator", description="Triages"), message_id="a")

    seeded.refresh_from_db()
    assert Role.objects.count() == 1
    assert (seeded.role_id, seeded.description, seeded.provisional) == (4, "Triages", False)
    [event] = _audit()
    assert event.action == AuditAction.ROLE_UPDATED
    assert event.changes["role_id"] == [None, 4]


def test_a_seeded_role_in_another_tenant_is_not_adopted(tenant, other_tenant):
    RoleFactory.create(tenant=other_tenant, role_id=None, name="Ticket Coordinator")

    role_sync(payload=role_data(role_id=4, name="Ticket Coordinator"))

    assert Role.objects.filter(tenant=tenant, role_id=4).exists()
    assert Role.objects.get(tenant=other_tenant).role_id is None


def test_the_tenant_key_selects_the_tenant_and_ids_are_per_tenant(tenant, other_tenant):
    role_sync(payload=role_data(role_id=12, name="Default's"))
    role_sync(payload=role_data(role_id=12, name="Acme's", tenant="acme"))

    assert Role.objects.get(tenant=tenant, role_id=12).name == "Default's"
    assert Role.objects.get(tenant=other_tenant, role_id=12).name == "Acme's"
    assert AuditEvent.objects.filter(tenant=other_tenant).count() == 1


def test_a_date_without_offset_is_taken_as_utc(tenant):
    role_sync(payload=role_data(role_id=12, created_at="2026-11-01T08:00:00"))

    assert Role.objects.get(role_id=12).created_at == datetime(2026, 11, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize("system", ["hdts", "ams", "TTS", ""])
def test_a_role_message_for_another_system_is_ignored(tenant, system):
    outcome = role_sync(payload=role_data(system=system, role_id="not even checked"))

    assert outcome is SyncOutcome.IGNORED_OTHER_SYSTEM
    assert not Role.objects.exists()
    assert not AuditEvent.objects.exists()


# --- Memberships -------------------------------------------------------------------


def test_a_membership_for_an_unknown_role_makes_a_provisional_role_that_the_role_create_fills_in(tenant):
    outcome = role_member_sync(
        payload=user_role_data(user_system_role_id=340, user_id=21, role_id=12, role_name="Asset Manager")
    )

    assert outcome is SyncOutcome.APPLIED
    role = Role.objects.get(role_id=12)
    assert (role.name, role.provisional) == ("Asset Manager", True)
    member = RoleMember.objects.get(user_system_role_id=340)
    assert (member.role, member.user_id, member.is_active) == (role, 21, True)
    assert [event.action for event in _audit()] == [AuditAction.ROLE_CREATED, AuditAction.ROLE_MEMBER_ADDED]

    role_sync(payload=role_data(role_id=12, name="Asset Manager", description="Approves assets"))

    role.refresh_from_db()
    assert (role.provisional, role.description) == (False, "Approves assets")
    assert Role.objects.count() == 1
    assert _audit()[-1].changes["provisional"] == [True, False]


def test_a_membership_adopts_a_seeded_role_by_name(tenant):
    seeded = RoleFactory.create(role_id=None, name="Asset Manager")

    role_member_sync(payload=user_role_data(role_id=12, role_name="Asset Manager"))

    seeded.refresh_from_db()
    assert Role.objects.count() == 1
    assert (seeded.role_id, seeded.provisional) == (12, True)
    assert RoleMember.objects.get().role == seeded


def test_a_membership_create_stores_the_fields_and_audits_them(tenant):
    role_sync(payload=role_data(role_id=12, name="Asset Manager"))

    role_member_sync(
        payload=user_role_data(
            user_system_role_id=340,
            user_id=21,
            user_email="li.wei@example.com",
            user_full_name="Li Wei",
            role_id=12,
            is_active=False,
            settings={"max_tasks": 3},
        ),
        message_id="mm-1",
    )

    member = RoleMember.objects.get(user_system_role_id=340)
    assert (member.email, member.full_name, member.is_active, member.settings) == (
        "li.wei@example.com",
        "Li Wei",
        False,
        {"max_tasks": 3},
    )
    assert member.assigned_at == datetime(2026, 11, 2, 10, 15, tzinfo=UTC)
    event = _audit(AuditAction.ROLE_MEMBER_ADDED)[0]
    assert (event.target_type, event.target_id, event.correlation_id) == ("role_member", "340", "mm-1")
    assert event.target_display == "Li Wei in Asset Manager"
    assert event.changes["settings"] == [None, {"max_tasks": 3}]


def test_a_duplicate_membership_message_changes_nothing_and_writes_no_audit_row(tenant):
    payload = user_role_data(user_system_role_id=340)
    role_member_sync(payload=payload)
    events = len(_audit())

    assert role_member_sync(payload=payload) is SyncOutcome.DUPLICATE
    assert role_member_sync(payload={**payload, "action": "update"}) is SyncOutcome.DUPLICATE
    assert RoleMember.objects.count() == 1
    assert len(_audit()) == events


def test_a_membership_update_overwrites_and_may_move_it_to_another_role(tenant):
    role_member_sync(payload=user_role_data(user_system_role_id=340, role_id=12, is_active=True))

    role_member_sync(
        payload=user_role_data(
            user_system_role_id=340, role_id=13, role_name="Budget Manager", is_active=False, action="update"
        )
    )

    member = RoleMember.objects.get(user_system_role_id=340)
    assert (member.role.role_id, member.role.name, member.is_active) == (13, "Budget Manager", False)
    event = _audit(AuditAction.ROLE_MEMBER_UPDATED)[0]
    assert event.changes["role_id"] == [12, 13]
    assert event.changes["is_active"] == [True, False]


def test_a_membership_delete_is_a_tombstone_that_a_late_update_cannot_undo(tenant):
    payload = user_role_data(user_system_role_id=340)
    role_member_sync(payload=payload)

    assert role_member_sync(payload={**payload, "action": "delete"}) is SyncOutcome.APPLIED
    events = len(_audit())
    assert role_member_sync(payload={**payload, "action": "update", "is_active": False}) is (
        SyncOutcome.IGNORED_DELETED
    )
    assert role_member_sync(payload={**payload, "action": "delete"}) is SyncOutcome.DUPLICATE

    member = RoleMember.objects.get(user_system_role_id=340)
    assert member.deleted_at is not None
    assert member.is_active is True
    assert len(_audit()) == events
    assert _audit()[-1].action == AuditAction.ROLE_MEMBER_REMOVED


@pytest.mark.parametrize("system", ["hdts", "ams"])
def test_a_membership_message_for_another_system_is_ignored(tenant, system):
    outcome = role_member_sync(payload=user_role_data(system=system, user_id="whatever"))

    assert outcome is SyncOutcome.IGNORED_OTHER_SYSTEM
    assert not Role.objects.exists()
    assert not RoleMember.objects.exists()


# --- Convergence -------------------------------------------------------------------


def _sync_sequence(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """A realistic message history: roles and memberships created, updated, some deleted.

    One update per entity (updates carry no version to order two of them by).
    Memberships of role 6 arrive with no role message at all, so that role
    stays provisional; several memberships are sent before their role.
    """
    messages: list[tuple[str, dict[str, Any]]] = []
    role_names = {}
    for role_id in range(1, 6):
        created = role_data(
            role_id=role_id, name=f"Role {role_id}", description="first", created_at=f"2026-0{role_id}-01T00:00:00Z"
        )
        updated = {**created, "action": "update", "name": f"Role {role_id} v2", "description": "second"}
        messages += [("role", created), ("role", updated)]
        role_names[role_id] = updated["name"]
        if role_id in (2, 5):
            messages.append(("role", {**updated, "action": "delete"}))
    role_names[6] = "Unsynced Role"

    for user_system_role_id in range(100, 115):
        role_id = rng.choice(list(role_names))
        created = user_role_data(
            user_system_role_id=user_system_role_id,
            user_id=rng.randint(1, 9),
            role_id=role_id,
            role_name=role_names[role_id],
            is_active=True,
            settings={},
        )
        messages.append(("member", created))
        if user_system_role_id % 2 == 0:
            moved_to = rng.choice(list(role_names))
            messages.append(
                (
                    "member",
                    {
                        **created,
                        "action": "update",
                        "is_active": user_system_role_id % 4 != 0,
                        "settings": {"weight": user_system_role_id},
                        "role_id": moved_to,
                        "role_name": role_names[moved_to],
                    },
                )
            )
        if user_system_role_id % 3 == 0:
            messages.append(("member", {**messages[-1][1], "action": "delete"}))
    # Redeliveries.
    messages += [messages[i] for i in rng.sample(range(len(messages)), 6)]
    return messages


def _apply(messages: list[tuple[str, dict[str, Any]]]) -> None:
    for kind, payload in messages:
        if kind == "role":
            role_sync(payload=payload)
        else:
            role_member_sync(payload=payload)


def _snapshot() -> dict[str, Any]:
    roles = sorted(
        (r.role_id, r.name, r.system, r.description, r.is_custom, r.created_at, r.provisional, r.deleted_at is not None)
        for r in Role.objects.all()
    )
    members = sorted(
        (
            m.user_system_role_id,
            m.role.role_id,
            m.user_id,
            m.email,
            m.full_name,
            m.is_active,
            sorted(m.settings.items()),
            m.assigned_at,
            m.deleted_at is not None,
        )
        for m in RoleMember.objects.select_related("role")
    )
    return {"roles": roles, "members": members}


def _snapshot_after(messages: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    with transaction.atomic():
        _apply(messages)
        snapshot = _snapshot()
        transaction.set_rollback(True)
    return snapshot


def test_any_arrival_order_of_the_messages_converges_to_the_same_state(tenant):
    rng = random.Random(20261122)
    messages = _sync_sequence(rng)

    expected = _snapshot_after(messages)

    roles = {row[0]: row for row in expected["roles"]}
    assert [role_id for role_id, row in roles.items() if row[-1]] == [2, 5]
    assert {row[1] for role_id, row in roles.items() if role_id != 6} == {f"Role {i} v2" for i in range(1, 6)}
    assert roles[6][6] is True  # only ever seen through memberships: still provisional
    assert len(expected["members"]) == 15
    assert sum(1 for row in expected["members"] if row[-1]) == 5
    for attempt in range(20):
        shuffled = messages[:]
        rng.shuffle(shuffled)
        assert _snapshot_after(shuffled) == expected, f"permutation {attempt} diverged"


# --- Concurrency (PostgreSQL) --------------------------------------------------------


def test_an_insert_that_loses_a_race_is_retried_and_finds_the_winners_row(tenant, monkeypatch):
    role_sync(payload=role_data(role_id=12, name="Asset Manager"))
    real_locked = services._role_locked
    calls = []

    def stale_first_read(**kwargs):
        # The first read misses the row, as it would if the other worker
        # committed between our SELECT and our INSERT.
        calls.append(kwargs)
        return None if len(calls) == 1 else real_locked(**kwargs)

    monkeypatch.setattr(services, "_role_locked", stale_first_read)

    outcome = role_sync(payload=role_data(role_id=12, name="Asset Manager"))

    assert outcome is SyncOutcome.DUPLICATE
    assert len(calls) == 2
    assert Role.objects.count() == 1
    assert len(_audit()) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_applying_the_same_messages_at_once_create_no_twins(postgres, tenant):
    rounds = 5
    outcomes: list[SyncOutcome] = []
    # Each round: both threads sync the same role, then the same membership of a role not seen yet.
    steps = []
    for n in range(rounds):
        steps.append(lambda n=n: role_sync(payload=role_data(role_id=900 + n, name=f"Raced {n}")))
        steps.append(
            lambda n=n: role_member_sync(payload=user_role_data(user_system_role_id=9900 + n, role_id=800 + n))
        )

    in_lockstep(steps, lambda step: outcomes.append(step()))

    assert outcomes.count(SyncOutcome.APPLIED) == 2 * rounds
    assert outcomes.count(SyncOutcome.DUPLICATE) == 2 * rounds
    assert Role.objects.filter(role_id__gte=900).count() == rounds
    assert Role.objects.filter(role_id__range=(800, 899), provisional=True).count() == rounds
    assert RoleMember.objects.count() == rounds
    assert AuditEvent.objects.filter(action=AuditAction.ROLE_CREATED).count() == 2 * rounds
    assert AuditEvent.objects.filter(action=AuditAction.ROLE_MEMBER_ADDED).count() == rounds


def test_a_seeded_role_is_created_once_and_reused_by_name_in_any_letter_case(tenant):
    from audit.services import Actor
    from role.services import role_ensure_seeded

    created, was_created = role_ensure_seeded(
        tenant=tenant, name="Ticket Coordinator", description="Owns new tickets", actor=Actor.system()
    )
    again, created_again = role_ensure_seeded(
        tenant=tenant, name="ticket coordinator", description="ignored", actor=Actor.system()
    )

    assert (was_created, created_again) == (True, False)
    assert again.pk == created.pk
    assert created.role_id is None
    assert AuditEvent.objects.filter(target_type="role", target_id=str(created.pk)).count() == 1
