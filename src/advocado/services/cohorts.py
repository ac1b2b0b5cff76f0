"""Cohorts: a saved segment's members and a program's people, kept as rows (cohort_members),
with the dashboard's customer-side counts per cohort, so a figure under a segment or program
filter costs days (or a SELECT on cohort_members), not an evaluation of the segment's filter
over every customer.

Cohorts ("segment:<id>", "program:<id>"):
 - a program's people are its code holders and its referees. A customer joins in the same
   transaction as their code is issued (services.programs.code_for) or their referral is
   created (services.referrals), via `joined_program`; nobody leaves (codes and referrals are
   not deleted).
 - a segment's members are the customers its filter selects. The filter reads responses,
   insights, tags and consent, so every write of those marks the customer dirty
   (cohort_dirty, same transaction: `mark_dirty`, called from services.customer_aggregates for
   responses and insights, services.records for customers, services.referrals for a customer
   an event creates, services.messaging for an unsubscribe, services.playbooks for tags). The
   worker (`settle`, run by services.playbooks._periodic) judges the dirty customers against
   every segment, moves their memberships and clears the marks it judged (a mark that grew
   meanwhile stays). Creating or editing a segment recomputes its members (`recompute`).

Reads stay exact in the dirty window: a segment's members are its stored members, minus the
dirty customers, plus the dirty customers its filter selects now (judged live on those few:
`segment_members`). It is the "aggregate + live tail" of services.click_rollup.

Counts per cohort (cohort_response_day_counts, cohort_promoter_day_counts,
cohort_paid_order_days) follow the same rules as their unfiltered tables, for every cohort
the customer is a stored member of:
 - tally hook: a write of responses adds and takes out per response (`responses_counted`,
   from services.records.count_responses_by_day); the latest response and insight changes
   take the customer's promoter row out before and put it back after (`promoters_tally`, from
   services.customer_aggregates._tally); a write of orders takes the customer's paid orders
   out before and puts them back after (`orders_tally`, from
   services.customer_aggregates.orders_changing, which every order writer goes through:
   imports and the API, the shop's order events, refunds). The paid orders are split by
   whether the customer is an advocate (value_groups), so services.customer_value's
   groups_changing (a referral created or its status changed, a code given) does the same.
   Orders and groups move no segment membership.
 - membership hook: a customer entering or leaving a cohort adds or takes out their whole
   contribution to it (`_contribute`).
So the stored counts are always those of the stored members with their current rows; a read
takes out what the dirty stored members contribute and adds what the dirty matching ones do
(`Members.out` / `Members.into`; `order_corrections` for the paid orders). A read of a few
rows tests each one for membership instead (`Members.holds`: an index probe per row).

Concurrency (PostgreSQL): a writer locks its customers (FOR NO KEY UPDATE, id order) before
it marks them dirty and before it reads their memberships to tally; the worker locks the
customers it judges, so a tally and a move of one customer queue. A whole recompute (a
segment saved, `rebuild`, every insight recomputed) locks cohort_dirty EXCLUSIVE: writers
that marked a customer have committed before it reads, and writers after it wait, then see
the new members when they tally. A program join and an order tally take the writers' lock
(ROW EXCLUSIVE) too.
SQLite has one writer.

Another panel adopts this by reading `Members.ids` (what dashboard._scope does), or by
keeping its own per-cohort counts with the two hooks above. services.activation_aggregates
does (segments only: its program people are its own): its writers add to the customer's
segments, `_move` calls `segment_moved`, a recompute `recount_segment` (insights_changing
too, after a whole rebuild), a deleted segment `forget_segment`. services.click_rollup does
too (clicks per segment: `holders_moved` from `_move`, `recount_cohorts` on a recompute or
a deleted segment). services.cohort_firsts does too (advocate_firsts per segment: `moved`
from `_move_members`, `recompute` / `forget`). services.cohort_referrals does too
(the referral figures by the ADVOCATE's segments): its membership hook wraps `_move`, and
the worker locks the referred friends of the customers it judges together with them (their
writers hold the friend's lock, not the advocate's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Engine,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from advocado.domain import segments as rules
from advocado.services import (
    activation_aggregates,
    click_rollup,
    cohort_firsts,
    cohort_referrals,
    segments,
)
from advocado.services import customer_aggregates as aggregates
from advocado.services.customer_value import ADVOCATE, ALL_PROGRAMS
from advocado.store.db import built, unit_of_work, utc_day
from advocado.store.models import (
    PROGRAM_COHORT_PREFIX,
    SEGMENT_COHORT_PREFIX,
    CohortDirty,
    CohortMember,
    CohortPaidOrderDay,
    CohortPromoterDayCount,
    CohortResponseDayCount,
    Customer,
    CustomerInsight,
    CustomerLatestResponse,
    Order,
    Referral,
    ReferralCode,
    Response,
    Segment,
    ValueGroup,
)

CHUNK = aggregates.CHUNK
LIVE_LIMIT = 5000  # dirty customers judged live at read time; more: the filter is evaluated
SETTLE_BATCH = 2000  # dirty customers the worker judges per transaction


def segment_cohort(segment_id: int) -> str:
    return f"{SEGMENT_COHORT_PREFIX}{segment_id}"


def program_cohort(program_id: int) -> str:
    return f"{PROGRAM_COHORT_PREFIX}{program_id}"


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _insert(session: Session) -> Any:
    return (postgresql if _postgres(session) else sqlite).insert


def _lock_all(session: Session) -> None:
    """The whole-recompute lock: writers that marked a customer dirty have committed, new
    ones wait (PostgreSQL; SQLite has one writer)."""
    if _postgres(session):
        session.execute(text("LOCK TABLE cohort_dirty IN EXCLUSIVE MODE"))


def _lock_customers(session: Session, customer_ids: list[int]) -> None:
    for chunk in aggregates._chunks(customer_ids):
        aggregates._lock(session, chunk)


# --- the hooks writers call ----------------------------------------------------------------


def mark_dirty(session: Session, customer_ids: Iterable[int | None]) -> None:
    """After a write that may change these customers' segment memberships (same transaction,
    after their rows were locked or written)."""
    rows = [{"customer_id": i, "marks": 1} for i in sorted({i for i in customer_ids if i})]
    if not rows:
        return
    statement = _insert(session)(CohortDirty.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=[CohortDirty.customer_id], set_={"marks": CohortDirty.marks + 1}
    )
    for start in range(0, len(rows), CHUNK):
        session.connection().execute(statement, rows[start : start + CHUNK])


def _memberships(session: Session, customer_ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for chunk in aggregates._chunks(customer_ids):
        query = select(CohortMember.customer_id, CohortMember.cohort).where(
            CohortMember.customer_id.in_(chunk)
        )
        for customer_id, cohort in session.execute(query):
            found.setdefault(customer_id, []).append(cohort)
    return found


def responses_counted(
    session: Session, changes: list[tuple[int | None, tuple[Any, ...], int]]
) -> None:
    """Tally hook of response_day_counts: (customer, (day, survey, score), +1/-1) per response
    written; added to every cohort the customer is a member of."""
    wanted = sorted({c for c, _, _ in changes if c is not None})
    if not wanted:
        return
    _lock_customers(session, wanted)
    mark_dirty(session, wanted)
    cohorts = _memberships(session, wanted)
    delta: Counter[tuple[str, date, str, int]] = Counter()
    for customer_id, (day, survey, score), sign in changes:
        for cohort in cohorts.get(customer_id or 0, ()):
            delta[(cohort, day, survey, score)] += sign
    _add_responses(session, delta)


def _add_responses(session: Session, delta: Counter[tuple[str, date, str, int]]) -> None:
    rows = [
        {"cohort": c, "day": d, "survey": s, "score": n, "responses": k}
        for (c, d, s, n), k in sorted(delta.items())  # one lock order: no deadlocks
        if k
    ]
    aggregates.upsert_counts(session, CohortResponseDayCount.__table__, rows, counts=("responses",))


def _promoter_query(session: Session) -> Any:
    latest, insight = CustomerLatestResponse, CustomerInsight
    day = utc_day(session, latest.submitted_at)
    persona = func.coalesce(latest.persona, aggregates.UNKNOWN)
    tier = func.coalesce(insight.value_tier, aggregates.UNKNOWN)
    high = func.coalesce(insight.high_influence, False)
    return (
        select(day, persona, tier, high)
        .select_from(latest)
        .outerjoin(insight, insight.customer_id == latest.customer_id)
        .where(latest.score >= aggregates.PROMOTER_MIN)
    ), (day, persona, tier, high)


def promoters_tally(session: Session, customer_ids: list[int], sign: int) -> None:
    """Tally hook of promoter_day_counts (these customers' rows out, -1, or back, +1), for
    every cohort each is a member of."""
    mark_dirty(session, customer_ids)  # first: a whole recompute waits for us, or we for it
    query, keys = _promoter_query(session)
    query = (
        query.add_columns(CohortMember.cohort, func.count())
        .join(CohortMember, CohortMember.customer_id == CustomerLatestResponse.customer_id)
        .where(CustomerLatestResponse.customer_id.in_(customer_ids))
        .group_by(CohortMember.cohort, *keys)
    )
    delta: Counter[tuple[str, date, str, str, bool]] = Counter()
    for d, p, t, h, cohort, n in session.execute(query):
        delta[(cohort, aggregates._day(d), p, t, bool(h))] += sign * int(n)
    _add_promoters(session, delta)


def _add_promoters(session: Session, delta: Counter[tuple[str, date, str, str, bool]]) -> None:
    rows = [
        {"cohort": c, "day": d, "persona": p, "value_tier": t, "high_influence": h, "customers": n}
        for (c, d, p, t, h), n in sorted(delta.items())  # one lock order: no deadlocks
        if n
    ]
    aggregates.upsert_counts(session, CohortPromoterDayCount.__table__, rows, counts=("customers",))


_OrderKey = tuple[str, str, date, date, bool]  # cohort, currency, day, previous day, advocate


def _paid_rows(session: Session, customer_ids: list[int] | None, cohort: str | None,
               sign: int, *, per_cohort: bool) -> dict[_OrderKey, list[int]]:  # fmt: skip
    """These customers' (None: everyone's) paid orders as paid_order_days rows, split by
    whether the customer is an advocate now (value_groups), times `sign`: key -> [orders,
    revenue]; per stored cohort of each customer (`per_cohort`, only `cohort`'s if given),
    else all under `cohort`."""
    if customer_ids is not None:
        # a write's few customers (every order event): the statement built once per shape,
        # the ids and the cohort bound
        one = cohort is not None or not per_cohort
        name = f"cohorts.paid_rows:{per_cohort}:{one}"
        ids, named = bindparam("ids", expanding=True), bindparam("cohort", type_=String)
        query = built(session, name, lambda _: _paid_query(
            session, ids, named if one else None, per_cohort=per_cohort,
        ))  # fmt: skip
        values: dict[str, Any] = {"ids": customer_ids}
        if one:
            values["cohort"] = cohort or ""
        rows = session.execute(query, values)
    else:
        rows = session.execute(_paid_query(session, None, cohort, per_cohort=per_cohort))
    found: dict[_OrderKey, list[int]] = {}
    for c, currency, d, b, a, n, revenue in rows:
        previous_day = aggregates.NO_PREVIOUS_DAY if b is None else aggregates._day(b)
        key = (c, currency, aggregates._day(d), previous_day, bool(a))
        pair = found.setdefault(key, [0, 0])
        pair[0] += sign * int(n)
        pair[1] += sign * int(revenue or 0)
    return found


def _paid_query(session: Session, customer_ids: Any, cohort: Any, *,
                per_cohort: bool) -> Select[Any]:  # fmt: skip
    """_paid_rows' statement: (cohort, currency, day, previous day, advocate, orders,
    revenue) of these customers' (a list or a bound parameter; None: everyone's) paid
    orders; `cohort` a name, a bound parameter or None."""
    previous = func.lag(Order.placed_at).over(
        partition_by=(Order.customer_id, Order.currency), order_by=(Order.placed_at, Order.id)
    )
    paid = select(
        Order.customer_id, Order.placed_at, Order.currency, Order.amount,
        previous.label("previous"),
    ).where(Order.status == aggregates.PAID)  # fmt: skip
    if customer_ids is not None:
        paid = paid.where(Order.customer_id.in_(customer_ids))
    sub = paid.subquery()
    day, before = utc_day(session, sub.c.placed_at), utc_day(session, sub.c.previous)
    advocate = exists().where(
        ValueGroup.customer_id == sub.c.customer_id,
        ValueGroup.program_id == ALL_PROGRAMS,
        ValueGroup.role == ADVOCATE,
    )
    flag = case((advocate, literal(1)), else_=literal(0))
    if per_cohort:
        keys: tuple[Any, ...] = (CohortMember.cohort, sub.c.currency, day, before, flag)
        query = select(*keys, func.count(), func.sum(sub.c.amount)).join_from(
            sub, CohortMember, CohortMember.customer_id == sub.c.customer_id
        )
        if customer_ids is not None:
            query = query.where(CohortMember.customer_id.in_(customer_ids))
        if cohort is not None:
            query = query.where(CohortMember.cohort == cohort)
    else:
        keys = (sub.c.currency, day, before, flag)
        named = cohort if isinstance(cohort, BindParameter) else literal(cohort or "")
        query = select(named, *keys, func.count(), func.sum(sub.c.amount))
    return query.group_by(*keys)


def _order_rows(delta: dict[_OrderKey, list[int]]) -> list[dict[str, Any]]:
    return [
        {
            "cohort": c,
            "currency": k,
            "day": d,
            "previous_day": b,
            "advocate": a,
            "orders": n,
            "revenue": r,
        }
        for (c, k, d, b, a), (n, r) in sorted(delta.items())  # one lock order: no deadlocks
        if n or r
    ]


def _add_orders(session: Session, delta: dict[_OrderKey, list[int]]) -> None:
    aggregates.upsert_counts(
        session, CohortPaidOrderDay.__table__, _order_rows(delta), counts=("orders", "revenue")
    )


def orders_tally(session: Session, customer_ids: list[int], sign: int) -> None:
    """Tally hook of paid_order_days (customer_aggregates.orders_changing, and
    customer_value.groups_changing: an advocate's orders move between the flags; customers
    locked there): take out (-1) or put back (+1) these customers' paid orders in every
    cohort each is a stored member of. Orders and groups move no segment membership:
    nothing marked dirty."""
    if _postgres(session):  # a whole recompute waits for us, or we for it
        session.execute(text("LOCK TABLE cohort_dirty IN ROW EXCLUSIVE MODE"))
    _add_orders(session, _paid_rows(session, customer_ids, None, sign, per_cohort=True))


def joined_program(session: Session, program_id: int, customer_id: int) -> None:
    """Membership hook of program cohorts: a code issued or a referral created (same
    transaction). Adds the customer's counts once, whoever inserts the row first."""
    if _postgres(session):
        session.execute(text("LOCK TABLE cohort_dirty IN ROW EXCLUSIVE MODE"))
    aggregates._lock(session, [customer_id])
    cohort = program_cohort(program_id)
    statement = (
        _insert(session)(CohortMember.__table__)
        .values(cohort=cohort, customer_id=customer_id)
        .on_conflict_do_nothing()
        .returning(CohortMember.customer_id)
    )
    if session.execute(statement).first() is not None:
        _contribute(session, cohort, [customer_id], +1)


# --- membership moves ----------------------------------------------------------------------


def _contribute(session: Session, cohort: str, customer_ids: list[int], sign: int) -> None:
    """Add (+1) or take out (-1) these customers' whole counts to a cohort's counts."""
    ids = bindparam("ids", expanding=True)
    responses = built(session, "cohorts.contribute.responses",
                      lambda _: _response_query(session, ids))  # fmt: skip

    def promoters_of(_: Any) -> Any:
        query, keys = _promoter_query(session)
        return (
            query.add_columns(func.count())
            .where(CustomerLatestResponse.customer_id.in_(ids))
            .group_by(*keys)
        )

    promoters_query = built(session, "cohorts.contribute.promoters", promoters_of)
    for chunk in aggregates._chunks(customer_ids):
        nps: Counter[tuple[str, date, str, int]] = Counter()
        for d, s, n, k in session.execute(responses, {"ids": chunk}):
            nps[(cohort, aggregates._day(d), s, n)] += sign * int(k)
        _add_responses(session, nps)
        promoters: Counter[tuple[str, date, str, str, bool]] = Counter()
        for d, p, t, h, n in session.execute(promoters_query, {"ids": chunk}):
            promoters[(cohort, aggregates._day(d), p, t, bool(h))] += sign * int(n)
        _add_promoters(session, promoters)
        _add_orders(session, _paid_rows(session, chunk, cohort, sign, per_cohort=False))


def _response_query(session: Session, customer_ids: Any) -> Any:
    day = utc_day(session, Response.submitted_at)
    survey = func.coalesce(Response.survey, "")
    return (
        select(day, survey, Response.score, func.count())
        .where(Response.customer_id.in_(customer_ids))
        .group_by(day, survey, Response.score)
    )


def _move(session: Session, cohort: str, into: set[int], out: set[int]) -> None:
    # membership hook of services.cohort_referrals: the movers' friends' referral figures
    with cohort_referrals.advocates_moving(session, cohort, into | out):
        _move_members(session, cohort, into, out)


def _move_members(session: Session, cohort: str, into: set[int], out: set[int]) -> None:
    segment_id = int(cohort.split(":", 1)[1])  # the worker moves segment members only
    if out:
        _contribute(session, cohort, sorted(out), -1)
        activation_aggregates.segment_moved(session, segment_id, out, -1)
        click_rollup.holders_moved(session, cohort, sorted(out), -1)
        cohort_firsts.moved(session, cohort, sorted(out), -1)
        for chunk in aggregates._chunks(out):
            session.execute(
                delete(CohortMember).where(
                    CohortMember.cohort == cohort, CohortMember.customer_id.in_(chunk)
                )
            )
    if into:
        rows = [{"cohort": cohort, "customer_id": i} for i in sorted(into)]
        for start in range(0, len(rows), CHUNK):
            session.execute(insert(CohortMember), rows[start : start + CHUNK])
        _contribute(session, cohort, sorted(into), +1)
        activation_aggregates.segment_moved(session, segment_id, into, +1)
        click_rollup.holders_moved(session, cohort, sorted(into), +1)
        cohort_firsts.moved(session, cohort, sorted(into), +1)


def _segments(session: Session, *, lock: bool = False) -> list[tuple[int, rules.SegmentFilter]]:
    query = select(Segment.id, Segment.filters).order_by(Segment.id)
    if lock and _postgres(session):  # a segment saved meanwhile waits (and we see it after)
        query = query.with_for_update(read=True)
    return [(i, rules.parse_filters(f)) for i, f in session.execute(query)]


def settle_batch(session: Session, limit: int = SETTLE_BATCH) -> int:
    """The worker's step: judge up to `limit` dirty customers against every segment, move
    their memberships, clear the marks judged. Returns how many were judged."""
    ids = list(
        session.scalars(
            select(CohortDirty.customer_id).order_by(CohortDirty.customer_id).limit(limit)
        )
    )
    if not ids:
        return 0
    # Segments first (FOR SHARE: one being saved finishes first, one saved later waits for
    # us), then the customers (their writers queue behind us), then their marks.
    found = _segments(session, lock=True)
    # with the referred friends of these customers (cohort_referrals' membership hook reads
    # their part): one sorted lock, so a friend's writer and the worker queue, not deadlock
    _lock_customers(session, sorted(set(ids) | set(cohort_referrals.friends_of(session, ids))))
    marks: dict[int, list[int]] = {}
    for chunk in aggregates._chunks(ids):
        for customer_id, n in session.execute(
            select(CohortDirty.customer_id, CohortDirty.marks).where(
                CohortDirty.customer_id.in_(chunk)
            )
        ):
            marks.setdefault(n, []).append(customer_id)
    for segment_id, spec in found:
        cohort = segment_cohort(segment_id)
        now = segments.members_among(session, spec, ids)
        before: set[int] = set()
        for chunk in aggregates._chunks(ids):
            before.update(
                session.scalars(
                    select(CohortMember.customer_id).where(
                        CohortMember.cohort == cohort, CohortMember.customer_id.in_(chunk)
                    )
                )
            )
        _move(session, cohort, now - before, before - now)
    for n, judged in marks.items():  # a mark that grew since it was read stays
        for chunk in aggregates._chunks(judged):
            session.execute(
                delete(CohortDirty).where(
                    CohortDirty.marks == n, CohortDirty.customer_id.in_(chunk)
                )
            )
    return len(ids)


def settle(engine: Engine, *, batches: int = 10) -> int:
    """Judge dirty customers, a batch per transaction, until none is left (or `batches`)."""
    total = 0
    for _ in range(batches):
        with unit_of_work(engine) as session:
            done = settle_batch(session)
        total += done
        if done < SETTLE_BATCH:
            break
    return total


# --- whole recomputes ----------------------------------------------------------------------


def _clear(session: Session, cohort: str | None, *, orders: bool = True) -> None:
    models: tuple[Any, ...] = (CohortMember, CohortResponseDayCount, CohortPromoterDayCount)
    for model in models + ((CohortPaidOrderDay,) if orders else ()):
        query = delete(model)
        if cohort is not None:
            query = query.where(model.cohort == cohort)
        session.execute(query)


def _count_from_members(session: Session, cohort: str | None, *, orders: bool = True) -> None:
    """The counts of a cohort (None: every cohort) from its stored members (tables empty)."""
    day = utc_day(session, Response.submitted_at)
    survey = func.coalesce(Response.survey, "")
    nps = (
        select(CohortMember.cohort, day, survey, Response.score, func.count())
        .join(Response, Response.customer_id == CohortMember.customer_id)
        .group_by(CohortMember.cohort, day, survey, Response.score)
    )
    query, keys = _promoter_query(session)
    promoters = (
        query.add_columns(func.count())
        .join(CohortMember, CohortMember.customer_id == CustomerLatestResponse.customer_id)
        .add_columns(CohortMember.cohort)
        .group_by(CohortMember.cohort, *keys)
    )
    if cohort is not None:
        nps = nps.where(CohortMember.cohort == cohort)
        promoters = promoters.where(CohortMember.cohort == cohort)
    rows = [
        {"cohort": c, "day": aggregates._day(d), "survey": s, "score": n, "responses": int(k)}
        for c, d, s, n, k in session.execute(nps)
    ]
    for start in range(0, len(rows), 2000):
        session.execute(insert(CohortResponseDayCount), rows[start : start + 2000])
    found = [
        {"cohort": c, "day": aggregates._day(d), "persona": p, "value_tier": t,
         "high_influence": bool(h), "customers": int(n)}
        for d, p, t, h, n, c in session.execute(promoters)
    ]  # fmt: skip
    for start in range(0, len(found), 2000):
        session.execute(insert(CohortPromoterDayCount), found[start : start + 2000])
    if orders:
        count_orders_from_members(session, cohort)


def count_orders_from_members(session: Session, cohort: str | None) -> None:
    """cohort_paid_order_days of a cohort (None: every cohort) from its stored members and
    their orders (its rows empty; migration 0019 fills the table with it)."""
    rows = _order_rows(_paid_rows(session, None, cohort, +1, per_cohort=True))
    for start in range(0, len(rows), 2000):
        session.execute(insert(CohortPaidOrderDay), rows[start : start + 2000])


def _fill_segment(session: Session, segment_id: int, spec: rules.SegmentFilter) -> None:
    ids = segments.member_ids(session, spec).subquery()
    session.execute(
        insert(CohortMember).from_select(
            ["cohort", "customer_id"],
            select(literal(segment_cohort(segment_id)), ids.c.id),
        )
    )


def recompute(session: Session, segment_id: int) -> None:
    """A segment created or edited (same transaction, after its row is written): its members
    and counts from its filter, over every customer."""
    session.flush()
    _lock_all(session)
    spec = rules.parse_filters(session.get_one(Segment, segment_id).filters)
    cohort = segment_cohort(segment_id)
    _clear(session, cohort)
    _fill_segment(session, segment_id, spec)
    _count_from_members(session, cohort)
    activation_aggregates.recount_segment(session, segment_id)
    cohort_referrals.recompute(session, cohort)
    click_rollup.recount_cohorts(session, cohort)
    cohort_firsts.recompute(session, cohort)


def forget_segment(session: Session, segment_id: int) -> None:
    """A segment deleted: its cohort goes with it."""
    _clear(session, segment_cohort(segment_id))
    activation_aggregates.forget_segment(session, segment_id)
    cohort_referrals.forget(session, segment_cohort(segment_id))
    cohort_firsts.forget(session, segment_cohort(segment_id))
    click_rollup.recount_cohorts(session, segment_cohort(segment_id))  # no members: no rows


def rebuild(session: Session, *, orders: bool = True) -> dict[str, int]:
    """Every cohort's members and counts from the rows; no customer left dirty. `orders`
    False: not cohort_paid_order_days (migration 0016 runs before 0019 creates it)."""
    session.flush()
    _lock_all(session)
    _clear(session, None, orders=orders)
    session.execute(delete(CohortDirty))
    for segment_id, spec in _segments(session):
        _fill_segment(session, segment_id, spec)
    prefix = literal(PROGRAM_COHORT_PREFIX)
    codes = select(
        (prefix + cast(ReferralCode.program_id, String)).label("cohort"),
        ReferralCode.customer_id.label("customer_id"),
    )
    referees = select(
        (prefix + cast(Referral.program_id, String)).label("cohort"),
        Referral.referee_id.label("customer_id"),
    )
    people = union(codes, referees).subquery()
    session.execute(
        insert(CohortMember).from_select(
            ["cohort", "customer_id"], select(people.c.cohort, people.c.customer_id)
        )
    )
    _count_from_members(session, None, orders=orders)
    return {
        name: session.scalar(select(func.count()).select_from(model)) or 0
        for name, model in (
            ("cohort_members", CohortMember),
            ("cohort_response_day_counts", CohortResponseDayCount),
            ("cohort_promoter_day_counts", CohortPromoterDayCount),
            ("cohort_paid_order_days", CohortPaidOrderDay),
        )
        if orders or model is not CohortPaidOrderDay
    }


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Members:
    """A cohort as the dashboard reads it. `ids`: SELECT of its members' ids now. The stored
    counts of `cohort` are exact once the dirty stored members' contributions (`out`) are
    taken out and the dirty matching customers' (`into`) added."""

    cohort: str
    ids: Any
    into: list[int] = field(default_factory=list)
    out: list[int] = field(default_factory=list)

    def holds(self, column: Any) -> Any:
        """SQL: `column` (a customer id) is a member now. An index probe per row tested
        (cohort_members' key), not a read of every member: for filtering a few rows."""
        m = CohortMember
        held: Any = exists().where(m.cohort == self.cohort, m.customer_id == column)
        if self.out:
            held = and_(held, column.not_in(self.out))
        return or_(held, column.in_(self.into)) if self.into else held


def program_members(session: Session, program_id: int) -> Members:
    cohort = program_cohort(program_id)
    return Members(cohort, select(CohortMember.customer_id).where(CohortMember.cohort == cohort))


def segment_members(session: Session, segment_id: int, spec: rules.SegmentFilter) -> Members | None:
    """The segment's members now (stored, corrected for the dirty customers); None if too
    many are dirty to judge live (the caller evaluates the filter instead)."""
    dirty = list(session.scalars(select(CohortDirty.customer_id).limit(LIVE_LIMIT + 1)))
    if len(dirty) > LIVE_LIMIT:
        return None
    cohort = segment_cohort(segment_id)
    stored = select(CohortMember.customer_id).where(CohortMember.cohort == cohort)
    if not dirty:
        return Members(cohort, stored)
    dirty.sort()
    into = sorted(segments.members_among(session, spec, dirty))
    out = [
        i
        for chunk in aggregates._chunks(dirty)
        for i in session.scalars(stored.where(CohortMember.customer_id.in_(chunk)))
    ]
    kept = stored.where(CohortMember.customer_id.not_in(dirty))
    if not into:
        return Members(cohort, kept, into, out)
    found = union(kept, select(Customer.id).where(Customer.id.in_(into))).subquery()
    return Members(cohort, select(found.c[0]), into, out)


def response_corrections(session: Session, members: Members, start: datetime | None,
                         end: datetime | None) -> Counter[tuple[date, str, int]]:  # fmt: skip
    """(day, survey, score) counts to add to the cohort's stored response counts."""
    found: Counter[tuple[date, str, int]] = Counter()
    for ids, sign in ((members.into, +1), (members.out, -1)):
        for chunk in aggregates._chunks(ids):
            query = _response_query(session, chunk)
            if start is not None:
                query = query.where(Response.submitted_at >= start)
            if end is not None:
                query = query.where(Response.submitted_at < end)
            for d, s, n, k in session.execute(query):
                found[(aggregates._day(d), s, n)] += sign * int(k)
    return found


def order_corrections(session: Session, members: Members, currency: str, start: datetime,
                      end: datetime) -> dict[bool, tuple[int, int, int]]:  # fmt: skip
    """{advocate?: (customers, orders, revenue)} of paid orders in [start, end) to add to
    what the cohort's stored cohort_paid_order_days give."""
    advocate = exists().where(
        ValueGroup.customer_id == Order.customer_id,
        ValueGroup.program_id == ALL_PROGRAMS,
        ValueGroup.role == ADVOCATE,
    )
    flag = case((advocate, literal(1)), else_=literal(0))
    found = {True: [0, 0, 0], False: [0, 0, 0]}
    for ids, sign in ((members.into, +1), (members.out, -1)):
        for chunk in aggregates._chunks(ids):
            rows = session.execute(
                select(
                    flag, func.count(func.distinct(Order.customer_id)), func.count(),
                    func.coalesce(func.sum(Order.amount), 0),
                ).where(
                    Order.customer_id.in_(chunk), Order.status == aggregates.PAID,
                    Order.currency == currency, Order.placed_at >= start, Order.placed_at < end,
                ).group_by(flag)
            )  # fmt: skip
            for a, *row in rows:
                for k in range(3):
                    found[bool(a)][k] += sign * int(row[k] or 0)
    return {a: (c, n, r) for a, (c, n, r) in found.items()}


def promoter_corrections(session: Session, members: Members, start: datetime | None,
                         end: datetime | None) -> Counter[tuple[str, str, bool]]:  # fmt: skip
    """(persona, value tier, high influence) counts to add to the cohort's stored ones."""
    found: Counter[tuple[str, str, bool]] = Counter()
    latest = CustomerLatestResponse
    for ids, sign in ((members.into, +1), (members.out, -1)):
        for chunk in aggregates._chunks(ids):
            query, keys = _promoter_query(session)
            query = query.add_columns(func.count()).where(latest.customer_id.in_(chunk))
            if start is not None:
                query = query.where(latest.submitted_at >= start)
            if end is not None:
                query = query.where(latest.submitted_at < end)
            for _, p, t, h, n in session.execute(query.group_by(*keys)):
                found[(p, t, bool(h))] += sign * int(n)
    return found


def snapshot(session: Session) -> dict[str, Any]:
    """Members and counts as plain data (tests compare maintained with rebuilt)."""
    members: dict[str, set[int]] = {}
    for cohort, customer_id in session.execute(
        select(CohortMember.cohort, CohortMember.customer_id)
    ):
        members.setdefault(cohort, set()).add(customer_id)
    nps = {
        (r.cohort, aggregates._day(r.day), r.survey, r.score): r.responses
        for r in session.scalars(select(CohortResponseDayCount))
        if r.responses
    }
    promoters = {
        (
            r.cohort,
            aggregates._day(r.day),
            r.persona,
            r.value_tier,
            bool(r.high_influence),
        ): r.customers
        for r in session.scalars(select(CohortPromoterDayCount))
        if r.customers
    }
    orders = {
        (r.cohort, r.currency, aggregates._day(r.day), aggregates._day(r.previous_day),
         bool(r.advocate)): (r.orders, r.revenue)
        for r in session.scalars(select(CohortPaidOrderDay))
        if r.orders or r.revenue
    }  # fmt: skip
    return {"members": members, "nps": nps, "promoters": promoters, "orders": orders}
