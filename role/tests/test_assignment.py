"""Durable round-robin and least-loaded assignment (issue #4 "Assignment")."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest
from django.db import connection, transaction
from django.utils import timezone

from role.assignment import Assignee, least_loaded_next, round_robin_next
from role.models import Role, RoleMember, RoundRobinPointer
from role.selectors import round_robin_preview
from role.tests.factories import RoleFactory, RoleMemberFactory

pytestmark = pytest.mark.django_db


def _role_with(*user_ids: int, name: str = "Asset Manager") -> Role:
    role = RoleFactory.create(name=name)
    for user_id in user_ids:
        RoleMemberFactory.create(role=role, user_id=user_id)
    return role


def _next_ids(role: Role, calls: int) -> list[int]:
    return [assignee.user_id for _ in range(calls) for assignee in round_robin_next(role=role)]


def _pointer(role: Role) -> int | None:
    return RoundRobinPointer.objects.get(role=role).last_user_id


def _leave(role: Role, user_id: int) -> None:
    RoleMember.objects.filter(role=role, user_id=user_id).update(deleted_at=timezone.now())


def test_round_robin_hands_members_out_by_user_id_and_wraps_around(tenant):
    role = _role_with(103, 101, 102)

    assert _next_ids(role, 5) == [101, 102, 103, 101, 102]
    assert _pointer(role) == 102


def test_the_first_assignment_creates_the_roles_pointer_in_the_roles_tenant(other_tenant):
    role = RoleFactory.create(tenant=other_tenant)
    RoleMemberFactory.create(role=role, user_id=7)
    assert not RoundRobinPointer.objects.exists()

    round_robin_next(role=role)

    pointer = RoundRobinPointer.objects.get()
    assert (pointer.role, pointer.tenant, pointer.last_user_id) == (role, other_tenant, 7)


def test_each_assignee_records_the_strategy_and_its_position_in_the_rotation(tenant):
    role = RoleFactory.create()
    RoleMemberFactory.create(role=role, user_id=101, full_name="Ann Able", email="ann@example.com")
    RoleMemberFactory.create(role=role, user_id=102, full_name="Bob Baker", email="bob@example.com")
    round_robin_next(role=role)

    [assignee] = round_robin_next(role=role)

    assert assignee == Assignee(
        user_id=102, full_name="Bob Baker", email="bob@example.com", strategy="round_robin", position=1, load=None
    )
    assert assignee.reason == {"strategy": "round_robin", "position": 1, "load": None}


def test_a_member_joining_after_the_pointer_comes_next_and_the_rotation_goes_on(tenant):
    role = _role_with(101, 102, 103)
    assert _next_ids(role, 2) == [101, 102]

    RoleMemberFactory.create(role=role, user_id=104)

    # 103 is still owed a turn, the newcomer follows, and nobody is handed work twice before that.
    assert _next_ids(role, 3) == [103, 104, 101]


def test_a_member_joining_before_the_pointer_waits_for_the_wrap_around(tenant):
    role = _role_with(101, 102, 103)
    assert _next_ids(role, 2) == [101, 102]

    RoleMemberFactory.create(role=role, user_id=100)

    assert _next_ids(role, 4) == [103, 100, 101, 102]


def test_the_member_handed_work_last_leaving_does_not_reset_the_rotation(tenant):
    role = _role_with(101, 102, 103)
    assert _next_ids(role, 2) == [101, 102]

    _leave(role, 102)

    assert _next_ids(role, 3) == [103, 101, 103]


def test_the_member_due_next_leaving_passes_the_turn_to_the_one_after(tenant):
    role = _role_with(101, 102, 103)
    assert _next_ids(role, 1) == [101]

    RoleMember.objects.filter(role=role, user_id=102).update(is_active=False)

    assert _next_ids(role, 3) == [103, 101, 103]


def test_asking_for_several_members_hands_out_consecutive_ones_and_moves_past_them(tenant):
    role = _role_with(101, 102, 103)

    first = round_robin_next(role=role, count=2)
    second = round_robin_next(role=role, count=2)

    assert [(a.user_id, a.position) for a in first] == [(101, 0), (102, 1)]
    assert [(a.user_id, a.position) for a in second] == [(103, 2), (101, 0)]
    assert _pointer(role) == 101


def test_asking_for_more_members_than_the_role_has_gives_each_member_once(tenant):
    role = _role_with(101, 102, 103)
    assert _next_ids(role, 1) == [101]

    assignees = round_robin_next(role=role, count=5)

    assert [a.user_id for a in assignees] == [102, 103, 101]
    assert _next_ids(role, 1) == [102]


def test_a_role_without_active_members_hands_out_nobody_and_keeps_its_pointer(tenant):
    role = _role_with(101, 102)
    assert _next_ids(role, 1) == [101]
    _leave(role, 101)
    _leave(role, 102)

    assert round_robin_next(role=role) == []
    assert least_loaded_next(role=role, open_counts={}) == []
    assert _pointer(role) == 101


def test_a_role_that_never_had_members_hands_out_nobody(tenant):
    role = RoleFactory.create()

    assert round_robin_next(role=role, count=3) == []


def test_a_deleted_role_hands_out_nobody_even_through_a_stale_instance(tenant):
    role = _role_with(101, 102)
    Role.objects.filter(pk=role.pk).update(deleted_at=timezone.now())

    assert role.deleted_at is None
    assert round_robin_next(role=role) == []


def test_inactive_deleted_and_other_roles_memberships_are_never_handed_out(tenant):
    role = _role_with(101, 105)
    RoleMemberFactory.create(role=role, user_id=102, is_active=False)
    RoleMemberFactory.create(role=role, user_id=103, deleted_at=timezone.now())
    RoleMemberFactory.create(user_id=104)

    assert _next_ids(role, 4) == [101, 105, 101, 105]


def test_a_user_holding_the_role_twice_is_in_the_rotation_once(tenant):
    role = _role_with(101, 102)
    RoleMemberFactory.create(role=role, user_id=101)

    assert _next_ids(role, 4) == [101, 102, 101, 102]


def test_each_role_has_its_own_rotation(tenant):
    first = _role_with(101, 102, name="First")
    second = _role_with(101, 102, name="Second")

    assert _next_ids(first, 1) == [101]
    assert _next_ids(second, 1) == [101]
    assert _next_ids(first, 1) == [102]


@pytest.mark.parametrize("count", [0, -1])
def test_asking_for_fewer_than_one_member_is_refused(tenant, count):
    role = _role_with(101)

    with pytest.raises(ValueError, match="at least 1"):
        round_robin_next(role=role, count=count)
    with pytest.raises(ValueError, match="at least 1"):
        least_loaded_next(role=role, count=count, open_counts={})


def test_the_preview_lists_the_members_in_the_order_the_next_calls_hand_them_out(tenant):
    role = _role_with(104, 101, 103, 102)
    RoleMemberFactory.create(role=role, user_id=100, is_active=False)
    assert _next_ids(role, 2) == [101, 102]

    preview = round_robin_preview(tenant=tenant, role_name="Asset Manager")

    assert preview == [103, 104, 101, 102]
    assert _next_ids(role, 4) == preview


def test_the_preview_of_a_role_never_assigned_starts_at_the_lowest_user_id(tenant):
    _role_with(102, 101)

    assert round_robin_preview(tenant=tenant, role_name="Asset Manager") == [101, 102]


def test_the_preview_of_an_unknown_or_deleted_role_is_none(tenant):
    RoleFactory.create(name="Asset Manager", deleted_at=timezone.now())

    assert round_robin_preview(tenant=tenant, role_name="Asset Manager") is None
    assert round_robin_preview(tenant=tenant, role_name="Nobody") is None


def test_least_loaded_picks_the_member_with_the_fewest_open_items(tenant):
    role = _role_with(101, 102, 103)

    [assignee] = least_loaded_next(role=role, open_counts={101: 4, 102: 1, 103: 2})

    assert assignee == Assignee(
        user_id=102,
        full_name=assignee.full_name,
        email=assignee.email,
        strategy="least_loaded",
        position=1,
        load=1,
    )
    assert assignee.reason == {"strategy": "least_loaded", "position": 1, "load": 1}
    assert _pointer(role) == 102


def test_least_loaded_counts_a_member_missing_from_the_counts_as_having_no_open_items(tenant):
    role = _role_with(101, 102, 103)

    [assignee] = least_loaded_next(role=role, open_counts={101: 2, 102: 3})

    assert (assignee.user_id, assignee.load) == (103, 0)


def test_least_loaded_breaks_ties_by_the_rotation_and_moves_the_pointer(tenant):
    role = _role_with(101, 102, 103)
    assert _next_ids(role, 2) == [101, 102]
    loads = {101: 1, 102: 0, 103: 1}

    # 101 and 103 tie; 103 comes first after the pointer (102).
    picked = least_loaded_next(role=role, count=2, open_counts=loads)

    assert [(a.user_id, a.load) for a in picked] == [(102, 0), (103, 1)]
    assert _pointer(role) == 103
    [tie] = least_loaded_next(role=role, open_counts={101: 1, 102: 1, 103: 1})
    assert tie.user_id == 101


def test_least_loaded_with_equal_loads_is_round_robin(tenant):
    role = _role_with(101, 102, 103)

    picked = [least_loaded_next(role=role, open_counts={})[0].user_id for _ in range(4)]

    assert picked == [101, 102, 103, 101]
    assert _next_ids(role, 1) == [102]


def test_least_loaded_with_more_requested_than_members_gives_each_once_least_loaded_first(tenant):
    role = _role_with(101, 102, 103)

    assignees = least_loaded_next(role=role, count=9, open_counts={101: 5, 102: 0, 103: 2})

    assert [a.user_id for a in assignees] == [102, 103, 101]
    assert _pointer(role) == 101


def test_assignment_runs_a_bounded_number_of_queries_with_fifty_members(tenant, django_assert_max_num_queries):
    role = _role_with(*range(1000, 1050))

    with django_assert_max_num_queries(3):
        round_robin_next(role=role)  # creates the pointer
    with django_assert_max_num_queries(3):
        round_robin_next(role=role, count=10)
    with django_assert_max_num_queries(3):
        # Idle (load 0): the multiples of 7, i.e. 1001, 1008, ...; after the pointer (1010) 1015 comes first.
        picked = least_loaded_next(role=role, count=5, open_counts={uid: uid % 7 for uid in range(1000, 1050)})
    with django_assert_max_num_queries(3):
        preview = round_robin_preview(tenant=tenant, role_name="Asset Manager")
    assert [a.user_id for a in picked] == [1015, 1022, 1029, 1036, 1043]
    assert preview == [*range(1044, 1050), *range(1000, 1044)]


THREADS = 4
CALLS_PER_THREAD = 25


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_share_the_rotation_evenly_and_never_repeat_a_member_while_others_wait(postgres, tenant):
    user_ids = [201, 202, 203, 204, 205]
    role = _role_with(*user_ids)
    start = threading.Barrier(THREADS)
    guard = threading.Lock()
    # (handed out, pointer read back) in commit order: appended while the
    # pointer row is still locked by the appending transaction.
    handed_out: list[tuple[int, int | None]] = []

    def assign_many() -> None:
        try:
            start.wait(timeout=30)  # all threads race to create the pointer too
            for _ in range(CALLS_PER_THREAD):
                with transaction.atomic():
                    [assignee] = round_robin_next(role=role)
                    stored = RoundRobinPointer.objects.get(role=role).last_user_id
                    with guard:
                        handed_out.append((assignee.user_id, stored))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(assign_many) for _ in range(THREADS)]:
            future.result()

    sequence = [user_id for user_id, _ in handed_out]
    assert len(sequence) == THREADS * CALLS_PER_THREAD
    assert all(user_id == stored for user_id, stored in handed_out)
    counts = Counter(sequence)
    assert set(counts) == set(user_ids)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert all(a != b for a, b in pairwise(sequence)), "a member was handed work twice in a row"
    assert sequence == [user_ids[n % len(user_ids)] for n in range(len(sequence))]
    assert RoundRobinPointer.objects.filter(role=role).count() == 1
