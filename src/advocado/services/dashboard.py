"""The measurement dashboard's selectors: every figure as a Panel (columns + rows + headline
figures), and every drill-down (the customers or events behind a figure) as a Panel too.

One function per figure feeds the console page, the JSON API and the CSV export, so the three
always agree. All of them only read (callers open store.db.read_only).

How the figures stay correct as events arrive: nothing here is a cached copy that could go
stale. NPS reads `response_day_counts`, which services.records adjusts in the same transaction
as every write to `responses`. Promoters read `promoter_day_counts` and
`customer_latest_responses`, and the 12-month value reads `paid_order_days`: all kept by
services.customer_aggregates in the same transaction as every write of responses, orders and
customer insights (`advocado dashboard rebuild` recomputes them). They answer the unfiltered
figures (promoters: periods ending after the newest response). A segment or program filter
reads its members from services.cohorts (stored members, plus the few customers written
since the worker judged their segments, judged live), and nps and promoters under one
segment or program read that cohort's own per-day counts, kept by the same writes (that
module says how); with both filters, or a period ending before the newest response, they are
computed from the rows of the cohort's members. The 12-month value's groups
(advocates; a program's people and advocates) read services.customer_value's tables, kept
in the same transaction as every order, referral and code write (that module says how):
the figure costs days with no filter, a period, a program or one segment (the cohort's
cohort_paid_order_days: its members' orders split by advocate, kept like its other counts,
see services.cohorts). Its drill-down page reads the advocates' own rows (when few), or walks
the customers by all-time revenue (the group and the segment's or program's members tested
per customer walked) and stops once nobody further can enter; with both a segment and a
program it is computed from the orders. Click figures read services.click_rollup's
aggregates plus the clicks not rolled up yet, in one statement, so a click is in the next
request's figures (that module says why the roll-up neither skips nor doubles a click); a
segment alone reads its own per-day click rows, kept by the roll-up and the membership moves,
corrected live for its dirty customers (cost: days, not its members' codes), and its click
drill pages probe each click's holder when they walk time order.
The referral figures (funnel counts and rejected reasons, referred revenue, rewards cost,
K-factor signups / advocates / time to first referral, top advocates of all time, the plan's
leads / qualified referrals / revenue) read services.referral_aggregates,
kept in the same transaction as every write of referrals, orders, rewards and codes. With a
segment (alone, all time or a period) the funnel, revenue, rewards cost and the plan's
referral goals read the segment's own per-day rows (services.cohort_referrals, kept by the
same writes and by the segment's membership moves, corrected live for the advocates written
since the worker judged them; that module says how); K-factor advocates / time to first
referral read the segment's copy of advocate_firsts (services.cohort_firsts,
kept the same way; cost: as without a filter), and all-time top advocates the per-advocate
rows above, each advocate looked up in the segment's members (cost: advocates, not
referrals). A segment with a program, top advocates of a period, or more dirty customers
than cohorts judges live: from the rows.
The activation funnel, playbook steps, review asks,
UGC and the plan's review/UGC goals and recruits read `activation_counts` (per day, for
everyone, per program's people and per segment's stored members), which
services.activation_aggregates adjusts in the same transaction as every write they count and
every segment membership move (that module lists the writers); under a segment the few
customers written since the worker judged them are corrected live; with a segment and a program
they are computed from the rows. Everything else is computed from the rows at request time, on
covering indexes, so a signup or refund is in the next request's figures.

A drill-down page (`limit` rows, in the list's own order) under a large segment or program
walks the rows in that order and probes each one's membership on the cohort_members key
(`_probed`), so it stops once the page is full; under a small one, and for the whole list
(the CSV), it reads the members' rows (IN). The page is the list's first rows either way.

A new panel (activation funnel per level, reviews, UGC, plan vs actual) is one function here
plus one line in PANELS (and DRILLS for its drill-down).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, literal, select
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain import dashboard as rules
from advocado.domain.dashboard import Filters
from advocado.domain.nps import NpsFigures, category
from advocado.domain.records import FieldError
from advocado.services import (
    audit,
    click_rollup,
    cohort_firsts,
    cohort_referrals,
    cohorts,
    customer_value,
    segments,
)
from advocado.services import dashboard_activation as activation
from advocado.services import referral_aggregates as referral_sums
from advocado.services.nps import day_bounds
from advocado.store.db import as_date, bucket_day, utc_day
from advocado.store.models import (
    AdvocateFirst,
    AdvocateReferralCount,
    AdvocateReferredRevenue,
    Click,
    CohortMember,
    CohortPaidOrderDay,
    CohortPromoterDayCount,
    CohortReferralDayCount,
    CohortReferredRevenueDay,
    CohortResponseDayCount,
    CohortRewardCostDay,
    Customer,
    CustomerInsight,
    CustomerLatestResponse,
    Order,
    PaidOrderDay,
    Program,
    PromoterDayCount,
    Referral,
    ReferralCode,
    ReferralDayCount,
    ReferredRevenueDay,
    Response,
    ResponseDayCount,
    Reward,
    RewardCostDay,
    Setting,
    ValueGroupDay,
)

PAID_CAC_SETTING = "dashboard.paid_cac"
DEFAULT_CURRENCY = "CNY"
DRILL_LIMIT = 200  # rows a drill-down page shows; its CSV has them all
TOP_ADVOCATES = 20
PAID = "paid"


@dataclass
class Panel:
    """A figure or a list: `rows` (dicts keyed by `columns`) and headline `summary` figures."""

    name: str
    columns: list[str]
    rows: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "columns": self.columns,
            "rows": self.rows,
            "summary": self.summary,
        }


class UnknownFigure(LookupError):
    pass


# --- the filter ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    start: datetime | None
    end: datetime | None
    customers: Any  # SELECT of customer ids, or None for all customers
    program_id: int | None
    currency: str
    segmented: bool = False  # a segment narrows `customers` (not just the program's people)
    cohort: cohorts.Members | None = None  # the one segment or program filtered on


def _scope(session: Session, f: Filters) -> _Scope:
    """The filter resolved against the database. FieldError if the segment/program is unknown.
    A segment's or program's members are read from services.cohorts (stored, corrected for
    the customers written since their segments were judged), not by evaluating the filter."""
    start, end = day_bounds(f.start, f.end)
    customers = None
    program_id = None
    program_currency = None
    found_cohort = None
    if f.segment:
        try:
            segment, spec = segments.segment_filter(session, slug=f.segment)
        except segments.SegmentNotFound:
            raise FieldError("segment", f"no segment {f.segment!r} / 没有该分群") from None
        found_cohort = cohorts.segment_members(session, segment.id, spec)
        # Too many customers written since the worker last judged them: the filter itself.
        customers = segments.member_ids(session, spec) if found_cohort is None else found_cohort.ids
    if f.program:
        found = session.execute(
            select(Program.id, Program.currency).where(Program.slug == f.program)
        ).first()
        if found is None:
            raise FieldError("program", f"no program {f.program!r} / 没有该推荐计划")
        program_id, program_currency = found
        people = cohorts.program_members(session, program_id)  # code holders and referees
        if customers is None:
            customers, found_cohort = people.ids, people
        else:  # both: no stored counts for the pair
            customers = people.ids.where(CohortMember.customer_id.in_(customers))
            found_cohort = None
    currency = program_currency or _report_currency(session)
    return _Scope(start, end, customers, program_id, currency, segmented=bool(f.segment),
                  cohort=found_cohort)  # fmt: skip


def _report_currency(session: Session) -> str:
    """The currency money figures are in: the paid CAC's, else the programs' most common."""
    cac = paid_cac(session)
    if cac is not None:
        return str(cac["currency"])
    found = session.scalar(
        select(Program.currency).group_by(Program.currency).order_by(func.count().desc()).limit(1)
    )
    return found or DEFAULT_CURRENCY


def _between(column: Any, scope: _Scope) -> Any:
    conditions = []
    if scope.start is not None:
        conditions.append(column >= scope.start)
    if scope.end is not None:
        conditions.append(column < scope.end)
    return and_(True, *conditions)


def _in_customers(column: Any, scope: _Scope) -> Any:
    return True if scope.customers is None else column.in_(scope.customers)


def _in_days(column: Any, scope: _Scope) -> Any:
    """A UTC day column inside the period (its bounds are whole UTC days)."""
    conditions = []
    if scope.start is not None:
        conditions.append(column >= scope.start.date())
    if scope.end is not None:
        conditions.append(column < scope.end.date())
    return and_(True, *conditions)


def _summed(scope: _Scope) -> bool:
    """Whether services.referral_aggregates answers the referral figures: any period (whole
    days) and program. A segment: `_segment_sums` (services.cohort_referrals)."""
    return not scope.segmented


def _program_key(scope: _Scope) -> int:
    return referral_sums.ALL_PROGRAMS if scope.program_id is None else scope.program_id


def _segment_sums(scope: _Scope) -> cohorts.Members | None:
    """The segment whose per-cohort referral rows (services.cohort_referrals) answer the
    referral figures: a segment alone (with or without a period), its members read from the
    cohort (not the filter evaluated for too many dirty customers)."""
    if scope.segmented and scope.program_id is None and scope.cohort is not None:
        return scope.cohort
    return None


LARGE_COHORT = 20_000  # members from which a drill page probes each row walked (see _probed)


def _many(session: Session, ids: Select[Any]) -> bool:
    """Whether the SELECT has LARGE_COHORT rows or more (counted on its index, stopping there)."""
    found = ids.limit(LARGE_COHORT).subquery()
    return (session.scalar(select(func.count()).select_from(found)) or 0) >= LARGE_COHORT


def _probed(session: Session, scope: _Scope, limit: int | None) -> cohorts.Members | None:
    """The cohort a drill-down page probes per row walked: a page (`limit` rows, in the
    rows' own order) under a large segment or program tests each row walked for membership
    (Members.holds: an index probe), so it stops once the page is full instead of gathering
    every member first. None: a small cohort, a segment with a program, or the whole list
    (CSV) reads the rows of the members (IN). Same rows either way."""
    if limit is None or scope.customers is None or scope.cohort is None:
        return None
    stored = select(CohortMember.customer_id).where(CohortMember.cohort == scope.cohort.cohort)
    return scope.cohort if _many(session, stored) else None


def _in_page(column: Any, scope: _Scope, probed: cohorts.Members | None) -> Any:
    """`column` (a customer id) is one of the scope's customers: probed per row, or IN."""
    return _in_customers(column, scope) if probed is None else probed.holds(column)


def _day_inside(day: date, scope: _Scope) -> bool:
    return (scope.start is None or day >= scope.start.date()) and (
        scope.end is None or day < scope.end.date()
    )


def _cohort_rows(session: Session, members: cohorts.Members, name: str, scope: _Scope,
                 *where: Any) -> list[tuple[tuple[Any, ...], list[int]]]:  # fmt: skip
    """(key without cohort and day, counts) of a cohort_referrals table over the period: the
    stored rows of the cohort summed over its days, plus the corrections for its dirty
    customers."""
    table, keys, counts = cohort_referrals.TABLES[name]
    names = [k for k in keys[1:] if k != "day"]
    columns = [table.c[k] for k in names]
    query = (
        select(*columns, *(func.sum(table.c[c]) for c in counts))
        .where(table.c.cohort == members.cohort, _in_days(table.c.day, scope), *where)
        .group_by(*columns)
    )
    found: dict[tuple[Any, ...], list[int]] = {}
    for row in session.execute(query):
        found[tuple(row[: len(columns)])] = [int(v or 0) for v in row[len(columns) :]]
    if members.into or members.out:
        day = list(keys[1:]).index("day")
        for key, values in cohort_referrals.corrections(session, members)[name].items():
            if _day_inside(key[day], scope):
                kept = key[:day] + key[day + 1 :]
                old = found.setdefault(kept, [0] * len(values))
                found[kept] = [a + b for a, b in zip(old, values, strict=True)]
    return list(found.items())


def _referral_days(scope: _Scope, basis: str) -> Any:
    """referral_day_counts rows of the period and program (counts add up over programs)."""
    t = ReferralDayCount
    program = True if scope.program_id is None else t.program_id == scope.program_id
    return and_(t.basis == basis, _in_days(t.day, scope), program)


def referred_revenue(session: Session, scope: _Scope) -> int:
    """Paid orders in the period, in the scope's currency, of friends with a referral (in the
    program) that is not rejected; a friend counts once."""
    members = _segment_sums(scope)
    if members is not None:
        t = CohortReferredRevenueDay
        rows = _cohort_rows(session, members, "cohort_referred_revenue_days", scope,
                            t.currency == scope.currency)  # fmt: skip
        return sum(values[1] for key, values in rows if key[0] == scope.currency)
    if not _summed(scope):
        found = session.scalar(select(func.sum(Order.amount)).where(_referred_orders_where(scope)))
        return int(found or 0)
    t = ReferredRevenueDay
    found = session.scalar(
        select(func.sum(t.revenue)).where(
            t.program_id == _program_key(scope),
            t.currency == scope.currency,
            _in_days(t.day, scope),
        )
    )
    return int(found or 0)


def referral_signups(session: Session, scope: _Scope, *, leads: bool = False) -> int:
    """Referrals made in the period (leads: those not rejected)."""
    members = _segment_sums(scope)
    if members is not None:
        rows = _cohort_rows(session, members, "cohort_referral_day_counts", scope,
                            CohortReferralDayCount.basis == referral_sums.SIGNED_UP)  # fmt: skip
        return sum(
            values[0]
            for (basis, status, _, _), values in rows
            if basis == referral_sums.SIGNED_UP and not (leads and status == "rejected")
        )
    if not _summed(scope):
        where = _referrals_where(scope)
        if leads:
            where = and_(where, Referral.status != "rejected")
        return int(session.scalar(select(func.count(Referral.id)).where(where)) or 0)
    t = ReferralDayCount
    where = _referral_days(scope, referral_sums.SIGNED_UP)
    if leads:
        where = and_(where, t.status != "rejected")
    return int(session.scalar(select(func.sum(t.referrals)).where(where)) or 0)


def referrals_qualified_in(session: Session, scope: _Scope) -> int:
    """Referrals qualified in the period (qualified_at in it) and qualified or rewarded now."""
    statuses = referral_sums.QUALIFIED_STATUSES
    members = _segment_sums(scope)
    if members is not None:
        rows = _cohort_rows(session, members, "cohort_referral_day_counts", scope,
                            CohortReferralDayCount.basis == referral_sums.QUALIFIED)  # fmt: skip
        return sum(
            values[0]
            for (basis, status, _, _), values in rows
            if basis == referral_sums.QUALIFIED and status in statuses
        )
    if not _summed(scope):
        where = and_(
            _between(Referral.qualified_at, scope),
            Referral.status.in_(statuses),
            True if scope.program_id is None else Referral.program_id == scope.program_id,
            _in_customers(Referral.advocate_id, scope),
        )
        return int(session.scalar(select(func.count(Referral.id)).where(where)) or 0)
    t = ReferralDayCount
    where = and_(_referral_days(scope, referral_sums.QUALIFIED), t.status.in_(statuses))
    return int(session.scalar(select(func.sum(t.referrals)).where(where)) or 0)


# --- settings the dashboard reads: the paid-channel CAC -----------------------------------


def paid_cac(session: Session) -> dict[str, Any] | None:
    """{"amount": minor units, "currency": "CNY"} as the marketer entered it, or None."""
    row = session.get(Setting, PAID_CAC_SETTING)
    return None if row is None else json.loads(row.value)


def set_paid_cac(session: Session, *, amount: int, currency: str, actor: str) -> dict[str, Any]:
    """Store what one customer costs through paid channels (minor units), audited."""
    if amount < 0:
        raise FieldError("amount", "must not be negative / 不能为负数")
    value = {"amount": int(amount), "currency": currency}
    row = session.get(Setting, PAID_CAC_SETTING)
    before = None if row is None else json.loads(row.value)
    if row is None:
        session.add(Setting(key=PAID_CAC_SETTING, value=json.dumps(value)))
    else:
        row.value = json.dumps(value)
    audit.record(
        session,
        actor=actor,
        entity="setting",
        entity_id=PAID_CAC_SETTING,
        action="update",
        before=before,
        after=value,
    )
    return value


# --- NPS over time --------------------------------------------------------------------------


def nps_over_time(session: Session, f: Filters) -> Panel:
    """NPS with the promoter/passive/detractor mix per week or month and survey. Without a
    segment/program it reads the per-day counts (cost: days, not responses)."""
    scope = _scope(session, f)
    corrections: dict[tuple[date, str, int], int] = {}
    if scope.customers is None:
        t = ResponseDayCount
        period = bucket_day(session, t.day, f.bucket)
        query = select(period, t.survey, t.score, func.sum(t.responses)).group_by(
            period, t.survey, t.score
        )
        if f.start:
            query = query.where(t.day >= f.start)
        if f.end:
            query = query.where(t.day <= f.end)
    elif scope.cohort is not None:
        # One segment or program: its per-day counts (cost: days), corrected for the few
        # customers written since their segments were judged (services.cohorts).
        c = CohortResponseDayCount
        period = bucket_day(session, c.day, f.bucket)
        query = (
            select(period, c.survey, c.score, func.sum(c.responses))
            .where(c.cohort == scope.cohort.cohort)
            .group_by(period, c.survey, c.score)
        )
        if f.start:
            query = query.where(c.day >= f.start)
        if f.end:
            query = query.where(c.day <= f.end)
        corrections = cohorts.response_corrections(session, scope.cohort, scope.start, scope.end)
    else:
        period = bucket_day(session, utc_day(session, Response.submitted_at), f.bucket)
        survey = func.coalesce(Response.survey, "")
        query = (
            select(period, survey, Response.score, func.count())
            .where(
                _between(Response.submitted_at, scope), _in_customers(Response.customer_id, scope)
            )
            .group_by(period, survey, Response.score)
        )
    counts: dict[tuple[date, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[int, int] = defaultdict(int)
    # rows are per bucket (bucketed in SQL); the few corrections per day: bucket_start is
    # the same rule and leaves a bucket's first day as it is
    found = list(session.execute(query))
    found += [(d, s, score, n) for (d, s, score), n in corrections.items() if n]
    for day_value, survey_name, score, n in found:
        period = rules.bucket_start(as_date(day_value), f.bucket)
        counts[(period, survey_name or "")][score] += int(n)
        totals[score] += int(n)
    rows = []
    for (period, survey_name), scores in sorted(counts.items()):
        if not any(scores.values()):  # all taken out by a correction: no responses there
            continue
        figures = NpsFigures.from_score_counts(scores)
        rows.append({"period": period.isoformat(), "survey": survey_name, **figures.as_dict()})
    overall = NpsFigures.from_score_counts(totals).as_dict()
    columns = ["period", "survey", "promoters", "passives", "detractors", "responses", "nps"]
    return Panel("nps", columns, rows, {"overall": overall, "bucket": f.bucket})


def _period_end(period: date, bucket: str) -> date:
    if bucket == "month":
        return (period.replace(day=28) + timedelta(days=4)).replace(day=1)
    return period + timedelta(days=7)


_CATEGORY_BOUNDS = {"promoter": (9, 10), "passive": (7, 8), "detractor": (0, 6)}


def drill_nps(session: Session, f: Filters, key: Mapping[str, str], limit: int | None) -> Panel:
    """The responses behind a point: ?period=&survey=&category= (each optional)."""
    scope = _scope(session, f)
    query = (
        select(
            Response.id,
            Response.submitted_at,
            Response.survey,
            Response.score,
            Response.persona,
            Response.comment,
            Customer.external_id,
            Customer.name,
        )
        .outerjoin(Customer, Customer.id == Response.customer_id)
        .where(
            _between(Response.submitted_at, scope),
            _in_page(Response.customer_id, scope, _probed(session, scope, limit)),
        )
        .order_by(Response.submitted_at, Response.id)
    )
    if key.get("period"):
        period = _key_date(key["period"])
        low = datetime.combine(period, time(), UTC)
        high = datetime.combine(_period_end(period, f.bucket), time(), UTC)
        query = query.where(Response.submitted_at >= low, Response.submitted_at < high)
    if "survey" in key:
        survey = key["survey"]
        query = query.where(
            Response.survey.is_(None) | (Response.survey == "")
            if survey == ""
            else Response.survey == survey
        )
    if key.get("category"):
        if key["category"] not in _CATEGORY_BOUNDS:
            raise FieldError("category", f"{key['category']!r}: promoter, passive or detractor")
        query = query.where(Response.score.between(*_CATEGORY_BOUNDS[key["category"]]))
    if limit is not None:
        query = query.limit(limit)
    rows = [
        {
            "response_id": r.id,
            "submitted_at": r.submitted_at.isoformat(),
            "survey": r.survey or "",
            "score": r.score,
            "category": str(category(r.score)),
            "persona": r.persona or "",
            "customer": r.external_id or "",
            "name": r.name or "",
            "comment": r.comment or "",
        }
        for r in session.execute(query)
    ]
    columns = [
        "response_id",
        "submitted_at",
        "survey",
        "score",
        "category",
        "persona",
        "customer",
        "name",
        "comment",
    ]
    return Panel("nps", columns, rows)


def _key_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FieldError("period", f"{value!r} is not a date / 不是日期") from None


# --- promoters by persona and value tier ----------------------------------------------------


def _latest_covers(session: Session, scope: _Scope) -> bool:
    """Whether each customer's latest response in the period is their latest of all (the
    period runs past the newest response), so customer_latest_responses answers it."""
    if scope.end is None:
        return True
    newest = session.scalar(select(func.max(Response.submitted_at)))
    return newest is None or newest < scope.end


def _unindexed(session: Session, column: Any) -> Any:
    """The column's value, but on SQLite not read through an index (`coalesce(c, c)`), so
    the planner walks the table in the order the query asks for and tests it per row.
    PostgreSQL weighs the walk against the index with its statistics (which a coalesce
    would blind)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    return column if postgres else func.coalesce(column, column)


def _latest_in_period(session: Session, scope: _Scope, *, walk: bool = False,
                      probed: cohorts.Members | None = None) -> Any:  # fmt: skip
    """Each customer's latest response in the period (subquery: customer_id, score, persona).
    `walk`: the period tested per row (see _promoters); `probed`: the scope's customers
    tested per row (see _probed)."""
    if _latest_covers(session, scope):
        latest = CustomerLatestResponse
        moment = _unindexed(session, latest.submitted_at) if walk else latest.submitted_at
        return (
            select(latest.customer_id, latest.score, latest.persona)
            .where(_between(moment, scope), _in_page(latest.customer_id, scope, probed))
            .subquery("latest")
        )
    rank = func.row_number().over(
        partition_by=Response.customer_id,
        order_by=(Response.submitted_at.desc(), Response.id.desc()),
    )
    ranked = (
        select(Response.customer_id, Response.score, Response.persona, rank.label("rank"))
        .where(
            Response.customer_id.is_not(None),
            _between(Response.submitted_at, scope),
            _in_customers(Response.customer_id, scope),
        )
        .subquery("ranked")
    )
    return select(ranked).where(ranked.c.rank == 1).subquery("latest")


def _promoters(session: Session, scope: _Scope, *, walk: bool = False,
               probed: cohorts.Members | None = None) -> Select[Any]:  # fmt: skip
    """The promoters (customer_id, persona, value_tier, high_influence). `walk`: for a page
    in customer order: neither the score nor the period is read through an index, so the
    latest responses are walked by customer and the page stops when full, not every
    promoter gathered and sorted."""
    latest = _latest_in_period(session, scope, walk=walk, probed=probed)
    persona = func.coalesce(latest.c.persona, "unknown")
    tier = func.coalesce(CustomerInsight.value_tier, "unknown")
    high = func.coalesce(CustomerInsight.high_influence, False)
    score = _unindexed(session, latest.c.score) if walk else latest.c.score
    return (
        select(
            latest.c.customer_id,
            persona.label("persona"),
            tier.label("value_tier"),
            high.label("high_influence"),
            latest.c.persona.label("stored_persona"),
            CustomerInsight.value_tier.label("stored_tier"),
        )
        .select_from(latest)
        .outerjoin(CustomerInsight, CustomerInsight.customer_id == latest.c.customer_id)
        .where(score >= 9)
    )


def promoters(session: Session, f: Filters) -> Panel:
    """Customers whose latest response in the period is a promoter's (9-10), counted by the
    persona of that response (emotional / rational / neutral), high influence (overlaps the
    personas), and value tier (RFM, see services.insights)."""
    scope = _scope(session, f)
    query: Select[Any]
    corrections: dict[tuple[str, str, bool], int] = {}
    if scope.customers is None and _latest_covers(session, scope):
        # Everyone, over a period up to now: the per-day counts (cost: days, not customers).
        t = PromoterDayCount
        query = select(t.persona, t.value_tier, t.high_influence, func.sum(t.customers))
        if f.start:
            query = query.where(t.day >= f.start)
        if f.end:
            query = query.where(t.day <= f.end)
        query = query.group_by(t.persona, t.value_tier, t.high_influence)
    elif scope.cohort is not None and _latest_covers(session, scope):
        # One segment or program: its per-day counts, corrected as in nps_over_time.
        c = CohortPromoterDayCount
        query = select(c.persona, c.value_tier, c.high_influence, func.sum(c.customers)).where(
            c.cohort == scope.cohort.cohort
        )
        if f.start:
            query = query.where(c.day >= f.start)
        if f.end:
            query = query.where(c.day <= f.end)
        query = query.group_by(c.persona, c.value_tier, c.high_influence)
        corrections = cohorts.promoter_corrections(session, scope.cohort, scope.start, scope.end)
    else:
        found = _promoters(session, scope).subquery()
        # One pass over the promoters, grouped by everything at once; counted per dimension.
        query = select(
            found.c.persona, found.c.value_tier, found.c.high_influence, func.count()
        ).group_by(found.c.persona, found.c.value_tier, found.c.high_influence)
    by: dict[tuple[str, str], int] = defaultdict(int)
    total = 0
    found = list(session.execute(query))
    if corrections:
        found += [(persona, tier, high, n) for (persona, tier, high), n in corrections.items()]
    for persona, tier, high, n in found:
        n = int(n)
        by[("persona", persona)] += n
        by[("value_tier", tier)] += n
        if high:
            by[("influence", "high_influence")] += n
        total += n
    by = defaultdict(int, {key: n for key, n in by.items() if n})  # corrections may empty one
    by.setdefault(("influence", "high_influence"), 0)
    order = {"persona": 0, "value_tier": 1, "influence": 2}
    rows = [
        {"dimension": dimension, "value": value, "promoters": int(n)}
        for (dimension, value), n in sorted(by.items(), key=lambda i: (order[i[0][0]], i[0][1]))
    ]
    return Panel("promoters", ["dimension", "value", "promoters"], rows, {"promoters": total})


def _many_promoters(session: Session, scope: _Scope) -> bool:
    """Whether the period holds a fiftieth of all promoters or more, so a page walked in
    customer order is found in a few thousand rows (promoter_day_counts: cost days)."""
    t = PromoterDayCount
    inside = func.sum(case((_in_days(t.day, scope), t.customers), else_=0))
    period, everyone = session.execute(select(inside, func.sum(t.customers))).one()
    return 50 * int(period or 0) >= int(everyone or 0)


def drill_promoters(
    session: Session, f: Filters, key: Mapping[str, str], limit: int | None
) -> Panel:
    """The promoters behind a bar: ?dimension=persona|value_tier|influence&value=..."""
    scope = _scope(session, f)
    # A page over many promoters: walk the latest responses in customer order (the scope's
    # members probed) and stop when full; few (a short period): read them and sort.
    walk = limit is not None and _many_promoters(session, scope)
    found = _promoters(session, scope, walk=walk, probed=_probed(session, scope, limit))
    found = found.subquery()
    query = (
        select(
            Customer.external_id,
            Customer.name,
            Customer.email,
            found.c.persona,
            found.c.value_tier,
            found.c.high_influence,
        )
        .join(found, found.c.customer_id == Customer.id)
        .order_by(found.c.customer_id)  # = Customer.id, but the walked table's order
    )
    dimension, value = key.get("dimension", ""), key.get("value", "")

    def equals(shown: Any, stored: Any) -> Any:
        # A known value on the stored column, not its "unknown" default: PostgreSQL then
        # knows from its statistics how many match (a walk for a common one).
        return shown == value if value == "unknown" else stored == value

    if dimension == "persona" and value:
        query = query.where(equals(found.c.persona, found.c.stored_persona))
    elif dimension == "value_tier" and value:
        query = query.where(equals(found.c.value_tier, found.c.stored_tier))
    elif dimension == "influence":
        query = query.where(found.c.high_influence.is_(True))
    elif dimension:
        raise FieldError("dimension", f"{dimension!r}: persona, value_tier or influence")
    if limit is not None:
        query = query.limit(limit)
    rows = [
        {
            "customer": r.external_id,
            "name": r.name or "",
            "email": r.email or "",
            "persona": r.persona,
            "value_tier": r.value_tier,
            "high_influence": bool(r.high_influence),
        }
        for r in session.execute(query)
    ]
    columns = ["customer", "name", "email", "persona", "value_tier", "high_influence"]
    return Panel("promoters", columns, rows)


# --- the referral funnel, its money, K-factor ------------------------------------------------


def _codes(scope: _Scope, probed: cohorts.Members | None = None) -> Any:
    """Referral codes in scope (program, and advocates in the segment); None: all codes.
    `probed`: each code's holder tested (see _probed), not every member gathered."""
    if scope.program_id is None and scope.customers is None:
        return None
    query = select(ReferralCode.id)
    if scope.program_id is not None:
        query = query.where(ReferralCode.program_id == scope.program_id)
    if scope.customers is not None:
        query = query.where(_in_page(ReferralCode.customer_id, scope, probed))
    return query


def _in_codes(column: Any, scope: _Scope) -> Any:
    codes = _codes(scope)
    return True if codes is None else column.in_(codes)


def _click_counts(session: Session, scope: _Scope) -> tuple[int, int]:
    """(all clicks, unique clicks) from the click aggregates and the clicks not rolled up yet
    (services.click_rollup, whose doc defines unique clicks and says why they stay exact).
    A segment alone: its own per-day sums (cost: days, not its members' codes)."""
    members = _segment_sums(scope)
    if members is not None:
        return click_rollup.cohort_click_counts(
            session, start=scope.start, end=scope.end, members=members
        )
    return click_rollup.click_counts(
        session,
        start=scope.start,
        end=scope.end,
        program_id=scope.program_id,
        codes=_click_codes(scope),
        by_program=not scope.segmented,
    )


def _click_codes(scope: _Scope, probed: cohorts.Members | None = None) -> Any:
    """The codes in scope, as `_codes`; without a segment simply the program's codes (every
    code holder is one of the program's people), which the per-program counts answer."""
    if scope.segmented:
        return _codes(scope, probed)
    if scope.program_id is not None:
        return select(ReferralCode.id).where(ReferralCode.program_id == scope.program_id)
    return None


DENSE_CLICKS = 20_000  # in-scope clicks above which a drill page walks the time index


def _walk_time(session: Session, scope: _Scope, limit: int | None) -> bool:
    """Whether a page of a click drill-down should read clicks in time order and skip those
    out of scope (many in scope: a page is found quickly) rather than read the scope's codes'
    clicks and sort them (few in scope). Decided on the aggregates' count."""
    codes = _click_codes(scope)
    if limit is None or codes is None:
        return False
    members = _segment_sums(scope)
    found = click_rollup.rolled_up_clicks(
        session,
        start=scope.start,
        end=scope.end,
        program_id=scope.program_id,
        codes=codes,
        by_program=not scope.segmented,
        cohort=None if members is None else members.cohort,  # a segment's rows: days
    )
    return found >= DENSE_CLICKS


def _held(scope: _Scope) -> Callable[[Any], Any] | None:
    """A segment alone: a per-row test that a code's holder is a member (an index probe per
    click walked or in the live tail), not every member's codes gathered first."""
    members = _segment_sums(scope)
    return None if members is None else click_rollup.held_by(members)


_CLICK_COLUMNS = ["click_id", "clicked_at", "code", "advocate", "visitor", "bot", "referrer"]


def _drill_first_visits(session: Session, scope: _Scope, limit: int | None,
                        probed: cohorts.Members | None = None) -> Panel:  # fmt: skip
    """The clicks unique clicks count: each visitor's first human click on a link, when it
    falls in the period (services.click_rollup.first_visits, which agrees with the figure)."""
    base = (
        select(
            Click.id.label("click_id"),
            Click.clicked_at,
            ReferralCode.code,
            Customer.external_id.label("advocate"),
            Click.fingerprint.label("visitor"),
            Click.is_bot.label("bot"),
            Click.referrer,
        )
        .select_from(Click)
        .join(ReferralCode, ReferralCode.id == Click.code_id)
        .join(Customer, Customer.id == ReferralCode.customer_id)
    )
    found = click_rollup.first_visits(
        session,
        base,
        start=scope.start,
        end=scope.end,
        codes=_click_codes(scope, probed),
        limit=limit,
        walk_time=probed is not None or _walk_time(session, scope, limit),
        held=_held(scope),
    )
    rows = [_plain_row(r._mapping, _CLICK_COLUMNS) for r in found]
    return Panel("referrals", _CLICK_COLUMNS, rows)


def _referrals_where(scope: _Scope, probed: cohorts.Members | None = None) -> Any:
    """Referrals signed up in the period, of the program, by advocates in scope (`probed`:
    tested per row, see _probed)."""
    conditions = [_between(Referral.signed_up_at, scope)]
    if scope.program_id is not None:
        conditions.append(Referral.program_id == scope.program_id)
    if scope.customers is not None:
        conditions.append(_in_page(Referral.advocate_id, scope, probed))
    return and_(*conditions)


def _rewards_where(scope: _Scope, probed: cohorts.Members | None = None) -> Any:
    conditions = [
        _between(Reward.created_at, scope),
        Reward.reversed_at.is_(None),
        Reward.kind.in_(("credit", "coupon")),
        Reward.currency == scope.currency,
    ]
    if scope.program_id is not None:
        conditions.append(Reward.program_id == scope.program_id)
    if probed is not None:  # the reward's referral looked up per reward walked
        conditions.append(
            exists().where(Referral.id == Reward.referral_id, probed.holds(Referral.advocate_id))
        )
    elif scope.customers is not None:
        referral_ids = select(Referral.id).where(Referral.advocate_id.in_(scope.customers))
        conditions.append(Reward.referral_id.in_(referral_ids))
    return and_(*conditions)


def _referred_orders_where(scope: _Scope, *, walk: bool = False,
                           probed: cohorts.Members | None = None) -> Any:  # fmt: skip
    """Paid orders in the period and currency of friends with a referral not rejected (of
    the program, by an advocate in scope). `walk`: each order's friend looked up per order
    walked (a drill page in time order), not every friend gathered first."""
    referred = [Referral.status != "rejected"]
    if scope.program_id is not None:
        referred.append(Referral.program_id == scope.program_id)
    if scope.customers is not None:
        referred.append(_in_page(Referral.advocate_id, scope, probed))
    if walk:
        friend = exists().where(Referral.referee_id == Order.customer_id, *referred)
    else:
        friend = Order.customer_id.in_(select(Referral.referee_id).where(*referred))
    return and_(
        friend,
        Order.status == PAID,
        Order.currency == scope.currency,
        _between(Order.placed_at, scope),
    )


def _funnel_counts(
    session: Session, scope: _Scope
) -> tuple[dict[str, int], int, list[dict[str, Any]]]:
    """Referrals made in the period per status; those qualified (qualified_at set, status
    qualified or rewarded); the rejected ones per reason, most first."""
    members = _segment_sums(scope)
    if members is not None:
        return _cohort_funnel_counts(session, members, scope)
    if _summed(scope):
        t = ReferralDayCount
        where = _referral_days(scope, referral_sums.SIGNED_UP)
        n = func.sum(t.referrals)
        status, reason, has_qualified_at = t.status, t.reason, t.qualified.is_(True)
    else:
        t = Referral
        where = _referrals_where(scope)
        n = func.count()
        status, reason, has_qualified_at = t.status, t.reason, t.qualified_at.is_not(None)
    statuses = {
        str(k): int(v or 0)
        for k, v in session.execute(select(status, n).where(where).group_by(status))
    }
    qualified = session.scalar(
        select(n).where(where, has_qualified_at, status.in_(referral_sums.QUALIFIED_STATUSES))
    )
    reasons = [
        {"reason": r or "", "referrals": int(count)}
        for r, count in session.execute(
            select(reason, n)
            .where(where, status == "rejected")
            .group_by(reason)
            .order_by(n.desc(), reason)
        )
    ]
    return statuses, int(qualified or 0), reasons


def _cohort_funnel_counts(
    session: Session, members: cohorts.Members, scope: _Scope
) -> tuple[dict[str, int], int, list[dict[str, Any]]]:
    """_funnel_counts under a segment: the cohort's referral rows of the period."""
    rows = _cohort_rows(session, members, "cohort_referral_day_counts", scope,
                        CohortReferralDayCount.basis == referral_sums.SIGNED_UP)  # fmt: skip
    statuses: dict[str, int] = defaultdict(int)
    by_reason: dict[str, int] = defaultdict(int)
    qualified = 0
    for (basis, status, reason, has_qualified_at), values in rows:
        if basis != referral_sums.SIGNED_UP:
            continue
        statuses[status] += values[0]
        if has_qualified_at and status in referral_sums.QUALIFIED_STATUSES:
            qualified += values[0]
        if status == "rejected":
            by_reason[reason or ""] += values[0]
    reasons = [
        {"reason": r, "referrals": n}
        for r, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        if n
    ]
    return {k: v for k, v in statuses.items() if v}, qualified, reasons


def _rewards_cost(session: Session, scope: _Scope) -> int:
    """Face value of the live credit and coupons issued in the period, in the currency."""
    members = _segment_sums(scope)
    if members is not None:
        t = CohortRewardCostDay
        kinds = ("credit", "coupon")
        where = (t.currency == scope.currency, t.kind.in_(kinds))
        rows = _cohort_rows(session, members, "cohort_reward_cost_days", scope, *where)
        return sum(
            values[1]
            for (currency, kind), values in rows
            if currency == scope.currency and kind in kinds
        )
    if not _summed(scope):
        found = session.scalar(select(func.sum(Reward.amount)).where(_rewards_where(scope)))
        return int(found or 0)
    t = RewardCostDay
    found = session.scalar(
        select(func.sum(t.amount)).where(
            t.kind.in_(("credit", "coupon")),
            t.currency == scope.currency,
            _in_days(t.day, scope),
            True if scope.program_id is None else t.program_id == scope.program_id,
        )
    )
    return int(found or 0)


FUNNEL = ("clicks", "unique_clicks", "signups", "qualified", "rewarded", "rejected", "in_review")


def referral_funnel(session: Session, f: Filters) -> Panel:
    """clicks (all, bots included) -> unique (visitors whose first human click on a link
    falls in the period, per link: services.click_rollup) ->
    signups (referrals made in the period) -> qualified -> rewarded, and rejected (with the
    reasons) and in review; revenue from referred customers' paid orders in the period,
    rewards cost (face value of live credit and coupons issued in the period; points cost no
    money), cost per acquired (qualified) customer beside the paid-channel CAC, and ROI."""
    scope = _scope(session, f)
    raw, unique = _click_counts(session, scope)
    statuses, qualified, reasons = _funnel_counts(session, scope)
    counts = {
        "clicks": raw,
        "unique_clicks": unique,
        "signups": sum(statuses.values()),
        "qualified": qualified,
        "rewarded": statuses.get("rewarded", 0),
        "rejected": statuses.get("rejected", 0),
        "in_review": statuses.get("review", 0),
    }
    rows = [{"stage": stage, "count": int(counts[stage])} for stage in FUNNEL]
    revenue = referred_revenue(session, scope)
    cost = _rewards_cost(session, scope)
    cac = paid_cac(session)
    cac_amount = cac["amount"] if cac and cac["currency"] == scope.currency else None
    money = rules.acquisition(
        revenue=int(revenue or 0), cost=int(cost or 0), acquired=qualified, paid_cac=cac_amount
    )
    summary = {
        "currency": scope.currency,
        "revenue": int(revenue or 0),
        "rewards_cost": int(cost or 0),
        "acquired": qualified,
        **money,
        "rejected_reasons": reasons,
    }
    return Panel("referrals", ["stage", "count"], rows, summary)


def drill_referrals(
    session: Session, f: Filters, key: Mapping[str, str], limit: int | None
) -> Panel:
    """?stage= one of the funnel's stages (clicks: the click events; signups..in_review: the
    referrals), or revenue (the referred customers' orders) or cost (the rewards)."""
    scope = _scope(session, f)
    stage = key.get("stage") or "signups"
    query: Select[Any]
    probed = _probed(session, scope, limit)
    if stage == "unique_clicks":
        return _drill_first_visits(session, scope, limit, probed)
    if stage == "clicks":
        codes = _click_codes(scope, probed)
        clicks = select(Click).where(_between(Click.clicked_at, scope))
        if codes is not None:
            walk = probed is not None or _walk_time(session, scope, limit)
            held = _held(scope)
            if walk and held is not None:
                clicks = clicks.where(held(Click.code_id))
            else:
                code = Click.code_id + 0 if walk else Click.code_id
                clicks = clicks.where(code.in_(codes))
        sub = clicks.subquery()
        query = (
            select(
                sub.c.id.label("click_id"),
                sub.c.clicked_at,
                ReferralCode.code,
                Customer.external_id.label("advocate"),
                sub.c.fingerprint.label("visitor"),
                sub.c.is_bot.label("bot"),
                sub.c.referrer,
            )
            .join(ReferralCode, ReferralCode.id == sub.c.code_id)
            .join(Customer, Customer.id == ReferralCode.customer_id)
            # ix_clicks_dashboard's order: a page is read off the index, not sorted
            .order_by(sub.c.clicked_at, sub.c.is_bot, sub.c.fingerprint, sub.c.id)
        )
    elif stage == "revenue":
        query = (
            select(
                Order.external_id.label("order"),
                Order.placed_at,
                Customer.external_id.label("customer"),
                Order.amount,
                Order.currency,
            )
            .join(Customer, Customer.id == Order.customer_id)
            .where(
                _referred_orders_where(
                    scope,
                    walk=limit is not None and (scope.customers is None or probed is not None),
                    probed=probed,
                )
            )
            .order_by(Order.placed_at, Order.id)
        )
    elif stage == "cost":
        query = (
            select(
                Reward.id.label("reward_id"),
                Reward.created_at,
                Customer.external_id.label("beneficiary"),
                Reward.rule,
                Reward.role,
                Reward.kind,
                Reward.amount,
                Reward.currency,
            )
            .join(Customer, Customer.id == Reward.beneficiary_id)
            .where(_rewards_where(scope, probed))
            .order_by(Reward.created_at, Reward.id)
        )
    elif stage in FUNNEL:
        advocate, friend = Customer.__table__.alias("advocate"), Customer.__table__.alias("friend")
        query = (
            select(
                Referral.id.label("referral_id"),
                Program.slug.label("program"),
                advocate.c.external_id.label("advocate"),
                friend.c.external_id.label("friend"),
                Referral.status,
                Referral.reason,
                Referral.signed_up_at,
                Referral.qualified_at,
            )
            .join(Program, Program.id == Referral.program_id)
            .join(advocate, advocate.c.id == Referral.advocate_id)
            .join(friend, friend.c.id == Referral.referee_id)
            .where(_referrals_where(scope, probed))
            .order_by(Referral.signed_up_at, Referral.id)
        )
        status = {
            "rewarded": ["rewarded"],
            "rejected": ["rejected"],
            "in_review": ["review"],
            "qualified": ["qualified", "rewarded"],
        }.get(stage)
        if status:
            query = query.where(Referral.status.in_(status))
        if stage == "qualified":
            query = query.where(Referral.qualified_at.is_not(None))
    else:
        choices = ", ".join((*FUNNEL, "revenue", "cost"))
        raise FieldError("stage", f"{stage!r} is not one of {choices}")
    if limit is not None:
        query = query.limit(limit)
    result = session.execute(query)
    columns = list(result.keys())
    return Panel("referrals", columns, [_plain_row(r._mapping, columns) for r in result])


def _plain_row(row: Mapping[str, Any], columns: list[str]) -> dict[str, Any]:
    """A row as JSON and CSV take it: times as ISO 8601, flags as true/false, None as ''."""
    found = {}
    for column in columns:
        value = row[column]
        if isinstance(value, datetime):
            value = value.isoformat()
        elif value is None:
            value = ""
        found[column] = value
    return found


def _first_referrals(session: Session, scope: _Scope) -> Select[Any]:
    """Per advocate (code holder in scope): their code's creation and their first referral."""
    first = select(
        Referral.advocate_id.label("advocate_id"), func.min(Referral.signed_up_at).label("first_at")
    ).group_by(Referral.advocate_id)
    if scope.program_id is not None:
        first = first.where(Referral.program_id == scope.program_id)
    firsts = first.subquery()
    codes = (
        select(ReferralCode.customer_id, func.min(ReferralCode.created_at).label("code_at"))
        .where(_in_codes(ReferralCode.id, scope))
        .group_by(ReferralCode.customer_id)
        .subquery()
    )
    return (
        select(Customer.external_id, Customer.name, codes.c.code_at, firsts.c.first_at)
        .join(codes, codes.c.customer_id == Customer.id)
        .outerjoin(firsts, firsts.c.advocate_id == Customer.id)
        .order_by(Customer.id)
    )


def k_factor(session: Session, f: Filters) -> Panel:
    """K = invitations per advocate x conversion. Invitations are counted as unique clicks
    (visitors whose first human click on an advocate's link is in the period, per link; see
    services.click_rollup) — what is measurable before messaging exists;
    conversion is signups per invitation. Advocates are the code holders who had a code by the
    end of the period. Time to first referral: days from getting a code to the first friend
    signing up, for advocates whose first referral falls in the period."""
    scope = _scope(session, f)
    advocates = _advocates_by_end(session, scope)
    _, invitations = _click_counts(session, scope)
    signups = referral_signups(session, scope)
    figures = rules.k_factor(advocates=advocates, invitations=invitations, signups=signups)
    rows = [
        {"metric": "advocates", "value": advocates},
        {"metric": "invitations", "value": invitations},
        {"metric": "signups", "value": signups},
        {
            "metric": "invitations_per_advocate",
            "value": _round(figures["invitations_per_advocate"]),
        },
        {"metric": "conversion", "value": _round(figures["conversion"])},
        {"metric": "k_factor", "value": _round(figures["k_factor"])},
    ]
    timing = _time_to_first(session, scope)
    rows += [{"metric": f"first_referral_{k}", "value": v} for k, v in timing.items()]
    summary = {**figures, "reason": rules.k_reason(figures["k_factor"]), "time_to_first": timing}
    return Panel("k_factor", ["metric", "value"], rows, summary)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _advocates_by_end(session: Session, scope: _Scope) -> int:
    """Code holders (of the program) who had a code by the end of the period."""
    members = _segment_sums(scope)
    if members is not None:  # code holders (any program) in the segment: its own copy
        return cohort_firsts.advocates_by(session, members, scope.end)
    if _summed(scope):
        t = AdvocateFirst
        query = select(func.count()).where(
            t.program_id == _program_key(scope), t.code_at.is_not(None)
        )
        if scope.end is not None:
            query = query.where(t.code_at < scope.end)
        return int(session.scalar(query) or 0)
    codes_at = _between(ReferralCode.created_at, _Scope(None, scope.end, None, None, ""))
    found = session.scalar(
        select(func.count(func.distinct(ReferralCode.customer_id))).where(
            _in_codes(ReferralCode.id, scope), codes_at
        )
    )
    return int(found or 0)


def _time_to_first(session: Session, scope: _Scope) -> dict[str, float | None]:
    """Time from the first code to the first referral (0 if the referral came first), of the
    code holders (of the program) whose first referral falls in the period: median, mean,
    how many. Without a segment from advocate_firsts' gaps, under one segment from its copy
    (services.cohort_firsts): counted, summed and the middle read off their index, not
    handed over one by one."""
    members = _segment_sums(scope)
    if members is not None:
        count, total, middle = cohort_firsts.gaps(session, members, scope.start, scope.end)
        return rules.gap_summary(count, total, middle)
    if _summed(scope):
        t = AdvocateFirst
        where = and_(
            t.program_id == _program_key(scope),
            t.gap_us.is_not(None),
            _between(t.first_at, scope),
        )
        count, total = session.execute(select(func.count(), func.sum(t.gap_us)).where(where)).one()
        middle: list[int] = []
        if count:
            middle = [
                int(g)
                for g in session.scalars(
                    select(t.gap_us)
                    .where(where)
                    .order_by(t.gap_us)
                    .offset((count - 1) // 2)
                    .limit(2 - count % 2)
                )
            ]
        return rules.gap_summary(int(count), int(total or 0), middle)
    gaps = sorted(
        referral_sums.gap_of(row.code_at, row.first_at) or 0
        for row in session.execute(_first_referrals(session, scope))
        if row.first_at is not None and _inside(row.first_at, scope)
    )
    n = len(gaps)
    return rules.gap_summary(n, sum(gaps), gaps[(n - 1) // 2 : (n - 1) // 2 + 2 - n % 2])


def _inside(moment: datetime, scope: _Scope) -> bool:
    return (scope.start is None or moment >= scope.start) and (
        scope.end is None or moment < scope.end
    )


def drill_k_factor(
    session: Session, f: Filters, key: Mapping[str, str], limit: int | None
) -> Panel:
    """The advocates: when they got a code, their first referral, days between. Read off
    advocate_firsts (per program, or 0: any program), as the K-factor figure is: the code
    holders in customer order, the segment's or program's people tested per row on a page
    (the rows `_first_referrals` computes from the codes and referrals)."""
    scope = _scope(session, f)
    t = AdvocateFirst
    query = (
        select(Customer.external_id, Customer.name, t.code_at, t.first_at)
        .join(Customer, Customer.id == t.advocate_id)
        .where(
            t.program_id == _program_key(scope),
            t.code_at.is_not(None),
            _in_page(t.advocate_id, scope, _probed(session, scope, limit)),
        )
        .order_by(t.advocate_id)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = []
    for r in session.execute(query):
        days = None
        if r.first_at is not None:
            days = round(max(0.0, (r.first_at - r.code_at).total_seconds() / 86400), 2)
        rows.append(
            {
                "customer": r.external_id,
                "name": r.name or "",
                "code_at": r.code_at.isoformat(),
                "first_referral_at": r.first_at.isoformat() if r.first_at else "",
                "days_to_first": days,
            }
        )
    columns = ["customer", "name", "code_at", "first_referral_at", "days_to_first"]
    return Panel("k_factor", columns, rows)


# --- customer value: advocates vs the rest --------------------------------------------------


def _clv_window(scope: _Scope) -> tuple[datetime, datetime]:
    """The 365 whole UTC days up to the period's end, or up to the end of today."""
    tomorrow = clock.now().astimezone(UTC).date() + timedelta(days=1)
    end = scope.end or datetime.combine(tomorrow, time(), UTC)
    return end - timedelta(days=365), end


def _advocate_ids(scope: _Scope) -> Any:
    """The advocates (of the program, when filtered): customer_value's value_groups."""
    return customer_value.advocates(scope.program_id)


def _buyer_ids(scope: _Scope) -> Any:
    """The customers the filter keeps, None for everyone: a program's people from
    value_groups (the same set as _scope's, from an index), a segment as _scope says."""
    if scope.segmented or scope.customers is None:
        return scope.customers
    assert scope.program_id is not None
    return customer_value.members(scope.program_id)


def _buyers(session: Session, scope: _Scope, advocates: bool | None = None) -> Select[Any]:
    """Per customer with a paid order in the 12 months ending at the period's end: orders,
    revenue, and whether they are an advocate (brought at least one friend not rejected).
    `advocates` True/False: only that group (True starts from the few advocates)."""
    low, high = _clv_window(scope)
    if advocates is None:
        flag = case((Order.customer_id.in_(_advocate_ids(scope)), literal(1)), else_=literal(0))
    else:
        flag = literal(1 if advocates else 0)
    query = (
        select(
            Order.customer_id,
            flag.label("advocate"),
            func.count().label("orders"),
            func.sum(Order.amount).label("revenue"),
        )
        .where(
            Order.status == PAID,
            Order.currency == scope.currency,
            Order.placed_at >= low,
            Order.placed_at < high,
        )
        .group_by(Order.customer_id)
    )
    if advocates:  # start from the advocates: few, each with few orders on their index
        group = _advocate_ids(scope).subquery()
        query = query.join_from(group, Order, Order.customer_id == group.c.customer_id)
    elif advocates is None:
        query = query.group_by(flag)
    else:
        query = query.where(Order.customer_id.not_in(_advocate_ids(scope)))
    wanted = _buyer_ids(scope)
    if wanted is not None:
        query = query.where(Order.customer_id.in_(wanted))
    return query


def _top_buyers(session: Session, scope: _Scope, *, advocates: bool) -> Select[Any]:
    """A group's buyers for the drill-down: the advocates, and with a program its people
    who are not, from customer_value's per-member days (cost: that group's rows, not every
    order); everyone else who bought (no program) from the orders themselves."""
    if not advocates and scope.program_id is None:
        return _buyers(session, scope, advocates=False)
    low, high = _clv_window(scope)
    one_segment = scope.segmented and scope.cohort is not None  # its members, per row tested
    return customer_value.top_buyers(
        program_id=scope.program_id,
        role=customer_value.ADVOCATE if advocates else customer_value.MEMBER,
        currency=scope.currency,
        first=low.date(),
        end=high.date(),
        customers=scope.customers if scope.segmented and not one_segment else None,
        keep=scope.cohort.holds if one_segment and scope.cohort is not None else None,
        but=None if advocates else _advocate_ids(scope),
    )


def _window_sums(session: Session, table: Any, scope: _Scope, *where: Any) -> tuple[int, ...]:
    """(customers, orders, revenue) of paid orders in the 12-month window, from per-day rows
    keyed by the day of the customer's previous order (a customer bought in the window once:
    the order in it whose previous order is before it, or none)."""
    low, high = _clv_window(scope)
    first = case((table.previous_day < low.date(), table.orders), else_=0)
    found = session.execute(
        select(func.sum(first), func.sum(table.orders), func.sum(table.revenue)).where(
            *where, table.currency == scope.currency, table.day >= low.date(),
            table.day < high.date(),
        )
    ).one()  # fmt: skip
    return tuple(int(value or 0) for value in found)


def _clv_from_days(session: Session, scope: _Scope) -> dict[int, tuple[int, int, int]]:
    """{1: advocates, 0: the rest}: (customers, orders, revenue). Everyone's from
    paid_order_days (a program's people from value_group_days), the advocates' from
    value_group_days; the rest is the difference (advocates are among everyone). Cost: days."""
    t = ValueGroupDay
    if scope.program_id is None:
        everyone = _window_sums(session, PaidOrderDay, scope)
    else:
        member = (t.program_id == scope.program_id, t.role == customer_value.MEMBER)
        everyone = _window_sums(session, t, scope, *member)
    advocates = _window_sums(
        session, t, scope,
        t.program_id == (scope.program_id or customer_value.ALL_PROGRAMS),
        t.role == customer_value.ADVOCATE,
    )  # fmt: skip
    return {1: advocates, 0: tuple(e - a for e, a in zip(everyone, advocates, strict=True))}  # type: ignore[dict-item]


def _clv_in_segment(session: Session, scope: _Scope) -> dict[int, tuple[int, int, int]]:
    """One segment: advocates and the rest from the cohort's cohort_paid_order_days, which
    split its members' orders by advocate (cost: days), corrected for the customers written
    since their segments were judged (services.cohorts)."""
    assert scope.cohort is not None
    members, c = scope.cohort, CohortPaidOrderDay
    low, high = _clv_window(scope)
    dirty = cohorts.order_corrections(session, members, scope.currency, low, high)
    found = {}
    for flag in (1, 0):
        stored = _window_sums(session, c, scope, c.cohort == members.cohort,
                              c.advocate == bool(flag))  # fmt: skip
        found[flag] = tuple(s + d for s, d in zip(stored, dirty[bool(flag)], strict=True))
    return found  # type: ignore[return-value]


def clv(session: Session, f: Filters) -> Panel:
    """Average order value, orders per customer and 12-month value per customer, advocates
    (customers who brought a friend who was not rejected) beside everyone else who bought."""
    scope = _scope(session, f)
    if not scope.segmented:
        found = _clv_from_days(session, scope)
    elif scope.cohort is not None and scope.program_id is None:
        found = _clv_in_segment(session, scope)
    else:
        buyers = _buyers(session, scope).subquery()
        found = {
            int(g): (int(c), int(o or 0), int(r or 0))
            for g, c, o, r in session.execute(
                select(
                    buyers.c.advocate,
                    func.count(),
                    func.sum(buyers.c.orders),
                    func.sum(buyers.c.revenue),
                ).group_by(buyers.c.advocate)
            )
        }
    rows = []
    for group, flag in (("advocates", 1), ("non_advocates", 0)):
        c, o, r = found.get(flag, (0, 0, 0))
        rows.append({"group": group, **rules.clv(customers=c, orders=o, revenue=r)})
    low, high = _clv_window(scope)
    lift = rules.ratio(rows[0]["value_12m"] or 0, rows[1]["value_12m"] or 0)
    summary = {
        "currency": scope.currency,
        "window_from": low.isoformat(),
        "window_to": high.isoformat(),
        "advocate_value_multiple": _round(lift, 2),
    }
    columns = [
        "group",
        "customers",
        "orders",
        "revenue",
        "average_order_value",
        "frequency",
        "value_12m",
    ]
    return Panel("clv", columns, rows, summary)


def drill_clv(session: Session, f: Filters, key: Mapping[str, str], limit: int | None) -> Panel:
    """The buying customers of one group: ?group=advocates|non_advocates."""
    scope = _scope(session, f)
    group = key.get("group") or "advocates"
    if group not in ("advocates", "non_advocates"):
        raise FieldError(
            "group", f"{group!r}: advocates or non_advocates / 应为 advocates 或 non_advocates"
        )
    # A page: walk the customers by all-time revenue (the group, and one segment's members
    # or a program's people, tested per customer walked), until nobody further can enter.
    # The advocates only when many: few are read off their own rows at once.
    advocates = group == "advocates"
    if limit is not None and (not advocates or _many(session, _advocate_ids(scope))):
        keep = None
        if scope.segmented:
            keep = None if scope.cohort is None else scope.cohort.holds
        elif scope.program_id is not None:
            keep = customer_value.is_member(scope.program_id)
        if keep is not None or scope.customers is None:
            low, high = _clv_window(scope)
            found = customer_value.top_outside(
                session, currency=scope.currency, start=low, end=high, limit=limit,
                program_id=scope.program_id, keep=keep, advocates=advocates,
            )  # fmt: skip
            if found is not None:
                return _clv_drill_page(session, found, scope.currency)
    buyers = _top_buyers(session, scope, advocates=advocates).subquery()
    query = (
        select(Customer.external_id, Customer.name, buyers.c.orders, buyers.c.revenue)
        .join(buyers, buyers.c.customer_id == Customer.id)
        .order_by(buyers.c.revenue.desc(), Customer.id)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = [
        {
            "customer": r.external_id,
            "name": r.name or "",
            "orders": int(r.orders),
            "revenue": int(r.revenue or 0),
            "currency": scope.currency,
        }
        for r in session.execute(query)
    ]
    return Panel("clv", ["customer", "name", "orders", "revenue", "currency"], rows)


def _clv_drill_page(session: Session, found: list[tuple[int, int, int]], currency: str) -> Panel:
    names = {
        row.id: row
        for row in session.execute(
            select(Customer.id, Customer.external_id, Customer.name).where(
                Customer.id.in_([customer for customer, _, _ in found])
            )
        )
    }
    rows = [
        {
            "customer": names[customer].external_id,
            "name": names[customer].name or "",
            "orders": orders,
            "revenue": revenue,
            "currency": currency,
        }
        for customer, orders, revenue in found
    ]
    return Panel("clv", ["customer", "name", "orders", "revenue", "currency"], rows)


# --- top advocates ----------------------------------------------------------------------------


def _advocate_counts(scope: _Scope) -> Select[Any]:
    """Per advocate with a referral in scope: signups, qualified, rejected."""
    qualified = func.sum(
        case(
            (
                Referral.qualified_at.is_not(None) & Referral.status.in_(("qualified", "rewarded")),
                1,
            ),
            else_=0,
        )
    )
    return (
        select(
            Referral.advocate_id,
            func.count().label("signups"),
            qualified.label("qualified"),
            func.sum(case((Referral.status == "rejected", 1), else_=0)).label("rejected"),
        )
        .where(_referrals_where(scope))
        .group_by(Referral.advocate_id)
    )


def _advocate_revenue(scope: _Scope, advocates: list[int] | None = None) -> Select[Any]:
    """Per advocate: their friends' (not rejected) paid orders in the period, summed."""
    where = _referrals_where(scope)
    if advocates is not None:
        # A few advocates: their referrals by the advocate index (the friends' condition is
        # the join's own), not the period's referrals filtered by advocate.
        return (
            select(Referral.advocate_id, func.sum(Order.amount).label("revenue"))
            .join(Order, Order.customer_id == Referral.referee_id)
            .where(
                where,
                Referral.advocate_id.in_(advocates),
                Referral.status != "rejected",
                Order.status == PAID,
                Order.currency == scope.currency,
                _between(Order.placed_at, scope),
            )
            .group_by(Referral.advocate_id)
            .with_hint(Referral, "INDEXED BY ix_referrals_dashboard_advocate", "sqlite")
        )
    friends = select(Referral.referee_id).where(where, Referral.status != "rejected")
    return (
        select(Referral.advocate_id, func.sum(Order.amount).label("revenue"))
        .join(Order, Order.customer_id == Referral.referee_id)
        .where(
            where,
            Referral.status != "rejected",
            Order.status == PAID,
            Order.currency == scope.currency,
            Order.customer_id.in_(friends),
            _between(Order.placed_at, scope),
        )
        .group_by(Referral.advocate_id)
    )


def _advocate_table(session: Session, scope: _Scope) -> Select[Any]:
    per = _advocate_counts(scope).subquery()
    revenue = _advocate_revenue(scope).subquery()
    return (
        select(
            Customer.external_id,
            Customer.name,
            per.c.signups,
            per.c.qualified,
            per.c.rejected,
            func.coalesce(revenue.c.revenue, 0).label("revenue"),
        )
        .join(per, per.c.advocate_id == Customer.id)
        .outerjoin(revenue, revenue.c.advocate_id == Customer.id)
        .order_by(
            per.c.qualified.desc(),
            per.c.signups.desc(),
            func.coalesce(revenue.c.revenue, 0).desc(),
            Customer.id,
        )
    )


def _top_from_counts(session: Session, scope: _Scope, limit: int,
                     members: cohorts.Members | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """_top_advocates all time (any program or one, or the advocates in a segment): the
    per-advocate counters. The limit-th (qualified, signups) is read off their index (a
    segment: walking it, each advocate looked up in the segment); the advocates tied with or
    above it are ordered with their friends' revenue, in one statement."""
    t, money = AdvocateReferralCount, AdvocateReferredRevenue
    key = _program_key(scope)
    inside = True if members is None else members.holds(t.advocate_id)
    last = session.execute(
        select(t.qualified, t.signups)
        .where(t.program_id == key, inside)
        .order_by(t.qualified.desc(), t.signups.desc())
        .offset(limit - 1)
        .limit(1)
    ).first()
    if last is None:  # fewer advocates than the limit: all of them
        at_least = True
    else:
        at_least = (t.qualified > last.qualified) | (
            (t.qualified == last.qualified) & (t.signups >= last.signups)
        )
    revenue = func.coalesce(money.revenue, 0)
    query = (
        select(
            t.advocate_id,
            t.signups,
            t.qualified,
            t.rejected,
            revenue.label("revenue"),
            Customer.external_id,
            Customer.name,
        )
        .outerjoin(
            money,
            and_(
                money.program_id == t.program_id,
                money.advocate_id == t.advocate_id,
                money.currency == scope.currency,
            ),
        )
        .join(Customer, Customer.id == t.advocate_id)
        .where(t.program_id == key, at_least, inside)
        .order_by(t.qualified.desc(), t.signups.desc(), revenue.desc(), t.advocate_id)
        .limit(limit)
    )
    return [
        {
            "customer": r.external_id,
            "name": r.name or "",
            "signups": int(r.signups),
            "qualified": int(r.qualified),
            "rejected": int(r.rejected),
            "referred_revenue": int(r.revenue),
            "currency": scope.currency,
        }
        for r in session.execute(query)
    ]


def _top_advocates(session: Session, scope: _Scope, limit: int) -> list[dict[str, Any]]:
    """The first `limit` rows of _advocate_table, in its order, without summing every
    advocate's friends' orders: the order is qualified, then signups, then revenue, so only
    the advocates tied with or above the limit-th (qualified, signups) can be in it, and
    revenue is summed for those alone. All time without a segment: the counters."""
    members = _segment_sums(scope)
    if (_summed(scope) or members is not None) and scope.start is None and scope.end is None:
        return _top_from_counts(session, scope, limit, members)
    # rank() over (qualified, signups): an advocate ranks within the limit exactly when fewer
    # than `limit` are strictly ahead, i.e. when tied with or above the limit-th.
    per = _advocate_counts(scope).subquery()
    rank = func.rank().over(order_by=(per.c.qualified.desc(), per.c.signups.desc()))
    ranked = select(per, rank.label("rank")).subquery()
    candidates = [
        (int(r.qualified or 0), int(r.signups), int(r.rejected or 0), r.advocate_id)
        for r in session.execute(select(ranked).where(ranked.c.rank <= limit))
    ]
    if not candidates:
        return []
    revenue: dict[int, int] = {}
    ids = sorted(c[3] for c in candidates)
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        revenue.update(
            (a, int(r or 0)) for a, r in session.execute(_advocate_revenue(scope, chunk))
        )
    candidates.sort(key=lambda c: (-c[0], -c[1], -revenue.get(c[3], 0), c[3]))
    chosen = candidates[:limit]
    names = {
        r.id: r
        for r in session.execute(
            select(Customer.id, Customer.external_id, Customer.name).where(
                Customer.id.in_([c[3] for c in chosen])
            )
        )
    }
    return [
        {
            "customer": names[a].external_id,
            "name": names[a].name or "",
            "signups": signups,
            "qualified": qualified,
            "rejected": rejected,
            "referred_revenue": revenue.get(a, 0),
            "currency": scope.currency,
        }
        for qualified, signups, rejected, a in chosen
    ]


def _advocate_rows(session: Session, query: Select[Any], currency: str) -> list[dict[str, Any]]:
    return [
        {
            "customer": r.external_id,
            "name": r.name or "",
            "signups": int(r.signups),
            "qualified": int(r.qualified or 0),
            "rejected": int(r.rejected or 0),
            "referred_revenue": int(r.revenue or 0),
            "currency": currency,
        }
        for r in session.execute(query)
    ]


_ADVOCATE_COLUMNS = [
    "customer",
    "name",
    "signups",
    "qualified",
    "rejected",
    "referred_revenue",
    "currency",
]


def top_advocates(session: Session, f: Filters) -> Panel:
    """The advocates who brought the most qualified friends in the period (then signups, then
    the revenue of their friends' paid orders in the period)."""
    scope = _scope(session, f)
    rows = _top_advocates(session, scope, TOP_ADVOCATES)
    return Panel("top_advocates", _ADVOCATE_COLUMNS, rows, {"currency": scope.currency})


def drill_top_advocates(
    session: Session, f: Filters, key: Mapping[str, str], limit: int | None
) -> Panel:
    """Every advocate with a referral in the period, in the same order."""
    scope = _scope(session, f)
    if limit is not None:
        return Panel("top_advocates", _ADVOCATE_COLUMNS, _top_advocates(session, scope, limit))
    query = _advocate_table(session, scope)
    return Panel("top_advocates", _ADVOCATE_COLUMNS, _advocate_rows(session, query, scope.currency))


# --- program plan vs actual (services.plans, which builds on the conditions above) ---------


def plan_vs_actual(session: Session, f: Filters) -> Panel:
    """Each plan's goals and recruitment channels: target, actual, percent done beside time
    elapsed, and what is behind (services.plans.plan_panel)."""
    from advocado.services import plans

    return plans.plan_panel(session, f)


def drill_plan_vs_actual(
    session: Session, f: Filters, key: Mapping[str, str], limit: int | None
) -> Panel:
    """The rows behind one actual: ?plan=&goal= (services.plans.drill_plan)."""
    from advocado.services import plans

    return plans.drill_plan(session, f, key, limit)


# --- the registry: what the page, the API and the CSV export offer ---------------------------

PANELS: dict[str, Callable[[Session, Filters], Panel]] = {
    "nps": nps_over_time,
    "promoters": promoters,
    "referrals": referral_funnel,
    "k_factor": k_factor,
    "clv": clv,
    "top_advocates": top_advocates,
    "plan": plan_vs_actual,
    "activation": activation.activation,
    "activation_steps": activation.activation_steps,
    "reviews": activation.reviews,
    "ugc": activation.ugc,
}
DRILLS: dict[str, Callable[[Session, Filters, Mapping[str, str], int | None], Panel]] = {
    "nps": drill_nps,
    "promoters": drill_promoters,
    "referrals": drill_referrals,
    "k_factor": drill_k_factor,
    "clv": drill_clv,
    "top_advocates": drill_top_advocates,
    "plan": drill_plan_vs_actual,
    "activation": activation.drill_activation,
    "activation_steps": activation.drill_activation_steps,
    "reviews": activation.drill_reviews,
    "ugc": activation.drill_ugc,
}


def panel(session: Session, name: str, f: Filters) -> Panel:
    if name not in PANELS:
        raise UnknownFigure(name)
    return PANELS[name](session, f)


def drill(
    session: Session, name: str, f: Filters, key: Mapping[str, str], *, limit: int | None
) -> Panel:
    if name not in DRILLS:
        raise UnknownFigure(name)
    return DRILLS[name](session, f, key, limit)


def filter_choices(session: Session) -> dict[str, list[tuple[str, str]]]:
    """Segments and programs to pick from: (slug, name)."""
    from advocado.store.models import Segment

    return {
        "segments": [
            (s, n)
            for s, n in session.execute(select(Segment.slug, Segment.name).order_by(Segment.name))
        ],
        "programs": [
            (s, n)
            for s, n in session.execute(select(Program.slug, Program.name).order_by(Program.slug))
        ],
    }


def csv_text(found: Panel) -> Iterator[str]:
    """The panel as CSV (UTF-8 with BOM so spreadsheet apps read Chinese): a header of its
    columns, then its rows. Cells that a spreadsheet would run as a formula are quoted."""
    return csv_rows(found.columns, found.rows)


def csv_rows(columns: list[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """CSV text as csv_text writes it, from rows that may arrive lazily (page by page)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> Any:
    return "" if value is None else segments.csv_cell(value)
