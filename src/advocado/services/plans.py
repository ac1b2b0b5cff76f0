"""Program plans (seed 002): create or update from YAML (CLI or console, audited), and plan
versus actual: each goal's actual over the plan's own dates, its percent done beside the
percent of time gone, what is behind and why; recruitment per channel; and the rows behind
every actual (the drill-down).

The actuals use the same conditions as the dashboard's other figures (services.dashboard), cut
by the dashboard's segment / program filter: leads, qualified referrals and revenue read the
referral aggregates (services.referral_aggregates, kept in the same transaction as every
write they follow), the others the rows at request time. Nothing is cached to go stale.
Callers open the transaction (read_only for reads).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Select, and_, func, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from advocado import clock
from advocado.domain import plans as rules
from advocado.domain.dashboard import Filters
from advocado.domain.plans import PlanError, PlanSpec
from advocado.domain.records import FieldError
from advocado.services import activation_aggregates, audit
from advocado.services import dashboard as dash
from advocado.services.challenges import line_of
from advocado.store.models import (
    ChallengeEntry,
    ChallengeInvitation,
    Customer,
    Message,
    Order,
    Plan,
    Referral,
    ReferralCode,
)

REVIEW_TEMPLATE = "review_ask"
INVITE_TEMPLATES = ("referral_invite", "ugc_invite")
PANEL_PLANS = 10  # the dashboard shows the latest plans overlapping its period
RECRUIT = "recruit."


class UnknownPlan(LookupError):
    pass


@dataclass(frozen=True)
class Applied:
    slug: str
    created: bool
    changed: bool


# --- reading and applying ------------------------------------------------------------------


def read_plan_text(text: str, *, source: str = "plan") -> dict[str, Any]:
    """The parsed and checked plan; PlanError names the field, and the line where the file has
    it (`source:line`)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise PlanError("file", f"not valid YAML ({where}): {error} / YAML 格式错误") from None
    try:
        rules.parse_plan(data)
    except PlanError as error:
        line = line_of(text, error.field.split("[")[0])
        where = f"{source}:{line}" if line else source
        raise PlanError(error.field, f"{error.reason} ({where})") from None
    assert isinstance(data, dict)
    return data


def read_plan_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError("file", f"{path}: {error}") from None
    return read_plan_text(text, source=str(path))


def _plain(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str, ensure_ascii=False))


def apply_plan(session: Session, *, data: Mapping[str, Any], actor: str) -> Applied:
    """Create or update the plan by slug, with an audit row when anything changed."""
    spec = rules.parse_plan(data)
    now = clock.now()
    row = session.scalar(select(Plan).where(Plan.slug == spec.slug).with_for_update())
    created = row is None
    before = None if row is None else dict(row.spec)
    after = spec.as_dict()
    if before == after:
        return Applied(spec.slug, False, False)
    if row is None:
        row = Plan(slug=spec.slug, created_at=now)
        session.add(row)
    row.name, row.owner = spec.name, spec.owner
    row.starts_on, row.ends_on = spec.starts_on, spec.ends_on
    row.spec, row.config, row.updated_at = after, _plain(dict(data)), now
    session.flush()
    # Its recruits per channel, counted again for the plan's (new) period.
    activation_aggregates.recount_plan(session, row.id)
    audit.record(session, actor=actor, entity="plan", entity_id=spec.slug,
                 action="create" if created else "update", before=before, after=after)  # fmt: skip
    return Applied(spec.slug, created, True)


def spec_of(plan: Plan) -> PlanSpec:
    """The plan as stored (checked when it was applied; money already in minor units)."""
    stored = plan.spec
    return PlanSpec(
        slug=plan.slug,
        name=plan.name,
        owner=plan.owner,
        starts_on=plan.starts_on,
        ends_on=plan.ends_on,
        currency=str(stored.get("currency") or "CNY"),
        goals={str(k): int(v) for k, v in (stored.get("goals") or {}).items()},
        personas=tuple(stored.get("personas") or ()),
        recruitment={str(k): int(v) for k, v in (stored.get("recruitment") or {}).items()},
        notes=str(stored.get("notes") or ""),
    )


def list_plans(session: Session) -> list[Plan]:
    return list(session.scalars(select(Plan).order_by(Plan.starts_on.desc(), Plan.slug)))


def plan_by_slug(session: Session, slug: str) -> Plan:
    found = session.scalar(select(Plan).where(Plan.slug == slug))
    if found is None:
        raise UnknownPlan(f"no plan {slug!r} / 没有该计划 (advocado plan apply FILE)")
    return found


# --- the actuals: one select per goal, counted for the figure, listed for the drill-down ----


def _scope(session: Session, plan: Plan, f: Filters, spec: PlanSpec) -> Any:
    found = dash._scope(session, replace(f, start=plan.starts_on, end=plan.ends_on))
    return replace(found, currency=spec.currency)


def _goal_rows(goal: str, scope: Any, *, probed: Any = None, walk: bool = False) -> Select[Any]:
    """The rows behind a goal's actual, in time order; the actual is their count (revenue:
    sum of amount). A drill page: `probed` (the referral goals' advocates tested per row,
    see dashboard._probed) and `walk` (revenue: each order's friend looked up per order)."""
    friend, advocate = aliased(Customer), aliased(Customer)
    if goal in ("leads", "referrals_qualified"):
        if goal == "leads":
            where = and_(dash._referrals_where(scope, probed), Referral.status != "rejected")
            moment = Referral.signed_up_at
        else:
            where = and_(
                dash._between(Referral.qualified_at, scope),
                Referral.status.in_(("qualified", "rewarded")),
                True if scope.program_id is None else Referral.program_id == scope.program_id,
                dash._in_page(Referral.advocate_id, scope, probed),
            )
            moment = Referral.qualified_at
        return (
            select(
                Referral.id.label("referral_id"),
                friend.external_id.label("customer"),
                advocate.external_id.label("advocate"),
                Referral.status,
                Referral.signed_up_at,
                Referral.qualified_at,
            )
            .join(friend, friend.id == Referral.referee_id)
            .join(advocate, advocate.id == Referral.advocate_id)
            .where(where)
            .order_by(moment, Referral.id)  # read off the time index, not sorted
        )
    if goal == "revenue":
        return (
            select(
                Order.external_id.label("order"),
                Customer.external_id.label("customer"),
                Order.placed_at,
                Order.amount,
                Order.currency,
            )
            .join(Customer, Customer.id == Order.customer_id)
            .where(dash._referred_orders_where(scope, walk=walk, probed=probed))
            .order_by(Order.placed_at, Order.id)
        )
    if goal in ("reviews_asked", "reviews_clicked"):
        moment = Message.sent_at if goal == "reviews_asked" else Message.clicked_at
        query = (
            select(
                Message.id.label("message_id"),
                Customer.external_id.label("customer"),
                Message.channel,
                Message.status,
                Message.sent_at,
                Message.clicked_at,
            )
            .join(Customer, Customer.id == Message.customer_id)
            .where(
                Message.template == REVIEW_TEMPLATE,
                moment.is_not(None),
                dash._between(moment, scope),
                dash._in_customers(Message.customer_id, scope),
            )
            .order_by(Message.id)
        )
        if goal == "reviews_clicked":
            query = query.where(Message.status == "clicked")
        return query
    if goal in ("ugc_entries", "ugc_featured"):
        query = (
            select(
                ChallengeEntry.id.label("entry_id"),
                Customer.external_id.label("customer"),
                ChallengeEntry.status,
                ChallengeEntry.featured,
                ChallengeEntry.submitted_at,
                ChallengeEntry.link,
            )
            .join(Customer, Customer.id == ChallengeEntry.customer_id)
            .where(
                dash._between(ChallengeEntry.submitted_at, scope),
                dash._in_customers(ChallengeEntry.customer_id, scope),
            )
            .order_by(ChallengeEntry.id)
        )
        if goal == "ugc_featured":
            query = query.where(ChallengeEntry.featured.is_(True))
        return query
    raise FieldError("goal", f"{goal!r}: one of {', '.join(rules.GOALS)} or recruit.<channel>")


# Goals activation_counts answers without a people filter: (kind, featured entries only).
_STORED_GOALS = {
    "reviews_asked": (activation_aggregates.REVIEW_SENT, False),
    "reviews_clicked": (activation_aggregates.REVIEW_CLICKED, False),
    "ugc_entries": (activation_aggregates.UGC_ENTRY, False),
    "ugc_featured": (activation_aggregates.UGC_ENTRY, True),
}


def _actual(session: Session, goal: str, scope: Any) -> int:
    # The referral goals read the dashboard's referral aggregates (per day and program; with
    # a segment, the rows), with the same conditions as _goal_rows' drill-down.
    if goal == "leads":
        return dash.referral_signups(session, scope, leads=True)
    if goal == "referrals_qualified":
        return dash.referrals_qualified_in(session, scope)
    if goal == "revenue":
        return dash.referred_revenue(session, scope)
    program = activation_aggregates.program_of(scope)
    if program is not None and goal in _STORED_GOALS:
        # activation_counts per day (services.activation_aggregates): cost days, not rows.
        kind, featured_only = _STORED_GOALS[goal]
        return sum(
            n
            for _a, _b, star, n in activation_aggregates.totals(
                session, kind, scope.start, scope.end, program=program, live=scope.cohort
            )
            if not featured_only or star == "1"
        )
    rows = _goal_rows(goal, scope).order_by(None).subquery()
    measure = func.sum(rows.c.amount) if goal == "revenue" else func.count()
    return int(session.scalar(select(measure).select_from(rows)) or 0)


def _recruited(scope: Any, customer_ids: list[int] | None = None) -> Select[Any]:
    """Advocates recruited in the period: customers who got their first referral code or
    challenge invitation in it (`via` which), with the channel of the earliest invitation
    message (referral_invite / ugc_invite) sent to them in the period, else "unknown".
    One row per customer; counted per channel for the figure, listed for the drill-down.
    `customer_ids`: only these customers (activation_aggregates recounts a write's few)."""
    codes = select(
        ReferralCode.customer_id.label("customer_id"),
        ReferralCode.created_at.label("at"),
        literal("referral_code").label("via"),
    ).where(dash._between(ReferralCode.created_at, scope))
    if scope.program_id is not None:
        codes = codes.where(ReferralCode.program_id == scope.program_id)
    if customer_ids is not None:
        codes = codes.where(ReferralCode.customer_id.in_(customer_ids))
    invitations = select(
        ChallengeInvitation.customer_id.label("customer_id"),
        ChallengeInvitation.created_at.label("at"),
        literal("challenge_invitation").label("via"),
    ).where(dash._between(ChallengeInvitation.created_at, scope))
    if customer_ids is not None:
        invitations = invitations.where(ChallengeInvitation.customer_id.in_(customer_ids))
    both = union_all(codes, invitations).subquery("recruits")
    first_rank = func.row_number().over(
        partition_by=both.c.customer_id, order_by=(both.c.at, both.c.via)
    )
    ranked = select(both, first_rank.label("rank")).subquery("ranked_recruits")
    message_rank = func.row_number().over(
        partition_by=Message.customer_id, order_by=(Message.created_at, Message.id)
    )
    invites = select(Message.customer_id, Message.channel, message_rank.label("rank")).where(
        Message.template.in_(INVITE_TEMPLATES),
        Message.sent_at.is_not(None),
        dash._between(Message.created_at, scope),
    )
    if customer_ids is not None:
        invites = invites.where(Message.customer_id.in_(customer_ids))
    invites = invites.subquery("invites")
    channel = func.coalesce(invites.c.channel, rules.UNKNOWN_CHANNEL)
    return (
        select(
            Customer.external_id.label("customer"),
            Customer.name,
            ranked.c.at.label("recruited_at"),
            ranked.c.via,
            channel.label("channel"),
        )
        .join(ranked, ranked.c.customer_id == Customer.id)
        .outerjoin(invites, and_(invites.c.customer_id == Customer.id, invites.c.rank == 1))
        .where(ranked.c.rank == 1, dash._in_customers(Customer.id, scope))
        .order_by(ranked.c.at, Customer.id)
    )


def _recruited_by_channel(session: Session, scope: Any, plan: Plan) -> dict[str, int]:
    program = activation_aggregates.program_of(scope)
    if program is not None:
        # activation_counts keeps each plan's recruits per channel (cost: channels).
        found: dict[str, int] = {}
        for _a, channel, _c, n in activation_aggregates.totals(
            session,
            activation_aggregates.RECRUIT,
            program=program,
            key=str(plan.id),
            live=scope.cohort,
        ):
            if n:
                found[channel] = n
        return found
    rows = _recruited(scope).order_by(None).subquery()
    found = session.execute(select(rows.c.channel, func.count()).group_by(rows.c.channel))
    return {str(channel): int(n) for channel, n in found}


@dataclass(frozen=True)
class _Figures:
    plan: Plan
    spec: PlanSpec
    elapsed: float
    rows: list[dict[str, Any]]


def plan_figures(session: Session, *, plan: Plan, f: Filters | None = None) -> _Figures:
    """Every goal and recruitment channel of the plan: target, actual, percent done beside
    time elapsed, status and reason (en/zh), and what the actual counts."""
    f = f or Filters()
    spec = spec_of(plan)
    scope = _scope(session, plan, f, spec)
    elapsed = rules.time_elapsed(spec.starts_on, spec.ends_on, clock.now().date())
    rows = []
    for goal, target in spec.goals.items():
        actual = _actual(session, goal, scope)
        money = spec.currency if goal == "revenue" else None
        definition = " / ".join(rules.GOALS[goal])
        rows.append(_row(plan, goal, target, actual, elapsed, definition, money=money))
    by_channel = _recruited_by_channel(session, scope, plan)
    channels = list(spec.recruitment)
    channels += sorted(c for c in by_channel if c not in spec.recruitment)
    for channel in channels:
        target = spec.recruitment.get(channel, 0)
        measured = channel in rules.MEASURED_CHANNELS or channel == rules.UNKNOWN_CHANNEL
        definition = (
            f"advocates who got a referral code or challenge invitation in the period through "
            f"a {channel} invitation message / "
            f"期间内经{channel}邀请消息获得推荐码或挑战邀请的推荐人"
        )
        if channel == rules.UNKNOWN_CHANNEL:
            definition = (
                "advocates recruited in the period with no invitation message on record: their "
                "channel is unknown / 期间内招募但无邀请消息记录的推荐人：渠道未知"
            )
        if not measured:
            rows.append({**_row(plan, RECRUIT + channel, target, None, elapsed, definition),
                         "status": "not_measured",
                         "reason": f"Advocado does not record recruitment through {channel}; "
                                   f"such advocates are counted under unknown / 系统不记录经"
                                   f"{channel}的招募，这些推荐人计入“未知”"})  # fmt: skip
            continue
        actual = by_channel.get(channel, 0)
        rows.append(_row(plan, RECRUIT + channel, target, actual, elapsed, definition))
    total = sum(by_channel.values())
    target_total = sum(spec.recruitment.values())
    if target_total:
        definition = "all advocates recruited in the period / 期间内招募的全部推荐人"
        rows.append(_row(plan, RECRUIT + "total", target_total, total, elapsed, definition))
    return _Figures(plan, spec, elapsed, rows)


def _row(plan: Plan, goal: str, target: int, actual: int | None, elapsed: float,
         definition: str, *, money: str | None = None) -> dict[str, Any]:  # fmt: skip
    found = rules.progress(target=target, actual=actual or 0, elapsed=elapsed, currency=money)
    return {
        "plan": plan.slug,
        "goal": goal,
        "target": target,
        "actual": actual,
        "percent_done": None if found.done is None else round(100 * found.done, 1),
        "time_elapsed": round(100 * elapsed, 1),
        "status": found.status,
        "gap": None if found.gap is None else round(100 * found.gap, 1),
        "reason": found.reason,
        "definition": definition,
    }


PANEL_COLUMNS = ["plan", "goal", "target", "actual", "percent_done", "time_elapsed", "status",
                 "gap", "reason", "definition"]  # fmt: skip


def _plans_in(session: Session, f: Filters) -> list[Plan]:
    query = select(Plan).order_by(Plan.starts_on.desc(), Plan.slug).limit(PANEL_PLANS)
    if f.start:
        query = query.where(Plan.ends_on >= f.start)
    if f.end:
        query = query.where(Plan.starts_on <= f.end)
    return list(session.scalars(query))


def plan_panel(session: Session, f: Filters) -> dash.Panel:
    """Plan vs actual of the plans overlapping the dashboard's period (latest first): one row
    per goal and recruitment channel; the summary lists what is behind."""
    rows: list[dict[str, Any]] = []
    plans = []
    for plan in _plans_in(session, f):
        found = plan_figures(session, plan=plan, f=f)
        rows += found.rows
        plans.append({"slug": plan.slug, "name": plan.name, "owner": plan.owner,
                      "starts_on": plan.starts_on.isoformat(),
                      "ends_on": plan.ends_on.isoformat(), "currency": found.spec.currency,
                      "personas": list(found.spec.personas),
                      "time_elapsed": round(100 * found.elapsed, 1)})  # fmt: skip
    behind = [f"{r['plan']}: {r['goal']}" for r in rows if r["status"] == "behind"]
    return dash.Panel("plan", PANEL_COLUMNS, rows, {"plans": plans, "behind": behind})


def drill_plan(
    session: Session, f: Filters, key: Mapping[str, str], limit: int | None
) -> dash.Panel:
    """The rows behind one actual: ?plan=<slug>&goal=<goal> or goal=recruit.<channel>."""
    slug = key.get("plan") or ""
    goal = key.get("goal") or ""
    try:
        plan = plan_by_slug(session, slug)
    except UnknownPlan:
        raise FieldError("plan", f"no plan {slug!r} / 没有该计划") from None
    spec = spec_of(plan)
    scope = _scope(session, plan, f, spec)
    if goal.startswith(RECRUIT):
        channel = goal[len(RECRUIT) :]
        recruits = _recruited(scope).subquery()
        query = select(recruits).order_by(recruits.c.recruited_at, recruits.c.customer)
        if channel != "total":
            query = query.where(recruits.c.channel == channel)
    else:
        probed = dash._probed(session, scope, limit)
        walk = limit is not None and (scope.customers is None or probed is not None)
        query = _goal_rows(goal, scope, probed=probed, walk=walk)
    if limit is not None:
        query = query.limit(limit)
    result = session.execute(query)
    columns = list(result.keys())
    return dash.Panel("plan", columns, [dash._plain_row(r._mapping, columns) for r in result])


def plan_view(session: Session, *, plan: Plan) -> dict[str, Any]:
    """The plan and its figures as the API answers them."""
    found = plan_figures(session, plan=plan)
    return {**found.spec.as_dict(), "time_elapsed": round(100 * found.elapsed, 1),
            "figures": found.rows, "updated_at": plan.updated_at.isoformat()}  # fmt: skip
