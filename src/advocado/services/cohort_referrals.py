"""The referral figures under a segment filter, per segment cohort, and how they stay correct.

A segment narrows the referral figures by ADVOCATE: the funnel counts the referrals whose
advocate is a member, referred revenue the paid orders of friends with a (not rejected)
referral from a member (a friend once), rewards cost the live rewards of members' referrals.
services.cohorts keeps the members (cohort_members); here are those figures per segment
cohort and UTC day, as services.referral_aggregates keeps them per program and day:
 - cohort_referral_day_counts: referrals per cohort, basis (day of signed_up_at / of
   qualified_at), day, status, rejection reason, whether qualified_at is set.
 - cohort_referred_revenue_days: per cohort, day and currency, orders and revenue.
 - cohort_reward_cost_days: per cohort, day, currency and kind, rewards and amount.
Program cohorts are not kept (a program filter reads referral_aggregates' program rows).

All three are a function of one friend (their referrals, orders and rewards) and of which of
their referrals' advocates are members, so they follow two hooks, each "contribution before,
write, contribution after, add the difference", in the write's transaction:
 - tally hook: services.referral_aggregates.friends_changing (every writer of referrals,
   orders and rewards goes through it, the friends locked) also takes the friends' cohort
   contribution here (`take`, `settle`). An advocate's memberships cannot move between the
   before and the after: the worker (services.cohorts.settle_batch) locks the referred
   friends of the customers it judges together with them, in one sorted lock (PostgreSQL:
   FOR NO KEY UPDATE on customers), so it queues with the friend's writer, not deadlocks. A
   referral made now (its advocate new to the friend, so not among the friends the worker
   locked) locks that advocate before the after is read: a move of them waits or is seen.
 - membership hook: services.cohorts moves advocates in or out of a segment inside
   `advocates_moving` (the moved advocates' friends, before and after the members change).
A segment saved (cohorts.recompute) or `rebuild` recomputes a cohort's rows from the rows.

Reads stay exact in the dirty window as cohorts' counts do: the stored rows are those of the
stored members; `corrections` gives, for the friends of the dirty advocates (Members.out and
Members.into), their contribution with the members now minus with the stored members.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from advocado.services import customer_aggregates
from advocado.store.db import as_date, utc_day
from advocado.store.models import (
    SEGMENT_COHORT_PREFIX,
    CohortMember,
    CohortReferralDayCount,
    CohortReferredRevenueDay,
    CohortRewardCostDay,
    Order,
    Referral,
    Reward,
)

SIGNED_UP = "signed_up"
QUALIFIED = "qualified"
REJECTED = "rejected"
PAID = "paid"
CHUNK = customer_aggregates.CHUNK

# table -> (its key columns, its count columns; the first is zero only when the row is empty)
TABLES: dict[str, tuple[Any, tuple[str, ...], tuple[str, ...]]] = {
    "cohort_referral_day_counts": (
        CohortReferralDayCount.__table__,
        ("cohort", "basis", "day", "status", "reason", "qualified"),
        ("referrals",),
    ),
    "cohort_referred_revenue_days": (
        CohortReferredRevenueDay.__table__,
        ("cohort", "day", "currency"),
        ("orders", "revenue"),
    ),
    "cohort_reward_cost_days": (
        CohortRewardCostDay.__table__,
        ("cohort", "day", "currency", "kind"),
        ("rewards", "amount"),
    ),
}

Tally = dict[str, dict[tuple[Any, ...], list[int]]]
MemberOf = Callable[[list[int]], dict[int, set[str]]]  # advocate ids -> their cohorts


def empty() -> Tally:
    return {name: {} for name in TABLES}


def _add(tally: Tally, name: str, key: tuple[Any, ...], *values: int) -> None:
    found = tally[name].setdefault(key, [0] * len(values))
    for i, value in enumerate(values):
        found[i] += value


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def stored_members(session: Session, cohort: str | None = None) -> MemberOf:
    """The stored segment memberships (of one cohort, or every segment cohort)."""

    def member_of(advocate_ids: list[int]) -> dict[int, set[str]]:
        if cohort is None:
            return customer_aggregates.segment_memberships(session, advocate_ids)
        found: dict[int, set[str]] = {}
        for chunk in _chunks(sorted(set(advocate_ids))):
            query = select(CohortMember.customer_id, CohortMember.cohort).where(
                CohortMember.customer_id.in_(chunk), CohortMember.cohort == cohort
            )
            for customer_id, c in session.execute(query):
                found.setdefault(customer_id, set()).add(c)
        return found

    return member_of


def _contributions(session: Session, friend_ids: list[int] | None, member_of: MemberOf) -> Tally:
    """What these friends (None: everyone) add to the cohort tables, the advocates' cohorts
    given by `member_of`."""
    tally = empty()
    referrals = select(
        Referral.id,
        Referral.advocate_id,
        Referral.referee_id,
        Referral.status,
        Referral.reason,
        Referral.signed_up_at,
        Referral.qualified_at,
    )
    if friend_ids is not None:
        if not friend_ids:
            return tally
        referrals = referrals.where(Referral.referee_id.in_(friend_ids))
    rows = list(session.execute(referrals))
    if not rows:
        return tally
    cohorts_of = member_of([r.advocate_id for r in rows])
    live: dict[int, set[str]] = {}  # friend -> cohorts of their live referrals' advocates
    for r in rows:
        found = cohorts_of.get(r.advocate_id)
        if not found:
            continue
        has_qualified_at = r.qualified_at is not None
        reason = (r.reason or "") if r.status == REJECTED else ""
        signed = customer_aggregates._day(r.signed_up_at)
        for cohort in found:
            _add(tally, "cohort_referral_day_counts",
                 (cohort, SIGNED_UP, signed, r.status, reason, has_qualified_at), 1)  # fmt: skip
            if has_qualified_at:
                day = customer_aggregates._day(r.qualified_at)
                _add(tally, "cohort_referral_day_counts",
                     (cohort, QUALIFIED, day, r.status, reason, True), 1)  # fmt: skip
        if r.status != REJECTED:
            live.setdefault(r.referee_id, set()).update(found)
    if live:
        day = utc_day(session, Order.placed_at)
        orders = (
            select(Order.customer_id, day, Order.currency, func.count(), func.sum(Order.amount))
            .where(Order.status == PAID)
            .group_by(Order.customer_id, day, Order.currency)
        )
        chunks: list[Any] = (
            [None] if friend_ids is None else list(_chunks(sorted(live)))
        )  # everyone: one pass over the referred friends' orders
        for chunk in chunks:
            if chunk is None:
                query = orders.where(
                    Order.customer_id.in_(
                        select(Referral.referee_id).where(Referral.status != REJECTED)
                    )
                )
            else:
                query = orders.where(Order.customer_id.in_(chunk))
            for customer_id, d, currency, n, revenue in session.execute(query):
                for cohort in live.get(customer_id, ()):  # a friend once per cohort
                    _add(tally, "cohort_referred_revenue_days", (cohort, as_date(d), currency),
                         int(n), int(revenue or 0))  # fmt: skip
    created = utc_day(session, Reward.created_at)
    rewards = (
        select(
            Referral.advocate_id,
            created,
            Reward.currency,
            Reward.kind,
            func.count(),
            func.sum(Reward.amount),
        )
        .join(Referral, Referral.id == Reward.referral_id)
        .where(Reward.reversed_at.is_(None))
        .group_by(Referral.advocate_id, created, Reward.currency, Reward.kind)
    )
    ids = [r.id for r in rows if cohorts_of.get(r.advocate_id)]
    for chunk in [None] if friend_ids is None else list(_chunks(sorted(ids))):
        query = rewards if chunk is None else rewards.where(Reward.referral_id.in_(chunk))
        for advocate, d, currency, kind, n, amount in session.execute(query):
            for cohort in cohorts_of.get(advocate, ()):
                _add(tally, "cohort_reward_cost_days", (cohort, as_date(d), currency, kind),
                     int(n), int(amount or 0))  # fmt: skip
    return tally


def merge(total: Tally, part: Tally | None) -> Tally:
    """Add a part (friends taken later in one write) into a total; returns the total."""
    for name, rows in (part or {}).items():
        for key, values in rows.items():
            _add(total, name, key, *values)
    return total


def _difference(after: Tally, before: Tally) -> Tally:
    found = empty()
    for name, (_, _, counts) in TABLES.items():
        old, new = before[name], after[name]
        for key in set(old) | set(new):
            a, b = new.get(key, [0] * len(counts)), old.get(key, [0] * len(counts))
            diff = [x - y for x, y in zip(a, b, strict=True)]
            if any(diff):
                found[name][key] = diff
    return found


def _write(session: Session, delta: Tally) -> None:
    """Add the delta to the stored rows (keys sorted: one lock order, no deadlocks)."""
    for name, (table, keys, counts) in TABLES.items():
        rows = [
            {**dict(zip(keys, key, strict=True)), **dict(zip(counts, values, strict=True))}
            for key, values in sorted(delta[name].items(), key=lambda kv: repr(kv[0]))
        ]
        customer_aggregates.upsert_counts(session, table, rows, counts=counts)


def _advocates_of(session: Session, friend_ids: list[int]) -> list[int]:
    found: set[int] = set()
    for chunk in _chunks(friend_ids):
        found.update(
            session.scalars(
                select(Referral.advocate_id).where(Referral.referee_id.in_(chunk)).distinct()
            )
        )
    return sorted(found)


# --- the tally hook (services.referral_aggregates.friends_changing) ------------------------


def take(session: Session, friend_ids: list[int]) -> tuple[Tally, set[int]]:
    """Before a write of these (locked) friends: their part, and their advocates then."""
    if not friend_ids:
        return empty(), set()
    if session.get_bind().dialect.name == "postgresql":
        # the writers' lock of services.cohorts: a segment saved (a whole recompute) waits
        # for this write, or this write for it and then sees its members
        session.execute(text("LOCK TABLE cohort_dirty IN ROW EXCLUSIVE MODE"))
    advocates = set(_advocates_of(session, friend_ids))
    return _contributions(session, friend_ids, stored_members(session)), advocates


def settle(session: Session, friend_ids: list[int], before: Tally, advocates: set[int]) -> None:
    """After the write: lock the friends' new advocates (a referral made now), read the part
    again, add the difference."""
    if not friend_ids:
        return
    new = sorted(set(_advocates_of(session, friend_ids)) - advocates)
    for chunk in _chunks(new):
        customer_aggregates._lock(session, chunk)
    after = _contributions(session, friend_ids, stored_members(session))
    _write(session, _difference(after, before))


def friends_of(session: Session, advocate_ids: list[int]) -> list[int]:
    """The referred friends of these customers (the worker locks them with the customers it
    judges: their writers then queue behind a move)."""
    found: set[int] = set()
    for chunk in _chunks(sorted(set(advocate_ids))):
        found.update(
            session.scalars(
                select(Referral.referee_id).where(Referral.advocate_id.in_(chunk)).distinct()
            )
        )
    return sorted(found)


# --- the membership hook (services.cohorts moves) -------------------------------------------


class advocates_moving:  # noqa: N801 - used as a context manager, like contextlib's
    """Wraps a move of these customers in or out of a segment cohort (same transaction,
    customers locked): the cohort's rows follow their friends' part before and after."""

    def __init__(self, session: Session, cohort: str, advocate_ids: Iterable[int]) -> None:
        self.session, self.cohort = session, cohort
        self.friends: list[int] = []
        self.before: Tally = empty()
        ids = sorted(set(advocate_ids))
        if not cohort.startswith(SEGMENT_COHORT_PREFIX) or not ids:
            return
        self.friends = friends_of(session, ids)
        # The worker locked the movers' friends with them; a friend referred since (its
        # referral committed meanwhile) is locked here: its writer finishes first.
        for chunk in _chunks(self.friends):
            customer_aggregates._lock(session, chunk)

    def __enter__(self) -> advocates_moving:
        if self.friends:
            self.before = _contributions(
                self.session, self.friends, stored_members(self.session, self.cohort)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.friends and exc[0] is None:
            after = _contributions(
                self.session, self.friends, stored_members(self.session, self.cohort)
            )
            _write(self.session, _difference(after, self.before))


# --- whole recomputes -----------------------------------------------------------------------


def recompute(session: Session, cohort: str | None) -> None:
    """A cohort's rows (None: every segment cohort's) from its stored members and the rows."""
    for table, _, _ in TABLES.values():
        query = delete(table)
        if cohort is not None:
            query = query.where(table.c.cohort == cohort)
        session.execute(query)
    if cohort is not None and not cohort.startswith(SEGMENT_COHORT_PREFIX):
        return
    _write(session, _contributions(session, None, stored_members(session, cohort)))


def forget(session: Session, cohort: str) -> None:
    for table, _, _ in TABLES.values():
        session.execute(delete(table).where(table.c.cohort == cohort))


def rebuild(session: Session) -> dict[str, int]:
    """Every segment cohort's rows from the stored members and the rows (after cohorts')."""
    session.flush()
    recompute(session, None)
    return {
        name: session.scalar(select(func.count()).select_from(table)) or 0
        for name, (table, _, _) in TABLES.items()
    }


# --- reading --------------------------------------------------------------------------------


def corrections(session: Session, members: Any) -> Tally:
    """What to add to the stored rows of `members.cohort` (keys without the cohort) for its
    dirty customers: their friends' part with the members now minus with the stored ones."""
    into, out = set(members.into), set(members.out)
    moved = sorted(into | out)
    found = empty()
    if not moved:
        return found
    cohort = members.cohort
    friends: set[int] = set()
    for chunk in _chunks(moved):
        friends.update(
            session.scalars(
                select(Referral.referee_id).where(Referral.advocate_id.in_(chunk)).distinct()
            )
        )
    if not friends:
        return found
    stored = stored_members(session, cohort)

    def now(advocate_ids: list[int]) -> dict[int, set[str]]:
        kept = stored(advocate_ids)
        return {
            a: {cohort}
            for a in set(advocate_ids)
            if a in into or (a not in out and cohort in kept.get(a, ()))
        }

    ids = sorted(friends)
    delta = _difference(_contributions(session, ids, now), _contributions(session, ids, stored))
    for name, rows in delta.items():
        for key, values in rows.items():
            found[name][key[1:]] = values
    return found


def snapshot(session: Session) -> dict[str, dict[tuple[Any, ...], tuple[int, ...]]]:
    """Every table as plain data, empty rows left out (tests compare maintained with rebuilt)."""
    found: dict[str, dict[tuple[Any, ...], tuple[int, ...]]] = {}
    for name, (table, keys, counts) in TABLES.items():
        rows = {}
        for row in session.execute(select(table)).mappings():
            values = tuple(int(row[c]) for c in counts)
            if any(values):
                rows[tuple(as_date(row[k]) if k == "day" else row[k] for k in keys)] = values
        found[name] = rows
    return found
