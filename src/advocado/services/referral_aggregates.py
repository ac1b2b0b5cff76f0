"""The dashboard's pre-aggregates on the referral side, and how they stay correct.

 - referral_day_counts: referrals per program, UTC day, status, rejection reason and whether
   qualified_at is set; once on the day of signed_up_at, and again on the day of qualified_at
   (funnel, rejected reasons, K-factor signups, plan leads / qualified referrals).
 - referred_revenue_days: paid orders of referred customers (friends with a referral that is
   not rejected) per program, UTC day and currency (funnel and plan revenue).
 - reward_cost_days: live rewards per program, UTC day, currency and kind (rewards cost).
 - advocate_referral_counts, advocate_referred_revenue: per advocate and program, all time
   (top advocates).
 - advocate_firsts: per advocate and program, their first code and first referral and the
   gap between (K-factor advocates and time to first referral). Both times only move earlier
   (codes and referrals are never deleted), so writers upsert the earlier of stored and
   theirs, which racing writers agree on; services.programs.code_for reports new codes.
   Its program-0 rows are copied per segment cohort (services.cohort_firsts) as written.
Program 0 (ALL_PROGRAMS) holds the figures without a program filter; for referred revenue it
is not the sum of the programs (a friend referred in two programs is revenue once).

Everything here is a function of one referred customer (the friend): their referrals, their
paid orders, and the rewards of their referrals. So every write of those rows is wrapped in
`friends_changing(session, friend ids)`: it locks the friends (PostgreSQL: FOR NO KEY UPDATE on
their customer rows, in id order, so two writers of one friend queue instead of both adding
what they saw), reads their contribution before, lets the write run, reads it after, and adds
the difference, all in the write's transaction. Being read from the rows, not a +1 per call, a
retried event or a duplicate webhook changes nothing (the referral services are idempotent:
nothing changes, the difference is zero). The wrapper nests: a friend already being followed
further out is not taken twice; `follow` adds a friend found during the write (a refund's
rewards name their referrals' friends) to the innermost wrapper.

Hooked writers: services.referrals (signup, order and refund events in `_ingest`, and review
decisions in `decide`) and every order writer through customer_aggregates.orders_changing
(services.records.save_orders: API, importer, demo; the shop's order events). `rebuild`
recomputes all from the rows (`advocado dashboard rebuild`, and migration 0017).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, case, delete, func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from advocado.services import cohort_firsts, cohort_referrals, customer_aggregates
from advocado.store.db import as_date, built, run_for, utc_day
from advocado.store.models import (
    AdvocateFirst,
    AdvocateReferralCount,
    AdvocateReferredRevenue,
    Order,
    Referral,
    ReferralCode,
    ReferralDayCount,
    ReferredRevenueDay,
    Reward,
    RewardCostDay,
)

ALL_PROGRAMS = 0
SIGNED_UP = "signed_up"  # basis: the day of signed_up_at
QUALIFIED = "qualified"  # basis: the day of qualified_at
QUALIFIED_STATUSES = ("qualified", "rewarded")
REJECTED = "rejected"
PAID = "paid"
_OPEN = "referral_aggregates.open"  # session.info: friends followed by an outer wrapper
_FRAMES = "referral_aggregates.frames"  # session.info: the open friends_changing, innermost last
_FIRSTS = "advocate_firsts"  # in a Tally: (program, advocate) -> [None, earliest signup]

# table -> (its key columns, its count columns; the first is zero only when the row is empty)
_TABLES: dict[str, tuple[Any, tuple[str, ...], tuple[str, ...]]] = {
    "referral_day_counts": (
        ReferralDayCount.__table__,
        ("program_id", "basis", "day", "status", "reason", "qualified"),
        ("referrals",),
    ),
    "referred_revenue_days": (
        ReferredRevenueDay.__table__,
        ("program_id", "day", "currency"),
        ("orders", "revenue"),
    ),
    "reward_cost_days": (
        RewardCostDay.__table__,
        ("program_id", "day", "currency", "kind"),
        ("rewards", "amount"),
    ),
    "advocate_referral_counts": (
        AdvocateReferralCount.__table__,
        ("program_id", "advocate_id"),
        ("signups", "qualified", "rejected"),
    ),
    "advocate_referred_revenue": (
        AdvocateReferredRevenue.__table__,
        ("program_id", "advocate_id", "currency"),
        ("orders", "revenue"),
    ),
}

Tally = dict[str, dict[tuple[Any, ...], list[int]]]


def _add(tally: Tally, name: str, key: tuple[Any, ...], *values: int) -> None:
    found = tally[name].setdefault(key, [0] * len(values))
    for i, value in enumerate(values):
        found[i] += value


def _contributions(session: Session, friend_ids: list[int] | None) -> Tally:
    """What these friends (None: everyone) add to each aggregate, from their rows."""
    tally: Tally = {name: {} for name in _TABLES}

    def referrals_of(ids: Any) -> Select[Any]:
        found = select(
            Referral.program_id,
            Referral.advocate_id,
            Referral.referee_id,
            Referral.status,
            Referral.reason,
            Referral.signed_up_at,
            Referral.qualified_at,
        )
        return found if ids is None else found.where(Referral.referee_id.in_(ids))

    live: dict[int, list[tuple[int, int]]] = {}  # friend -> (program, advocate) not rejected
    any_referral = False
    firsts: dict[tuple[int, int], list[Any]] = {}  # (program, advocate) -> [None, earliest]
    tally[_FIRSTS] = firsts  # type: ignore[assignment]
    for r in run_for(session, "referral_aggregates.referrals", referrals_of, friend_ids):
        any_referral = True
        _merge(firsts, r.program_id, r.advocate_id, 1, r.signed_up_at)
        has_qualified_at = r.qualified_at is not None
        reason = (r.reason or "") if r.status == REJECTED else ""
        signed = customer_aggregates._day(r.signed_up_at)
        _add(tally, "referral_day_counts",
             (r.program_id, SIGNED_UP, signed, r.status, reason, has_qualified_at), 1)  # fmt: skip
        if has_qualified_at:
            qualified_day = customer_aggregates._day(r.qualified_at)
            _add(tally, "referral_day_counts",
                 (r.program_id, QUALIFIED, qualified_day, r.status, reason, True), 1)  # fmt: skip
        qualified = int(has_qualified_at and r.status in QUALIFIED_STATUSES)
        rejected = int(r.status == REJECTED)
        for program in (r.program_id, ALL_PROGRAMS):
            _add(
                tally, "advocate_referral_counts", (program, r.advocate_id), 1, qualified, rejected
            )
        if not rejected:
            live.setdefault(r.referee_id, []).append((r.program_id, r.advocate_id))
    if friend_ids is not None and not any_referral:
        return tally  # no referral: no orders or rewards of theirs count here
    if friend_ids is None or live:
        _referred_orders(session, friend_ids, live, tally)
    _rewards(session, friend_ids, tally)
    return tally


def _referred_orders(session: Session, friend_ids: list[int] | None,
                     live: dict[int, list[tuple[int, int]]], tally: Tally) -> None:  # fmt: skip
    """The paid orders of friends with a referral not rejected: revenue per program (and
    any program, once) and per advocate of each such referral."""

    def orders_of(ids: Any) -> Select[Any]:
        day = utc_day(session, Order.placed_at)
        if ids is None:  # every friend with a referral not rejected
            ids = select(Referral.referee_id).where(Referral.status != REJECTED)
        return (
            select(Order.customer_id, day, Order.currency, func.count(), func.sum(Order.amount))
            .where(Order.status == PAID, Order.customer_id.in_(ids))
            .group_by(Order.customer_id, day, Order.currency)
        )

    friends = None if friend_ids is None else sorted(live)
    for customer_id, d, currency, n, revenue in run_for(
        session, "referral_aggregates.orders", orders_of, friends
    ):
        pairs = live.get(customer_id)
        if not pairs:
            continue
        n, revenue, d = int(n), int(revenue or 0), as_date(d)
        for program in {ALL_PROGRAMS, *(p for p, _ in pairs)}:
            _add(tally, "referred_revenue_days", (program, d, currency), n, revenue)
        for program, advocate in pairs:
            for p in (program, ALL_PROGRAMS):
                _add(tally, "advocate_referred_revenue", (p, advocate, currency), n, revenue)


def _rewards(session: Session, friend_ids: list[int] | None, tally: Tally) -> None:
    """The live rewards of these friends' referrals (whatever the referral's status)."""

    def rewards_of(ids: Any) -> Select[Any]:
        created = utc_day(session, Reward.created_at)
        rewards = (
            select(
                Reward.program_id,
                created,
                Reward.currency,
                Reward.kind,
                func.count(),
                func.sum(Reward.amount),
            )
            .where(Reward.reversed_at.is_(None))
            .group_by(Reward.program_id, created, Reward.currency, Reward.kind)
        )
        if ids is None:
            return rewards
        theirs = select(Referral.id).where(Referral.referee_id.in_(ids))
        return rewards.where(Reward.referral_id.in_(theirs))

    for program, d, currency, kind, n, amount in run_for(
        session, "referral_aggregates.rewards", rewards_of, friend_ids
    ):
        _add(tally, "reward_cost_days", (program, as_date(d), currency, kind), int(n),
             int(amount or 0))  # fmt: skip


def _write(session: Session, after: Tally, before: Tally | None) -> None:
    """Add after - before to the stored rows (keys sorted: one lock order, no deadlocks)."""
    for name, (table, keys, counts) in _TABLES.items():
        old = before[name] if before is not None else {}
        new = after[name]
        rows = []
        for key in sorted(set(old) | set(new), key=repr):
            a, b = new.get(key), old.get(key)
            diff = [x - y for x, y in zip(a or [0] * len(counts), b or [0] * len(counts),
                                          strict=True)]  # fmt: skip
            if any(diff):
                rows.append({**dict(zip(keys, key, strict=True)),
                             **dict(zip(counts, diff, strict=True))})  # fmt: skip
        customer_aggregates.upsert_counts(session, table, rows, counts=counts)


def _merge_tally(total: Tally, part: Tally) -> None:
    for name, rows in part.items():
        for key, values in rows.items():
            if name == _FIRSTS:
                _merge(total[name], key[0], key[1], 1, values[1])
            else:
                _add(total, name, key, *values)


def _chunked(session: Session, ids: list[int]) -> Tally:
    total: Tally = {name: {} for name in (*_TABLES, _FIRSTS)}
    for start in range(0, len(ids), customer_aggregates.CHUNK):
        _merge_tally(total, _contributions(session, ids[start : start + customer_aggregates.CHUNK]))
    return total


class _Frame:
    """One friends_changing: the friends it follows and their part before the write."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.before: Tally = {name: {} for name in (*_TABLES, _FIRSTS)}
        self.cohort_before: cohort_referrals.Tally = cohort_referrals.empty()
        self.advocates: set[int] = set()  # the friends' advocates before the write


def _take(session: Session, frame: _Frame, friend_ids: Iterable[int | None]) -> None:
    """Lock these friends (not followed yet) and read their part into the frame."""
    open_ids: set[int] = session.info.setdefault(_OPEN, set())
    ids = sorted({i for i in friend_ids if i is not None} - open_ids)
    if not ids:
        return
    session.flush()
    open_ids.update(ids)
    frame.ids += ids
    for start in range(0, len(ids), customer_aggregates.CHUNK):
        customer_aggregates._lock(session, ids[start : start + customer_aggregates.CHUNK])
    _merge_tally(frame.before, _chunked(session, ids))
    # the same friends' part per segment cohort
    part, advocates = cohort_referrals.take(session, ids)
    cohort_referrals.merge(frame.cohort_before, part)
    frame.advocates |= advocates


@contextmanager
def friends_changing(session: Session, friend_ids: Iterable[int | None]) -> Iterator[None]:
    """Wraps a write of these customers' referrals, orders or their referrals' rewards (same
    transaction): their contribution to every referral aggregate is read before and after,
    and the difference added. `follow` adds friends found while the write runs."""
    frames: list[_Frame] = session.info.setdefault(_FRAMES, [])
    frame = _Frame()
    frames.append(frame)
    try:
        _take(session, frame, friend_ids)
        yield
        if frame.ids:
            session.flush()
            after = _chunked(session, frame.ids)
            _write(session, after, frame.before)
            cohort_referrals.settle(session, frame.ids, frame.cohort_before, frame.advocates)
            counts = after["advocate_referral_counts"]
            old = frame.before["advocate_referral_counts"]
            if any(n[0] > old.get(key, [0])[0] for key, n in counts.items()):  # new referral
                _earliest(session, after[_FIRSTS])  # their advocates' first referral
    finally:
        frames.pop()
        session.info.get(_OPEN, set()).difference_update(frame.ids)


def follow(session: Session, friend_ids: Iterable[int | None]) -> None:
    """Inside friends_changing, before writing: follow these friends too (read now, and
    again when the wrapper ends)."""
    frames: list[_Frame] = session.info.get(_FRAMES, [])
    assert frames, "follow() runs inside friends_changing"
    _take(session, frames[-1], friend_ids)


def _earliest(session: Session, found: dict[tuple[int, int], list[Any]]) -> None:
    """advocate_firsts: each (program, advocate)'s code_at / first_at set to the earlier of
    the stored and the given (None: leave it). Earlier-of is order-free, so racing writers
    agree; rows in key order (one lock order)."""
    rows = [
        {"program_id": p, "advocate_id": a, "code_at": code_at, "first_at": first_at}
        for (p, a), (code_at, first_at) in sorted(found.items())
    ]
    if not rows:
        return
    table = AdvocateFirst.__table__

    def build(dialect: Any) -> Any:
        statement = dialect.insert(table)
        new = statement.excluded

        def earlier(name: str) -> Any:
            old = table.c[name]
            return case(
                (new[name].is_(None), old),
                (old.is_(None) | (new[name] < old), new[name]),
                else_=old,
            )

        return statement.on_conflict_do_update(
            index_elements=["program_id", "advocate_id"],
            set_={"code_at": earlier("code_at"), "first_at": earlier("first_at")},
        )

    session.connection().execute(built(session, "advocate_firsts.earliest", build), rows)
    # gap_us from the stored (merged) times: the upsert holds the rows, so this reads what
    # every writer before it left.
    t = AdvocateFirst
    keys = sorted(found)
    for start in range(0, len(keys), 400):
        chunk = keys[start : start + 400]
        stored = session.execute(
            select(t.program_id, t.advocate_id, t.code_at, t.first_at, t.gap_us).where(
                tuple_(t.program_id, t.advocate_id).in_(chunk)
            )
        ).all()
        for program, advocate, code_at, first_at, gap in stored:
            wanted = gap_of(code_at, first_at)
            if wanted != gap:
                session.execute(
                    update(t)
                    .where(t.program_id == program, t.advocate_id == advocate)
                    .values(gap_us=wanted)
                )
    # their any-program rows per segment cohort (services.cohort_firsts), same transaction
    cohort_firsts.copy(session, [a for p, a in keys if p == ALL_PROGRAMS])


def gap_of(code_at: Any, first_at: Any) -> int | None:
    """Whole microseconds from the first code to the first referral, 0 if the referral came
    first; None unless both are known (the K-factor's time to first referral)."""
    if code_at is None or first_at is None:
        return None
    return max(0, (first_at - code_at) // timedelta(microseconds=1))


def _merge(found: dict[tuple[int, int], list[Any]], program: int, advocate: int, column: int,
           at: Any) -> None:  # fmt: skip
    for key in ((program, advocate), (ALL_PROGRAMS, advocate)):
        row = found.setdefault(key, [None, None])
        if at is not None and (row[column] is None or at < row[column]):
            row[column] = at


def code_made(session: Session, *, program_id: int, customer_id: int, created_at: Any) -> None:
    """After a referral code was made (services.programs): the holder's first code."""
    found: dict[tuple[int, int], list[Any]] = {}
    _merge(found, program_id, customer_id, 0, created_at)
    _earliest(session, found)


def _rebuild_firsts(session: Session) -> None:
    session.execute(delete(AdvocateFirst))
    found: dict[tuple[int, int], list[Any]] = {}
    codes = select(
        ReferralCode.program_id, ReferralCode.customer_id, func.min(ReferralCode.created_at)
    ).group_by(ReferralCode.program_id, ReferralCode.customer_id)
    for program, customer, at in session.execute(codes):
        _merge(found, program, customer, 0, at)
    firsts = select(
        Referral.program_id, Referral.advocate_id, func.min(Referral.signed_up_at)
    ).group_by(Referral.program_id, Referral.advocate_id)
    for program, advocate, at in session.execute(firsts):
        _merge(found, program, advocate, 1, at)
    rows = [
        {"program_id": p, "advocate_id": a, "code_at": code_at, "first_at": first_at,
         "gap_us": gap_of(code_at, first_at)}
        for (p, a), (code_at, first_at) in sorted(found.items())
    ]  # fmt: skip
    if rows:
        session.execute(insert(AdvocateFirst), rows)


def rebuild(session: Session) -> dict[str, int]:
    """Recompute every referral aggregate from the rows (in the caller's transaction).
    Returns the row counts."""
    for table, _, _ in _TABLES.values():
        session.execute(delete(table))
    _write(session, _contributions(session, None), None)
    _rebuild_firsts(session)
    found = {
        name: session.scalar(select(func.count()).select_from(table)) or 0
        for name, (table, _, _) in _TABLES.items()
    }
    found["advocate_firsts"] = session.scalar(select(func.count()).select_from(AdvocateFirst)) or 0
    return found


def snapshot(session: Session) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Every table as plain data, empty rows left out (tests compare maintained with rebuilt)."""
    found: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
    for name, (table, keys, counts) in _TABLES.items():
        rows = {}
        for row in session.execute(select(table)).mappings():
            values = tuple(int(row[c]) for c in counts)
            if any(values):
                key = tuple(_plain(row[k]) for k in keys)
                rows[key] = values
        found[name] = rows
    found["advocate_firsts"] = {
        (r.program_id, r.advocate_id): (r.code_at, r.first_at, r.gap_us)
        for r in session.execute(select(AdvocateFirst)).scalars()
    }
    return found


def _plain(value: Any) -> Any:
    return as_date(value) if isinstance(value, date) else value
