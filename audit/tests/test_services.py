from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import transaction

from audit.models import AuditAction, AuditEvent
from audit.selectors import audit_chain_verify, audit_timeline
from audit.services import GENESIS_HASH, Actor, audit_append, audit_batch, diff, hash_of
from audit.tests.factories import AuditEventFactory
from workflow_api.core.auth import decode_access_token, user_from_claims
from workflow_api.core.logging import bind_correlation_id, unbind_correlation_id
from workflow_api.testing.tokens import make_token

pytestmark = pytest.mark.django_db


def test_the_first_event_of_a_tenant_chains_onto_the_genesis_hash(tenant):
    event = AuditEventFactory.create(tenant=tenant)

    assert event.prev_hash == GENESIS_HASH
    assert event.hash == hash_of(AuditEvent.objects.get(pk=event.pk))


def test_each_event_chains_onto_the_previous_event_of_its_tenant(tenant):
    first = AuditEventFactory.create(tenant=tenant)
    second = AuditEventFactory.create(tenant=tenant)

    stored = AuditEvent.objects.get(pk=second.pk)
    assert stored.prev_hash == first.hash
    assert stored.hash != first.hash


def test_tenants_have_independent_chains(tenant, other_tenant):
    ours = AuditEventFactory.create(tenant=tenant)
    theirs = AuditEventFactory.create(tenant=other_tenant)
    ours_again = AuditEventFactory.create(tenant=tenant)
    theirs_again = AuditEventFactory.create(tenant=other_tenant)

    assert theirs.prev_hash == GENESIS_HASH
    assert ours_again.prev_hash == ours.hash
    assert theirs_again.prev_hash == theirs.hash


def test_an_event_records_who_did_what_to_which_object(tenant):
    event = audit_append(
        tenant=tenant,
        actor=Actor(id=7, name="Ana Cruz"),
        action=AuditAction.ROLE_MEMBER_ADDED,
        target_type="role_member",
        target_id=55,
        target_display="Ana Cruz in Asset Manager",
        changes={"is_active": [None, True]},
        correlation_id="msg-1",
    )

    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.actor_id, stored.actor_name) == (7, "Ana Cruz")
    assert stored.action == "role_member.added"
    assert (stored.target_type, stored.target_id, stored.target_display) == (
        "role_member",
        "55",
        "Ana Cruz in Asset Manager",
    )
    assert stored.changes == {"is_active": [None, True]}
    assert stored.correlation_id == "msg-1"
    assert stored.created_at.tzinfo is not None


def test_a_system_event_has_no_actor_id(tenant):
    event = AuditEventFactory.create(tenant=tenant, actor=Actor.system())

    assert event.actor_id is None
    assert event.actor_name == "system"
    assert event.is_system


def test_an_api_caller_becomes_an_actor_with_their_auth_service_id_and_name(tenant):
    user = user_from_claims(decode_access_token(make_token(user_id=42, full_name="Li Wei")))

    assert Actor.of(user) == Actor(id=42, name="Li Wei")


def test_a_django_user_becomes_an_actor_with_their_username(django_user_model):
    user = django_user_model.objects.create_user(username="ops", password="x" * 12)

    assert Actor.of(user) == Actor(id=user.pk, name="ops")


def test_the_correlation_id_defaults_to_the_current_request_or_message_id(tenant):
    token = bind_correlation_id("req-abc")
    try:
        inside = AuditEventFactory.create(tenant=tenant, correlation_id=None)
    finally:
        unbind_correlation_id(token)
    outside = AuditEventFactory.create(tenant=tenant, correlation_id=None)

    assert inside.correlation_id == "req-abc"
    assert outside.correlation_id == ""


def test_an_event_written_in_a_transaction_that_rolls_back_does_not_exist(tenant):
    class Boom(Exception):
        pass

    def change_that_fails_after_auditing() -> None:
        with transaction.atomic():
            AuditEventFactory.create(tenant=tenant, target_id="doomed")
            raise Boom

    before = AuditEventFactory.create(tenant=tenant)
    with pytest.raises(Boom):
        change_that_fails_after_auditing()

    assert not AuditEvent.objects.filter(target_id="doomed").exists()
    after = AuditEventFactory.create(tenant=tenant)
    assert after.prev_hash == before.hash


def test_an_unknown_action_code_is_refused(tenant):
    with pytest.raises(ValueError, match=r"not\.a\.code"):
        AuditEventFactory.create(tenant=tenant, action="not.a.code")

    assert not AuditEvent.objects.exists()


def test_a_target_id_longer_than_the_column_is_refused(tenant):
    with pytest.raises(ValueError, match="too long"):
        AuditEventFactory.create(tenant=tenant, target_id="x" * 65)


def test_changes_are_stored_as_plain_json_and_still_verify(tenant):
    when = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    event = AuditEventFactory.create(
        tenant=tenant,
        changes={
            "due": [None, when],
            "cost": [Decimal("1.50"), Decimal("2.00")],
            "ref": [None, ident],
            "weight": [2.0, 1e16],
            "ratio": [0.1, float("nan")],
            "tags": [("a",), ["a", "b"]],
            "label": ["Ä", "日本"],
        },
    )

    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.changes["due"] == [None, "2026-03-01T09:30:00+00:00"]
    assert stored.changes["cost"] == ["1.50", "2.00"]
    assert stored.changes["ref"] == [None, str(ident)]
    assert stored.changes["ratio"] == [0.1, "nan"]
    assert stored.changes["tags"] == [["a"], ["a", "b"]]
    # However the database hands numbers back (jsonb may turn 1e16 into an int),
    # the recomputed hash is the stored one.
    assert hash_of(stored) == stored.hash
    assert audit_chain_verify(tenant=tenant).ok


def test_diff_lists_only_the_fields_that_changed_with_old_and_new_values():
    before = {"name": "Asset Manager", "system": "tts", "description": "old", "retired": False}
    after = {"name": "Asset Managers", "system": "tts", "is_custom": True}

    assert diff(before, after) == {
        "name": ["Asset Manager", "Asset Managers"],
        "description": ["old", None],
        "retired": [False, None],
        "is_custom": [None, True],
    }
    assert diff(after, after) == {}


def test_the_timeline_of_an_object_is_its_events_oldest_first(tenant, other_tenant):
    first = AuditEventFactory.create(tenant=tenant, target_type="role", target_id="9")
    AuditEventFactory.create(tenant=tenant, target_type="role", target_id="10")
    AuditEventFactory.create(tenant=other_tenant, target_type="role", target_id="9")
    second = AuditEventFactory.create(tenant=tenant, target_type="role", target_id="9")

    assert list(audit_timeline(tenant=tenant, target_type="role", target_id=9)) == [first, second]


# --- Batches (one chain lock per transaction) ------------------------------------------


def _system_event(tenant, target_id: str) -> None:
    audit_append(
        tenant=tenant,
        actor=Actor.system(),
        action=AuditAction.TICKET_RECEIVED,
        target_type="ticket",
        target_id=target_id,
    )


def test_a_batch_writes_its_events_at_its_end_chained_in_order_across_tenants(tenant, other_tenant):
    before = AuditEventFactory.create(tenant=tenant)
    with transaction.atomic():
        with audit_batch():
            _system_event(tenant, "A")
            _system_event(other_tenant, "B")
            _system_event(tenant, "C")
            assert not AuditEvent.objects.filter(target_id__in=["A", "B", "C"]).exists()
        ours = list(AuditEvent.objects.filter(tenant=tenant).order_by("id"))
        theirs = list(AuditEvent.objects.filter(tenant=other_tenant).order_by("id"))

    assert [event.target_id for event in ours] == [before.target_id, "A", "C"]
    assert [event.prev_hash for event in ours[1:]] == [before.hash, ours[1].hash]
    assert [(event.target_id, event.prev_hash) for event in theirs] == [("B", GENESIS_HASH)]
    assert audit_chain_verify().ok


def test_a_batch_drops_the_events_of_a_savepoint_that_rolled_back(tenant):
    with transaction.atomic(), audit_batch():
        _system_event(tenant, "kept")
        try:
            with transaction.atomic():
                _system_event(tenant, "undone")
                raise ValueError("roll this savepoint back")
        except ValueError:
            pass
        _system_event(tenant, "kept too")

    assert list(AuditEvent.objects.order_by("id").values_list("target_id", flat=True)) == ["kept", "kept too"]
    assert audit_chain_verify().ok


class _ChangeFailed(Exception):
    pass


def _failing_change(tenant) -> None:
    with transaction.atomic(), audit_batch():
        _system_event(tenant, "never")
        raise _ChangeFailed


def test_a_batch_that_raises_writes_nothing(tenant):
    with pytest.raises(_ChangeFailed):
        _failing_change(tenant)
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_batch_outside_a_transaction_is_refused(tenant):
    with pytest.raises(RuntimeError, match=r"inside transaction\.atomic"), audit_batch():
        _system_event(tenant, "never")
    assert not AuditEvent.objects.exists()
