"""Choosing who gets the work: durable round-robin and least-loaded, per (tenant, role).

The rotation is the role's active members ordered by `user_id`: live
(`deleted_at` empty), `is_active` memberships of a live role, each user once.
A `RoundRobinPointer` row per role remembers the user handed work last; the
next assignee is the first active member whose `user_id` is greater, wrapping
around to the lowest. Because the pointer is a user id and not an index,
membership changes never reset the rotation or skip anyone unfairly: after 101
and 102 of [101, 102, 103] were handed out, a newcomer 104 comes after 103
(then 101 again), a newcomer 99 waits until the wrap-around, and if 103 leaves
the next one is 101.

Concurrency contract. Both functions join the caller's transaction
(`transaction.atomic(savepoint=False)`; called outside one they run in their
own) and lock the role's pointer row until that transaction ends: a locking
upsert creates the row on first use, so two workers starting on a role that
has no pointer yet cannot both create it, and each later worker waits for the
previous one to commit and then reads what it handed out. No position is ever
handed out twice, and over any run the counts per member differ by at most
one. The lock serialises assignment per role, so callers should commit soon
after (no slow I/O inside; use the outbox).

Queries, whatever the number of members: round-robin reads the members
(none when the caller passes them) and moves the pointer in one locking
upsert on PostgreSQL; least-loaded locks the pointer, reads the members and
the loads, and moves it. A role with no active member costs the one read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from role.models import Role, RoleMember, RoundRobinPointer

# The values of step.models.AssignmentStrategy, the setting a step chooses them with.
Strategy = Literal["round_robin", "least_loaded"]


@dataclass(frozen=True, kw_only=True)
class Assignee:
    """A member chosen for a piece of work, and why (store `reason` on the item).

    `position` is the member's 0-based index in the rotation (active members
    by user id) when they were chosen; `load` is the open-item count the
    least-loaded strategy compared (None for round-robin).
    """

    user_id: int
    full_name: str
    email: str
    strategy: Strategy = "round_robin"
    position: int
    load: int | None = None

    @property
    def reason(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "position": self.position, "load": self.load}

    @classmethod
    def from_member(cls, member: Member, *, strategy: Strategy, load: int | None = None) -> Assignee:
        return cls(
            user_id=member.user_id,
            full_name=member.full_name,
            email=member.email,
            strategy=strategy,
            position=member.position,
            load=load,
        )


class Member(NamedTuple):
    position: int
    user_id: int
    full_name: str
    email: str


def active_members(*, role: Role) -> list[Member]:
    """The rotation: the role's active members by user id, each user once (one query).

    Empty for a deleted role, checked in the database so a stale `role`
    instance cannot hand out work. A user holding the role through two
    memberships counts once, with the older membership's name and e-mail.
    """
    rows = (
        RoleMember.objects.filter(role=role, role__deleted_at__isnull=True, is_active=True, deleted_at__isnull=True)
        .order_by("user_id", "id")
        .values_list("user_id", "full_name", "email")
    )
    return _rotation(rows)


def live_roles_with_rotations(*, tenant_id: int, filter: Q) -> list[tuple[Role, list[Member]]]:
    """The tenant's live roles matching `filter`, by (role_id, id), each with its rotation. Two queries.

    The same rotation `active_members` reads, for several roles at once (the
    task engine reads a step's role and the ticket owners' role together).
    """
    roles = list(Role.objects.filter(filter, tenant_id=tenant_id, deleted_at__isnull=True).order_by("role_id", "id"))
    rows: dict[int, list[tuple[int, str, str]]] = {role.pk: [] for role in roles}
    memberships = (
        RoleMember.objects.filter(role_id__in=list(rows), is_active=True, deleted_at__isnull=True)
        .order_by("role_id", "user_id", "id")
        .values_list("role_id", "user_id", "full_name", "email")
    )
    for role_pk, user_id, full_name, email in memberships:
        rows[role_pk].append((user_id, full_name, email))
    return [(role, _rotation(rows[role.pk])) for role in roles]


def _rotation(rows: Iterable[tuple[int, str, str]]) -> list[Member]:
    """Members from (user_id, full_name, email) rows sorted by user id then membership age, each user once."""
    members: list[Member] = []
    for user_id, full_name, email in rows:
        if not members or members[-1].user_id != user_id:
            members.append(Member(len(members), user_id, full_name, email))
    return members


def rotation_order(members: Sequence[Member], last_user_id: int | None) -> list[Member]:
    """`members` (by user id) in the order they will be handed work after `last_user_id`."""
    start = next((m.position for m in members if last_user_id is None or m.user_id > last_user_id), 0)
    return [*members[start:], *members[:start]]


def round_robin_next(*, role: Role, count: int = 1, members: Sequence[Member] | None = None) -> list[Assignee]:
    """Hand the next `count` members of `role`'s rotation out and move the pointer past them.

    Returns at most one Assignee per member: when `count` exceeds the number
    of active members, every member is returned once, in rotation order, and
    the pointer ends on the last of them. A role without active members (or
    a deleted role) returns [] and leaves the pointer alone: the caller
    decides (the task engine marks the work unallocated, or answers 503
    `no_assignee`). `members` is the role's `active_members`, when the caller
    has read them already. Raises ValueError when `count` < 1. Locking and
    queries: see the module docstring.
    """
    return round_robin_next_many(role=role, counts=[count], members=members)[0]


def round_robin_next_many(
    *, role: Role, counts: Sequence[int], members: Sequence[Member] | None = None
) -> list[list[Assignee]]:
    """`round_robin_next` for several pieces of work at once, one pointer move for all of them.

    Piece i gets the next `counts[i]` members (at most one each) after piece
    i - 1's, exactly what calling `round_robin_next` once per piece in order
    would hand out, with one locking upsert instead of one per piece.
    """
    if any(count < 1 for count in counts):
        raise ValueError(f"every count must be at least 1, not {list(counts)}")
    if members is None:
        members = active_members(role=role)
    if not members or not counts:
        return [[] for _ in counts]
    size = len(members)
    taken = [min(count, size) for count in counts]
    with transaction.atomic(savepoint=False):
        last = _pointer_advance(role, members, sum(taken))
    # The pieces are consecutive in the rotation and the last one ends on `last`.
    cursor = next(m.position for m in members if m.user_id == last) - sum(taken) + 1
    pieces: list[list[Assignee]] = []
    for n in taken:
        chosen = [members[(cursor + i) % size] for i in range(n)]
        cursor += n
        pieces.append([Assignee.from_member(m, strategy="round_robin") for m in chosen])
    return pieces


def _pointer_advance(role: Role, members: Sequence[Member], taken: int) -> int:
    """Move `role`'s pointer `taken` members on along `members` (by user id, wrapping); returns the new last user id.

    On PostgreSQL one locking upsert computes the move from the committed
    pointer: INSERT ... ON CONFLICT DO UPDATE waits for a transaction that
    holds the row (or has just inserted it), then evaluates its SET on the
    newest committed version, so concurrent callers each move on from where
    the previous one left it, and the row stays locked until this transaction
    ends. Elsewhere (SQLite: one writer at a time) the row is read, then moved.
    """
    ids = [m.user_id for m in members]
    if connection.vendor != "postgresql":
        pointer_id, last_user_id = _pointer_lock(role)
        new_last = rotation_order(members, last_user_id)[(taken - 1) % len(members)].user_id
        _pointer_move(pointer_id, new_last)
        return new_last
    table = connection.ops.quote_name(RoundRobinPointer._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    # start = how many members come at or before the last one handed out (wrapping to 0);
    # the new last is the member `taken - 1` places after the start (arrays are 1-based).
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS pointer (tenant_id, role_id, last_user_id, updated_at) "
            "VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (role_id) DO UPDATE SET updated_at = excluded.updated_at, last_user_id = "
            "(%s::bigint[])[(((SELECT count(*) FROM unnest(%s::bigint[]) AS member WHERE "
            "member <= pointer.last_user_id) %% %s) + %s - 1) %% %s + 1] "
            "RETURNING last_user_id",
            [role.tenant_id, role.pk, ids[(taken - 1) % len(ids)], now, ids, ids, len(ids), taken, len(ids)],
        )
        (new_last,) = cursor.fetchone()
    return int(new_last)


def least_loaded_next(
    *, role: Role, count: int = 1, open_counts: Mapping[int, int] | Callable[[], Mapping[int, int]]
) -> list[Assignee]:
    """Hand out the `count` members of `role` with the fewest open items, ties by rotation.

    `open_counts` maps user id -> open items (a missing user has none), or is
    a function returning that map, called once the pointer is locked, so
    that concurrent callers count each other's committed work. Among equal
    loads the member who comes next in the round-robin rotation wins, so
    with equal loads this is exactly round-robin. The pointer moves to the
    last member handed out, like `round_robin_next`; `count`, empty roles
    and locking behave as there.
    """
    return least_loaded_next_many(role=role, counts=[count], open_counts=open_counts)[0]


def least_loaded_next_many(
    *, role: Role, counts: Sequence[int], open_counts: Mapping[int, int] | Callable[[], Mapping[int, int]]
) -> list[list[Assignee]]:
    """`least_loaded_next` for several pieces of work at once: one pointer lock, one read of members and loads.

    Piece i is chosen as if pieces 0..i-1 were already open items: each
    member handed out counts one more for the pieces after, and the rotation
    goes on from the last one. So this hands out what calling
    `least_loaded_next` once per piece, committing in between, would.
    """
    if any(count < 1 for count in counts):
        raise ValueError(f"every count must be at least 1, not {list(counts)}")
    pieces: list[list[Assignee]] = []
    with transaction.atomic(savepoint=False):
        pointer_id, last_user_id = _pointer_lock(role)
        members = active_members(role=role)
        loads = dict(open_counts() if callable(open_counts) else open_counts)
        last = last_user_id
        for count in counts:
            # sorted() is stable: equal loads keep their rotation order.
            chosen = sorted(rotation_order(members, last), key=lambda m: loads.get(m.user_id, 0))[:count]
            pieces.append(
                [Assignee.from_member(m, strategy="least_loaded", load=loads.get(m.user_id, 0)) for m in chosen]
            )
            for m in chosen:
                loads[m.user_id] = loads.get(m.user_id, 0) + 1
            if chosen:
                last = chosen[-1].user_id
        if last != last_user_id and last is not None:
            _pointer_move(pointer_id, last)
    return pieces


def _pointer_lock(role: Role) -> tuple[int, int | None]:
    """Lock `role`'s pointer row, creating it if needed, in one statement: (pointer id, last user id).

    INSERT ... ON CONFLICT DO UPDATE locks the existing row like SELECT ...
    FOR UPDATE, and when another transaction holds it (or has just inserted
    it) waits for that one to finish and then returns the committed value.
    A get-or-create would need a savepoint and a retry for the same effect.
    """
    table = connection.ops.quote_name(RoundRobinPointer._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (tenant_id, role_id, last_user_id, updated_at) VALUES (%s, %s, NULL, %s) "
            f"ON CONFLICT (role_id) DO UPDATE SET last_user_id = {table}.last_user_id "
            "RETURNING id, last_user_id",
            [role.tenant_id, role.pk, now],
        )
        pointer_id, last_user_id = cursor.fetchone()
    return pointer_id, last_user_id


def _pointer_move(pointer_id: int, user_id: int) -> None:
    RoundRobinPointer.objects.filter(pk=pointer_id).update(last_user_id=user_id, updated_at=timezone.now())
