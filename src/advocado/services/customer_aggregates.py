"""The dashboard's pre-aggregates on the response/customer side, and how they stay correct.

 - customer_latest_responses: each customer's latest response (submitted_at, then id).
 - promoter_day_counts: customers whose latest response is a promoter's, per UTC day of that
   response, its persona, and the customer's value tier and influence.
 - paid_order_days: paid orders and revenue per UTC day, currency, and day of the customer's
   previous paid order in that currency.

Every write that can change them calls in here in its own transaction: services.records
(responses created, updated or deleted), services.voc (a comment re-classified: the persona
changes), services.insights (value tiers and influence recomputed), and the order writers
(services.records.save_orders, the shop's order events in services.referrals). Per affected customer
the latest response is recomputed from the rows (not adjusted by a delta, so a response
arriving late, moved in time or moved to another customer is handled the same way), and the
customer's promoter count is taken out before and put back after. On PostgreSQL the affected
customers' rows are locked first (FOR NO KEY UPDATE, in id order), so two writers for one customer
queue instead of each writing what it saw; SQLite has one writer. `rebuild` recomputes all
from scratch (`advocado dashboard rebuild`, and the migration that adds the tables).
The same take-out/put-back of promoter counts and paid orders is done per segment and program
the customer is in (services.cohorts.promoters_tally, which also marks the customer's segments
to be judged, and services.cohorts.orders_tally).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from advocado.services import customer_value
from advocado.store.db import built, run_for, utc_day
from advocado.store.models import (
    SEGMENT_COHORT_PREFIX,
    CohortMember,
    Customer,
    CustomerInsight,
    CustomerLatestResponse,
    Order,
    PaidOrderDay,
    PromoterDayCount,
    Response,
)

CHUNK = 900  # ids per IN (...): under SQLite's bound-parameter limit
UNKNOWN = "unknown"
PROMOTER_MIN = 9
PAID = "paid"
NO_PREVIOUS_DAY = date(1900, 1, 1)  # paid_order_days.previous_day of a first order


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    wanted = sorted({i for i in ids if i is not None})
    for start in range(0, len(wanted), CHUNK):
        yield wanted[start : start + CHUNK]


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _tally(session: Session, customer_ids: list[int] | None, sign: int) -> None:
    """Add (sign +1) or take out (-1) these customers' promoter counts (None: everyone)."""
    latest, insight = CustomerLatestResponse, CustomerInsight
    day = utc_day(session, latest.submitted_at)
    persona = func.coalesce(latest.persona, UNKNOWN)
    tier = func.coalesce(insight.value_tier, UNKNOWN)
    high = func.coalesce(insight.high_influence, False)
    query = (
        select(day, persona, tier, high, func.count())
        .select_from(latest)
        .outerjoin(insight, insight.customer_id == latest.customer_id)
        .where(latest.score >= PROMOTER_MIN)
        .group_by(day, persona, tier, high)
    )
    if customer_ids is not None:
        query = query.where(latest.customer_id.in_(customer_ids))
        from advocado.services import cohorts  # (it builds on this module)

        cohorts.promoters_tally(session, customer_ids, sign)  # the same per segment / program
    delta: Counter[tuple[date, str, str, bool]] = Counter()
    for d, p, t, h, n in session.execute(query):
        delta[(_day(d), p, t, bool(h))] += sign * int(n)
    _add(session, delta)


def _add(session: Session, delta: Counter[tuple[date, str, str, bool]]) -> None:
    rows = [
        {"day": d, "persona": p, "value_tier": t, "high_influence": h, "customers": n}
        for (d, p, t, h), n in sorted(delta.items())  # one lock order: no deadlocks
        if n
    ]
    upsert_counts(session, PromoterDayCount.__table__, rows, counts=("customers",))


def upsert_counts(session: Session, table: Any, rows: list[dict[str, Any]],
                   *, counts: tuple[str, ...]) -> None:  # fmt: skip
    """Add each row's `counts` to the stored row with the same key (the other columns). Only
    a take-out (a negative count) can bring a row to zero, so only those rows are looked up
    by key and deleted when empty: no scan of the whole table on every write."""
    if not rows:
        return

    def build(dialect: Any) -> Any:
        statement = dialect.insert(table)
        return statement.on_conflict_do_update(
            index_elements=[column for column in table.primary_key.columns],
            set_={name: table.c[name] + statement.excluded[name] for name in counts},
        )

    upsert = built(session, f"upsert_counts:{table.name}:{','.join(counts)}", build)
    session.connection().execute(upsert, rows)
    keys = [column.name for column in table.primary_key.columns]
    lowered = [row for row in rows if row[counts[0]] < 0]
    for start in range(0, len(lowered), 100):
        matches = [
            and_(*(table.c[key] == row[key] for key in keys))
            for row in lowered[start : start + 100]
        ]
        session.execute(delete(table).where(table.c[counts[0]] == 0, or_(*matches)))


def segment_memberships(session: Session, customer_ids: Iterable[int]) -> dict[int, set[str]]:
    """The segment cohorts ("segment:<id>", services.cohorts) each of these customers is a
    stored member of: what every per-segment count's writer adds to (one built statement,
    the ids bound, a chunk at a time)."""
    query = built(session, "segment_memberships", lambda _: select(
        CohortMember.customer_id, CohortMember.cohort
    ).where(
        CohortMember.customer_id.in_(bindparam("ids", expanding=True)),
        CohortMember.cohort.like(SEGMENT_COHORT_PREFIX + "%"),
    ))  # fmt: skip
    found: dict[int, set[str]] = {}
    for chunk in _chunks(customer_ids):
        for customer_id, cohort in session.execute(query, {"ids": chunk}):
            found.setdefault(customer_id, set()).add(cohort)
    return found


def _latest_rows(session: Session, customer_ids: list[int] | None) -> Any:
    """The latest response per customer, from the responses themselves."""
    rank = func.row_number().over(
        partition_by=Response.customer_id,
        order_by=(Response.submitted_at.desc(), Response.id.desc()),
    )
    ranked = select(
        Response.customer_id,
        Response.id.label("response_id"),
        Response.submitted_at,
        Response.score,
        Response.persona,
        rank.label("rank"),
    ).where(Response.customer_id.is_not(None))
    if customer_ids is not None:
        ranked = ranked.where(Response.customer_id.in_(customer_ids))
    sub = ranked.subquery()
    return select(
        sub.c.customer_id, sub.c.response_id, sub.c.submitted_at, sub.c.score, sub.c.persona
    ).where(sub.c.rank == 1)


def _lock(session: Session, customer_ids: list[int]) -> None:
    # FOR NO KEY UPDATE: writers of one customer's responses queue here; it does not conflict
    # with the KEY SHARE locks their inserts' foreign keys already hold (FOR UPDATE would
    # deadlock two such writers).
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Customer.id)
            .where(Customer.id.in_(customer_ids))
            .order_by(Customer.id)
            .with_for_update(key_share=True)
        )


def responses_changed(session: Session, customer_ids: Iterable[int | None]) -> None:
    """After responses of these customers were written, re-edited or deleted (same
    transaction): their latest response and promoter counts, recomputed from the rows."""
    session.flush()
    table = CustomerLatestResponse.__table__
    for chunk in _chunks(i for i in customer_ids if i is not None):
        _lock(session, chunk)
        _tally(session, chunk, -1)
        session.execute(delete(CustomerLatestResponse).where(table.c.customer_id.in_(chunk)))
        session.execute(
            insert(CustomerLatestResponse).from_select(
                ["customer_id", "response_id", "submitted_at", "score", "persona"],
                _latest_rows(session, chunk),
            )
        )
        _tally(session, chunk, +1)


def forget(session: Session, customer_ids: Iterable[int | None]) -> None:
    """Before these customers' responses are deleted: their latest response and promoter
    counts taken out (responses_changed puts back what remains, after the delete)."""
    session.flush()
    table = CustomerLatestResponse.__table__
    for chunk in _chunks(i for i in customer_ids if i is not None):
        _lock(session, chunk)
        _tally(session, chunk, -1)
        session.execute(delete(CustomerLatestResponse).where(table.c.customer_id.in_(chunk)))


@contextmanager
def insights_changing(session: Session, customer_ids: Iterable[int] | None) -> Iterator[None]:
    """Wraps a write to customer_insights of these customers (None: any customer): their
    promoter counts are taken out before and put back after, with the new tier/influence."""
    session.flush()
    if customer_ids is None:
        yield
        session.flush()
        rebuild_promoter_counts(session)
        from advocado.services import cohort_firsts, cohort_referrals, cohorts

        cohorts.rebuild(session)  # segments filter on insights: every membership judged again
        from advocado.services import activation_aggregates

        activation_aggregates.recount_segment(session, None)  # and their activation counts
        cohort_referrals.recompute(session, None)  # their members' referral figures too
        cohort_firsts.recompute(session, None)  # and their advocate_firsts
        from advocado.services import click_rollup

        click_rollup.recount_cohorts(session, None)  # and their codes' clicks
        return
    chunks = list(_chunks(customer_ids))
    for chunk in chunks:
        _lock(session, chunk)  # a segment membership move of these customers queues
        _tally(session, chunk, -1)
    yield
    session.flush()
    for chunk in chunks:
        _tally(session, chunk, +1)


def _order_tally(session: Session, customer_ids: list[int] | None, sign: int) -> None:
    """Add (+1) or take out (-1) these customers' paid orders (None: everyone's)."""

    def query_of(ids: Any) -> Any:
        previous = func.lag(Order.placed_at).over(
            partition_by=(Order.customer_id, Order.currency),
            order_by=(Order.placed_at, Order.id),
        )
        paid = select(
            Order.placed_at, Order.currency, Order.amount, previous.label("previous")
        ).where(Order.status == PAID)
        if ids is not None:
            paid = paid.where(Order.customer_id.in_(ids))
        sub = paid.subquery()
        day, before = utc_day(session, sub.c.placed_at), utc_day(session, sub.c.previous)
        return select(day, sub.c.currency, before, func.count(), func.sum(sub.c.amount)).group_by(
            day, sub.c.currency, before
        )

    paid = run_for(session, "paid_order_days.tally", query_of, customer_ids)
    delta: dict[tuple[date, str, date], list[int]] = {}
    for d, currency, b, n, revenue in paid:
        key = (_day(d), currency, NO_PREVIOUS_DAY if b is None else _day(b))
        found = delta.setdefault(key, [0, 0])
        found[0] += sign * int(n)
        found[1] += sign * int(revenue or 0)
    rows = [
        {"day": d, "currency": c, "previous_day": b, "orders": n, "revenue": r}
        for (d, c, b), (n, r) in sorted(delta.items())  # one lock order: no deadlocks
        if n or r
    ]
    upsert_counts(session, PaidOrderDay.__table__, rows, counts=("orders", "revenue"))


@contextmanager
def orders_changing(session: Session, customer_ids: Iterable[int | None]) -> Iterator[None]:
    """Wraps a write of orders of these customers (the owners before and after): their paid
    orders are taken out of paid_order_days (and customer_value's value_group_days, and
    cohorts' cohort_paid_order_days) before and put back after, recomputed; and the referral
    aggregates (referred revenue) follow them (services.referral_aggregates)."""
    from advocado.services import cohorts, referral_aggregates  # (they build on this module)

    session.flush()
    chunks = list(_chunks(i for i in customer_ids if i is not None))
    with referral_aggregates.friends_changing(session, [i for c in chunks for i in c]):
        for chunk in chunks:
            _lock(session, chunk)
            _order_tally(session, chunk, -1)
            customer_value.orders_tally(session, chunk, -1)  # the advocates' and programs' share
            cohorts.orders_tally(session, chunk, -1)  # the same per segment / program
        yield
        session.flush()
        for chunk in chunks:
            _order_tally(session, chunk, +1)
            customer_value.orders_tally(session, chunk, +1)
            cohorts.orders_tally(session, chunk, +1)


def order_owners(session: Session, external_ids: Iterable[str]) -> set[int]:
    """The customers stored orders with these ids belong to now (before a write moves them)."""
    wanted = sorted(set(external_ids))
    found: set[int] = set()
    for start in range(0, len(wanted), CHUNK):
        found.update(
            session.scalars(
                select(Order.customer_id).where(
                    Order.external_id.in_(wanted[start : start + CHUNK])
                )
            )
        )
    return found


def rebuild_promoter_counts(session: Session) -> None:
    session.execute(delete(PromoterDayCount))
    _tally(session, None, +1)


def rebuild(session: Session) -> dict[str, int]:
    """Recompute every response/customer aggregate from the rows (one transaction: readers
    see the old or the new, never a half). Returns the row counts."""
    session.execute(delete(PromoterDayCount))
    session.execute(delete(PaidOrderDay))
    _order_tally(session, None, +1)
    session.execute(delete(CustomerLatestResponse))
    session.execute(
        insert(CustomerLatestResponse).from_select(
            ["customer_id", "response_id", "submitted_at", "score", "persona"],
            _latest_rows(session, None),
        )
    )
    _tally(session, None, +1)
    return {
        "customer_latest_responses": session.scalar(
            select(func.count()).select_from(CustomerLatestResponse)
        )
        or 0,
        "promoter_day_counts": session.scalar(select(func.count()).select_from(PromoterDayCount))
        or 0,
        "paid_order_days": session.scalar(select(func.count()).select_from(PaidOrderDay)) or 0,
    }


def snapshot(session: Session) -> dict[str, Any]:
    """Both tables as plain data (tests compare maintained with rebuilt)."""
    latest = {
        r.customer_id: (r.response_id, r.submitted_at, r.score, r.persona)
        for r in session.execute(select(CustomerLatestResponse)).scalars().all()
    }
    counts = {
        (_day(r.day), r.persona, r.value_tier, bool(r.high_influence)): r.customers
        for r in session.execute(select(PromoterDayCount)).scalars().all()
        if r.customers
    }
    orders = {
        (_day(r.day), r.currency, _day(r.previous_day)): (r.orders, r.revenue)
        for r in session.execute(select(PaidOrderDay)).scalars().all()
        if r.orders
    }
    return {"latest": latest, "promoters": counts, "orders": orders}
