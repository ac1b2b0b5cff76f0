"""The 12-month customer value figure's pre-aggregates (dashboard `clv`), and how they stay
correct.

 - value_groups: per customer, the groups the figure splits by. (0, advocate): brought a
   friend whose referral is not rejected, in any program. (program, member): holds a code
   in the program or was referred in it (the program filter's people). (program, advocate):
   a member who brought a friend not rejected in that program. Most customers are in none.
 - value_group_days: paid_order_days per group: the members' paid orders and revenue per
   UTC day, currency and day of the customer's previous paid order in that currency. The
   customers who bought in a window are its orders whose previous order is before it: the
   clv figure costs days.
 - value_group_buyer_days: per group member, paid orders and revenue per currency and UTC
   day: the drill-down's top buyers of a group read that group's rows only.

A customer's share of both is their groups times their paid orders. It moves
when either moves, always in the transaction of the write, by taking the customer's share
out before the write and putting the recomputed share back after (on PostgreSQL the
customers' rows are locked first, in id order, as customer_aggregates does, so two writers
of one customer queue instead of each adding what it saw; their value_group_buyer_days rows
are simply deleted and written again under that lock):
 - orders: customer_aggregates.orders_changing (every order writer goes through it: the
   record import/API, the shop's order events, refunds) calls `orders_tally`;
 - groups: `groups_changing` wraps every write that can move a customer into or out of a
   group: a referral created (its advocate and friend), a referral's status changed to or
   from rejected (services.referrals._set_status: reviews, fraud checks, refunds' clawback),
   a code given (services.programs.code_for). services.cohorts' cohort_paid_order_days
   split each segment's orders by advocate: both hooks move those too (`orders_tally`).
`rebuild` recomputes the three tables from the rows (`advocado dashboard rebuild`, migration 0015).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Select,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    union,
)
from sqlalchemy.orm import Session, aliased

from advocado.services import customer_aggregates as aggregates
from advocado.store.db import built, run_for, utc_day
from advocado.store.models import (
    CustomerRevenue,
    Order,
    Referral,
    ReferralCode,
    ValueGroup,
    ValueGroupBuyerDay,
    ValueGroupDay,
)

ALL_PROGRAMS = 0  # value_groups.program_id of "an advocate in any program"
ADVOCATE = "advocate"
MEMBER = "member"
REJECTED = "rejected"
PAID = "paid"


def _groups_of(customer_ids: Any) -> Any:
    """The groups of these customers (a list or a bound parameter; None: everyone), from the
    referrals and codes."""

    def only(column: Any, query: Select[Any]) -> Select[Any]:
        return query if customer_ids is None else query.where(column.in_(customer_ids))

    live = Referral.status != REJECTED
    code, friend = aliased(ReferralCode), aliased(Referral)
    member = or_(
        exists().where(
            code.customer_id == Referral.advocate_id, code.program_id == Referral.program_id
        ),
        exists().where(
            friend.referee_id == Referral.advocate_id, friend.program_id == Referral.program_id
        ),
    )
    return union(
        only(
            Referral.advocate_id,
            select(Referral.advocate_id, literal(ALL_PROGRAMS), literal(ADVOCATE)).where(live),
        ),
        only(
            ReferralCode.customer_id,
            select(ReferralCode.customer_id, ReferralCode.program_id, literal(MEMBER)),
        ),
        only(
            Referral.referee_id,
            select(Referral.referee_id, Referral.program_id, literal(MEMBER)),
        ),
        only(
            Referral.advocate_id,
            select(Referral.advocate_id, Referral.program_id, literal(ADVOCATE)).where(
                live, member
            ),
        ),
    )


def _tally(session: Session, customer_ids: list[int] | None, sign: int) -> None:
    """Add (+1) or take out (-1) these customers' paid orders (None: everyone's) in the
    groups value_groups holds for them now."""
    found = run_for(session, "value_groups.tally", lambda ids: _tally_query(session, ids),
                    customer_ids)  # fmt: skip
    delta: dict[tuple[int, str, str, date, date], list[int]] = {}
    for program_id, role, currency, d, b, n, revenue in found:
        previous_day = aggregates.NO_PREVIOUS_DAY if b is None else aggregates._day(b)
        key = (int(program_id), role, currency, aggregates._day(d), previous_day)
        pair = delta.setdefault(key, [0, 0])
        pair[0] += sign * int(n)
        pair[1] += sign * int(revenue or 0)
    rows = [
        {
            "program_id": p,
            "role": r,
            "currency": c,
            "day": d,
            "previous_day": b,
            "orders": n,
            "revenue": v,
        }
        for (p, r, c, d, b), (n, v) in sorted(delta.items())  # one lock order: no deadlocks
        if n or v
    ]
    aggregates.upsert_counts(session, ValueGroupDay.__table__, rows, counts=("orders", "revenue"))


def _tally_query(session: Session, customer_ids: Any) -> Select[Any]:
    """_tally's statement: per group, currency, day and previous day, these customers' (a
    list or a bound parameter; None: everyone's) paid orders and revenue."""
    group = ValueGroup
    previous = func.lag(Order.placed_at).over(
        partition_by=(Order.customer_id, Order.currency), order_by=(Order.placed_at, Order.id)
    )
    paid = select(
        Order.customer_id,
        Order.placed_at,
        Order.currency,
        Order.amount,
        previous.label("previous"),
    ).where(Order.status == PAID)
    if customer_ids is not None:
        paid = paid.where(Order.customer_id.in_(customer_ids))
    sub = paid.subquery()
    day, before = utc_day(session, sub.c.placed_at), utc_day(session, sub.c.previous)
    keys = (group.program_id, group.role, sub.c.currency, day, before)
    query = (
        select(*keys, func.count(), func.sum(sub.c.amount))
        .join_from(sub, group, group.customer_id == sub.c.customer_id)
        .group_by(*keys)
    )
    if customer_ids is not None:
        query = query.where(group.customer_id.in_(customer_ids))
    return query


def _buyer_days(session: Session, customer_ids: list[int] | None) -> None:
    """Write these customers' value_group_buyer_days (None: everyone's), from their groups
    and paid orders (theirs were deleted first: the customers are locked)."""

    def write_of(ids: Any) -> Any:
        group, day = ValueGroup, utc_day(session, Order.placed_at)
        keys = (group.program_id, group.role, Order.currency, Order.customer_id, day)
        query = (
            select(*keys, func.count(), func.sum(Order.amount))
            .join_from(Order, group, group.customer_id == Order.customer_id)
            .where(Order.status == PAID)
            .group_by(*keys)
        )
        if ids is not None:
            query = query.where(group.customer_id.in_(ids))
        columns = ["program_id", "role", "currency", "customer_id", "day", "orders", "revenue"]
        return insert(ValueGroupBuyerDay.__table__).from_select(columns, query)  # Core: ids bound

    run_for(session, "value_group_buyer_days.write", write_of, customer_ids)


def _forget_buyer_days(session: Session, customer_ids: list[int]) -> None:
    table = ValueGroupBuyerDay.__table__
    session.execute(delete(table).where(table.c.customer_id.in_(customer_ids)))


def _grouped(session: Session, customer_ids: list[int]) -> list[int]:
    """Those of these customers in some group (most buyers are in none: one index probe)."""
    group = ValueGroup
    return list(
        session.scalars(
            select(group.customer_id).where(group.customer_id.in_(customer_ids)).distinct()
        )
    )


def _revenues(session: Session, customer_ids: list[int] | None) -> None:
    """Write these customers' customer_revenues (None: everyone's) from their paid orders."""
    if customer_ids is not None:
        table = CustomerRevenue.__table__
        session.execute(delete(table).where(table.c.customer_id.in_(customer_ids)))

    def write_of(ids: Any) -> Any:
        keys = (Order.customer_id, Order.currency)
        query = (
            select(*keys, func.count(), func.sum(Order.amount))
            .where(Order.status == PAID)
            .group_by(*keys)
        )
        if ids is not None:
            query = query.where(Order.customer_id.in_(ids))
        columns = ["customer_id", "currency", "orders", "revenue"]
        return insert(CustomerRevenue.__table__).from_select(columns, query)  # Core: ids bound

    run_for(session, "customer_revenues.write", write_of, customer_ids)


def orders_tally(session: Session, customer_ids: list[int], sign: int) -> None:
    """customer_aggregates.orders_changing's part for this module (customers locked there):
    take out (-1) or put back (+1) these customers' orders."""
    if sign > 0:
        _revenues(session, customer_ids)
    grouped = _grouped(session, customer_ids)
    if not grouped:
        return
    _tally(session, grouped, sign)
    if sign > 0:
        _forget_buyer_days(session, grouped)
        _buyer_days(session, grouped)


def _regroup(session: Session, customer_ids: list[int]) -> None:
    table = ValueGroup.__table__
    session.execute(delete(table).where(table.c.customer_id.in_(customer_ids)))
    regroup = built(session, "value_groups.regroup", lambda _: insert(table).from_select(
        ["customer_id", "program_id", "role"], _groups_of(bindparam("ids", expanding=True))
    ))  # fmt: skip
    session.execute(regroup, {"ids": customer_ids})


@contextmanager
def groups_changing(session: Session, customer_ids: Iterable[int | None]) -> Iterator[None]:
    """Wraps a write that can move these customers into or out of a value group (a referral
    created, a referral's status to or from rejected, a code given): their paid orders are
    taken out of value_group_days before, their groups recomputed after, and put back."""
    from advocado.services import cohorts  # (it builds on this module)

    session.flush()
    chunks = list(aggregates._chunks(i for i in customer_ids if i is not None))
    for chunk in chunks:
        aggregates._lock(session, chunk)
        _tally(session, chunk, -1)
        _forget_buyer_days(session, chunk)
        cohorts.orders_tally(session, chunk, -1)  # their segments' orders split by advocate
    yield
    session.flush()
    for chunk in chunks:
        _regroup(session, chunk)
        _tally(session, chunk, +1)
        _buyer_days(session, chunk)
        cohorts.orders_tally(session, chunk, +1)


def advocates(program_id: int | None) -> Select[Any]:
    """SELECT of the customer ids of the advocates (in the program, if one is given)."""
    return select(ValueGroup.customer_id).where(
        ValueGroup.program_id == (ALL_PROGRAMS if program_id is None else program_id),
        ValueGroup.role == ADVOCATE,
    )


def is_member(program_id: int) -> Callable[[Any], Any]:
    """SQL test of a customer id column: one of the program's people (an index probe)."""

    def test(column: Any) -> Any:
        g = ValueGroup
        return exists().where(g.program_id == program_id, g.role == MEMBER, g.customer_id == column)

    return test


def members(program_id: int) -> Select[Any]:
    """SELECT of the customer ids of the program's people (code holders and referred)."""
    return select(ValueGroup.customer_id).where(
        ValueGroup.program_id == program_id, ValueGroup.role == MEMBER
    )


def rebuild(session: Session) -> dict[str, int]:
    """Recompute value_groups and value_group_days from the rows; their row counts."""
    session.execute(delete(CustomerRevenue))
    _revenues(session, None)
    session.execute(delete(ValueGroupBuyerDay))
    session.execute(delete(ValueGroupDay))
    session.execute(delete(ValueGroup))
    session.execute(
        insert(ValueGroup).from_select(["customer_id", "program_id", "role"], _groups_of(None))
    )
    _tally(session, None, +1)
    _buyer_days(session, None)
    return {
        table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
        for table in (ValueGroup, ValueGroupDay, ValueGroupBuyerDay, CustomerRevenue)
    }


def snapshot(session: Session) -> dict[str, Any]:
    """Both tables as plain data (tests compare maintained with rebuilt)."""
    groups = {
        (r.program_id, r.role, r.customer_id) for r in session.scalars(select(ValueGroup)).all()
    }
    days = {
        (r.program_id, r.role, r.currency, aggregates._day(r.day),
         aggregates._day(r.previous_day)): (r.orders, r.revenue)
        for r in session.scalars(select(ValueGroupDay)).all()
        if r.orders or r.revenue
    }  # fmt: skip
    buyers = {
        (r.program_id, r.role, r.currency, r.customer_id, aggregates._day(r.day)): (
            r.orders, r.revenue,
        )
        for r in session.scalars(select(ValueGroupBuyerDay)).all()
    }  # fmt: skip
    revenues = {
        (r.customer_id, r.currency): (r.orders, r.revenue)
        for r in session.scalars(select(CustomerRevenue)).all()
    }
    return {"groups": groups, "days": days, "buyers": buyers, "revenues": revenues}


def top_outside(session: Session, *, currency: str, start: datetime, end: datetime,
                limit: int, batch: int | None = None, most: int = 20_000,
                program_id: int | None = None,
                keep: Callable[[Any], Any] | None = None, advocates: bool = False,
                ) -> list[tuple[int, int, int]] | None:  # fmt: skip
    """The `limit` customers who are not advocates (in any program; of `program_id` if
    given; `advocates`: who are) with the most revenue from paid orders placed in
    [start, end): (customer_id, orders, revenue), by revenue desc then id, as a query over
    every order would give; only
    those `keep(customer id column)` holds for (a segment's or program's members, tested
    per customer walked). Walks customer_revenues from the highest all-time revenue down,
    in growing batches, summing each customer's orders in the window on their index; a
    customer's revenue in a window is at most their all-time revenue, so once the limit-th
    found has more than the last one walked, nobody further can enter. None if that needs
    more than `most` customers (the caller sums every order)."""
    if limit <= 0:
        return []
    t, group = CustomerRevenue, ValueGroup
    # the group and the members tested on the walk (an index probe per customer walked), so
    # a batch holds only customers who can enter and the window sums read only theirs
    advocate = exists().where(
        group.customer_id == t.customer_id,
        group.program_id == (ALL_PROGRAMS if program_id is None else program_id),
        group.role == ADVOCATE,
    )
    if session.get_bind().dialect.name == "postgresql":
        # A plan for these ids and this window each time: after a few runs PostgreSQL would
        # keep a generic plan that scans the window's orders by time (seconds, not ms).
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    size = batch or limit + 50
    best: list[tuple[int, int, int, int]] = []  # (-revenue, customer_id, orders, revenue)
    after: tuple[int, int] | None = None
    walked_in_all = 0
    while walked_in_all < most:
        walk = (
            select(t.customer_id, t.revenue)
            .where(
                t.currency == currency,
                advocate if advocates else ~advocate,
                True if keep is None else keep(t.customer_id),
            )
            .order_by(t.revenue.desc(), t.customer_id.desc())
            .limit(size)
        )
        if after is not None:
            walk = walk.where(tuple_(t.revenue, t.customer_id) < after)
        walked = session.execute(walk).all()
        walked_in_all += len(walked)
        if walked:
            in_window = (
                select(Order.customer_id, func.count(), func.sum(Order.amount))
                .where(
                    Order.customer_id.in_([row[0] for row in walked]),
                    Order.status == PAID,
                    Order.currency == currency,
                    Order.placed_at >= start,
                    Order.placed_at < end,
                )
                .group_by(Order.customer_id)
            )
            for customer, n, revenue in session.execute(in_window):
                best.append((-int(revenue or 0), int(customer), int(n), int(revenue or 0)))
            best = sorted(best)[:limit]
            after = (int(walked[-1][1]), int(walked[-1][0]))
        if len(walked) < size or (len(best) == limit and best[-1][3] > after[0]):  # type: ignore[index]
            return [(customer, n, revenue) for _, customer, n, revenue in best]
        if batch is None:
            size = min(size * 2, 4000)
    return None


def top_buyers(*, program_id: int | None, role: str, currency: str,
               first: date, end: date, customers: Any = None,
               keep: Callable[[Any], Any] | None = None,
               but: Select[Any] | None = None) -> Select[Any]:  # fmt: skip
    """Per member of a group with paid orders on days [first, end): customer_id, orders,
    revenue (`customers`: only these; `keep`: only those it holds for, tested per row;
    `but`: not these). Reads the group's rows only."""
    t = ValueGroupBuyerDay
    query = (
        select(t.customer_id, func.sum(t.orders).label("orders"),
               func.sum(t.revenue).label("revenue"))
        .where(
            t.program_id == (ALL_PROGRAMS if program_id is None else program_id),
            t.role == role, t.currency == currency, t.day >= first, t.day < end,
        )
        .group_by(t.customer_id)
    )  # fmt: skip
    if customers is not None:
        query = query.where(t.customer_id.in_(customers))
    if keep is not None:
        query = query.where(keep(t.customer_id))
    if but is not None:
        query = query.where(t.customer_id.not_in(but))
    return query
