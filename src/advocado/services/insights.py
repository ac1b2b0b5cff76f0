"""Customer insights in bulk: value tier and lifecycle from orders, influence from social
profiles, written to customer_insights with the numbers that decided each label.

`recompute_insights` is one transaction and a full recomputation: every customer gets a row,
whatever was there before is overwritten, so running it twice gives the same table. The RFM
part is one INSERT … SELECT … ON CONFLICT statement (the database aggregates the orders, ranks
and labels them) plus one for customers without orders; the rules it writes in SQL are those
of domain/tiers, and a test holds the two to the same answers.

Settings (all optional) come from a TOML file named by `--config` or ADVOCADO_INSIGHTS_FILE:

    [tiers]
    high_min_rfm = 12          # R+F+M from this: high
    mid_min_rfm = 8            # from this: mid; below: low
    new_within_days = 90       # first order at most this old: new
    declining_after_days = 180 # no order for longer: declining
    lapsed_after_days = 365    # no order for longer: lapsed
    overdue_gap_factor = 2.0   # or: silent for more than this × the usual gap …
    overdue_min_days = 30      # … and more than this many days: declining
    [influence]
    high_influence_min = 60    # influence score from this: high influence (P0, 1:1)

ADVOCADO_HIGH_INFLUENCE_MIN overrides the last one.
"""

from __future__ import annotations

import os
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain import influence as influence_rules
from advocado.domain.influence import SocialRecord
from advocado.domain.tiers import COUNTED_STATUSES, TierRules
from advocado.services import customer_aggregates
from advocado.services.records import LOOKUP_CHUNK, Outcome, Saved, UnknownCustomer, customer_ids
from advocado.store.models import Customer, CustomerInsight, SocialProfile

SETTINGS_ENV = "ADVOCADO_INSIGHTS_FILE"
HIGH_INFLUENCE_ENV = "ADVOCADO_HIGH_INFLUENCE_MIN"
WRITE_BATCH = 2000


@dataclass(frozen=True)
class InsightRules:
    tiers: TierRules = field(default_factory=TierRules)
    high_influence_min: float = influence_rules.DEFAULT_HIGH_INFLUENCE_MIN


def load_rules(path: Path | None = None) -> InsightRules:
    """The thresholds: defaults, then the settings file, then the environment."""
    path = path or (Path(os.environ[SETTINGS_ENV]) if os.environ.get(SETTINGS_ENV) else None)
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ValueError(f"{path}: {error}") from None
        unknown = sorted(set(values) - {"tiers", "influence"})
        if unknown:
            raise ValueError(f"{path}: unknown section(s) {', '.join(unknown)}")
    tiers = TierRules.from_mapping(values.get("tiers", {}))
    section = dict(values.get("influence", {}))
    high_min = section.pop("high_influence_min", influence_rules.DEFAULT_HIGH_INFLUENCE_MIN)
    if section:
        raise ValueError(f"influence: unknown setting(s) {', '.join(sorted(section))}")
    if os.environ.get(HIGH_INFLUENCE_ENV):
        high_min = os.environ[HIGH_INFLUENCE_ENV]
    try:
        high_min = float(high_min)
    except (TypeError, ValueError):
        raise ValueError(f"high_influence_min = {high_min!r} is not a number") from None
    if not 0 <= high_min <= 100:
        raise ValueError("high_influence_min must be within 0-100")
    return InsightRules(tiers=tiers, high_influence_min=high_min)


@dataclass(frozen=True)
class RecomputeSummary:
    customers: int
    value_tiers: dict[str, int]
    lifecycle_stages: dict[str, int]
    high_influence: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "value_tiers": self.value_tiers,
            "lifecycle_stages": self.lifecycle_stages,
            "high_influence": self.high_influence,
        }


def recompute_insights(
    session: Session, *, rules: InsightRules | None = None, now: datetime | None = None
) -> RecomputeSummary:
    """Value tier, lifecycle stage and influence of every customer, "today" being `now`."""
    rules = rules or load_rules()
    now = (now or clock.now()).astimezone(UTC)
    recompute_values(session, rules=rules.tiers, now=now)
    refresh_influence(session, customer_ids=None, high_min=rules.high_influence_min, now=now)
    return insight_counts(session)


def insight_counts(session: Session) -> RecomputeSummary:
    table = CustomerInsight.__table__
    tiers = dict(session.execute(
        text(f"SELECT value_tier, count(*) FROM {table.name} WHERE value_tier IS NOT NULL "
             "GROUP BY value_tier")
    ).all())  # fmt: skip
    stages = dict(session.execute(
        text(f"SELECT lifecycle_stage, count(*) FROM {table.name} "
             "WHERE lifecycle_stage IS NOT NULL GROUP BY lifecycle_stage")
    ).all())  # fmt: skip
    high = session.scalar(text(f"SELECT count(*) FROM {table.name} WHERE high_influence")) or 0
    total = session.scalar(text(f"SELECT count(*) FROM {table.name}")) or 0
    return RecomputeSummary(
        customers=total,
        value_tiers={tier: tiers.get(tier, 0) for tier in ("high", "mid", "low")},
        lifecycle_stages={
            stage: stages.get(stage, 0) for stage in ("new", "steady", "declining", "lapsed")
        },
        high_influence=high,
    )


# --- value tier and lifecycle, in SQL ----------------------------------------------------


@dataclass(frozen=True)
class _Dialect:
    days_since: str  # format with {column}: whole days from :now back to it
    floor_int: str  # format with {value}
    money: str  # format with {value}: minor units as major with 2 decimals


_SQLITE = _Dialect(
    days_since="((CAST(strftime('%s', :now) AS INTEGER) "
    "- CAST(strftime('%s', {column}) AS INTEGER)) / 86400)",
    floor_int="CAST({value} AS INTEGER)",
    money="printf('%.2f', {value} / 100.0)",
)
_POSTGRES = _Dialect(
    days_since="CAST(floor((extract(epoch FROM CAST(:now AS timestamptz)) "
    "- extract(epoch FROM {column})) / 86400) AS INTEGER)",
    floor_int="CAST(floor({value}) AS INTEGER)",
    money="to_char({value} / 100.0, 'FM999999999999999990.00')",
)


_ON_CONFLICT = """ON CONFLICT (customer_id) DO UPDATE SET
    recency_days = excluded.recency_days, frequency = excluded.frequency,
    monetary = excluded.monetary, value_tier = excluded.value_tier,
    lifecycle_stage = excluded.lifecycle_stage, value_explanation = excluded.value_explanation,
    computed_at = excluded.computed_at"""


def _score(d: _Dialect, rank: str) -> str:
    scaled = d.floor_int.format(value=f"5 * {rank}")
    return f"CASE WHEN {scaled} >= 4 THEN 5 ELSE 1 + {scaled} END"


def _value_sql(d: _Dialect, r: TierRules) -> str:
    """The one statement. Thresholds are inlined as numbers (typed by TierRules)."""
    high, mid = int(r.high_min_rfm), int(r.mid_min_rfm)
    new, declining, lapsed = (int(r.new_within_days), int(r.declining_after_days),
                              int(r.lapsed_after_days))  # fmt: skip
    factor, overdue_min = float(r.overdue_gap_factor), int(r.overdue_min_days)
    statuses = ", ".join(f"'{s}'" for s in COUNTED_STATUSES)
    pct = {k: d.floor_int.format(value=f"100 * {k}_rank") for k in "rfm"}
    return f"""
WITH agg AS (
    SELECT customer_id, count(*) AS frequency, sum(amount) AS monetary,
           {d.days_since.format(column="max(placed_at)")} AS recency_days,
           {d.days_since.format(column="min(placed_at)")} AS first_days
    FROM orders WHERE status IN ({statuses})
    GROUP BY customer_id
), ranked AS (
    SELECT agg.*,
           percent_rank() OVER (ORDER BY recency_days DESC) AS r_rank,
           percent_rank() OVER (ORDER BY frequency) AS f_rank,
           percent_rank() OVER (ORDER BY monetary) AS m_rank
    FROM agg
), scored AS (
    SELECT ranked.*, {_score(d, "r_rank")} AS r, {_score(d, "f_rank")} AS f,
           {_score(d, "m_rank")} AS m
    FROM ranked
), labelled AS (
    SELECT scored.*, r + f + m AS rfm,
           CASE WHEN r + f + m >= {high} THEN 'high' WHEN r + f + m >= {mid} THEN 'mid'
                ELSE 'low' END AS tier,
           CASE WHEN recency_days > {lapsed} THEN 'lapsed'
                WHEN first_days <= {new} THEN 'new'
                WHEN recency_days > {declining} THEN 'stale'
                WHEN frequency >= 2 AND recency_days > {overdue_min}
                     AND recency_days * (frequency - 1) > {factor!r} * (first_days - recency_days)
                     THEN 'overdue'
                ELSE 'steady' END AS stage
    FROM scored
)
INSERT INTO customer_insights (customer_id, recency_days, frequency, monetary, value_tier,
                               lifecycle_stage, value_explanation, high_influence, computed_at)
SELECT l.customer_id, l.recency_days, l.frequency, l.monetary, l.tier,
       CASE WHEN l.stage IN ('stale', 'overdue') THEN 'declining' ELSE l.stage END,
       'last order ' || l.recency_days || ' days ago → R' || l.r
            || ' (ahead of ' || {pct["r"]} || '% of customers); '
            || l.frequency || CASE WHEN l.frequency = 1 THEN ' order' ELSE ' orders' END
            || ' → F' || l.f || ' (ahead of ' || {pct["f"]} || '%); spent '
            || {d.money.format(value="l.monetary")} || ' → M' || l.m
            || ' (ahead of ' || {pct["m"]} || '%); R+F+M ' || l.rfm || ' → ' || l.tier
            || ' (high from {high}, mid from {mid}). '
            || CASE l.stage
               WHEN 'lapsed' THEN 'No order for ' || l.recency_days
                    || ' days (lapsed after {lapsed}) → lapsed'
               WHEN 'new' THEN 'First order ' || l.first_days
                    || ' days ago (new within {new}) → new'
               WHEN 'stale' THEN 'No order for ' || l.recency_days
                    || ' days (declining after {declining}) → declining'
               WHEN 'overdue' THEN 'No order for ' || l.recency_days || ' days, over {factor:g}'
                    || ' × the usual gap of '
                    || ((l.first_days - l.recency_days) / (l.frequency - 1))
                    || ' days → declining'
               ELSE 'Last order ' || l.recency_days || ' days ago, first '
                    || l.first_days || ' days ago → steady' END,
       false, :now
FROM labelled l
WHERE true
{_ON_CONFLICT}
"""


def _no_orders_sql() -> str:
    """Customers without a counted order: no tier, no stage (and none left from before)."""
    statuses = ", ".join(f"'{s}'" for s in COUNTED_STATUSES)
    return f"""
INSERT INTO customer_insights (customer_id, recency_days, frequency, monetary, value_tier,
                               lifecycle_stage, value_explanation, high_influence, computed_at)
SELECT c.id, NULL, 0, 0, NULL, NULL, 'no paid or fulfilled order', false, :now
FROM customers c
WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.status IN ({statuses}))
{_ON_CONFLICT}
"""


def recompute_values(session: Session, *, rules: TierRules, now: datetime) -> None:
    """Value tier and lifecycle of every customer: one statement for those with orders, one
    for those without. The dashboard's promoter counts (by tier) follow, same transaction."""
    with customer_aggregates.insights_changing(session, None):
        _recompute_values(session, rules=rules, now=now)


def _recompute_values(session: Session, *, rules: TierRules, now: datetime) -> None:
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # The three rankings sort every customer: let them sort in memory, for this one go.
        session.execute(text("SET LOCAL work_mem = '256MB'"))
        moment: Any = now
    else:
        moment = now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    session.execute(text(_value_sql(_POSTGRES if postgres else _SQLITE, rules)), {"now": moment})
    session.execute(text(_no_orders_sql()), {"now": moment})


# --- influence ---------------------------------------------------------------------------


def _insert(session: Session) -> Any:
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


def refresh_influence(
    session: Session,
    *,
    customer_ids: Iterable[int] | None,
    high_min: float,
    now: datetime | None = None,
) -> None:
    """Influence of the given customers (None: everyone with a social profile) from their
    profiles; a customer whose profiles are gone loses a stale score. The dashboard's
    promoter counts (by influence) follow, in the same transaction."""
    wanted = None if customer_ids is None else sorted(set(customer_ids))
    with customer_aggregates.insights_changing(session, wanted):
        _refresh_influence(session, customer_ids=wanted, high_min=high_min, now=now)


def _refresh_influence(
    session: Session,
    *,
    customer_ids: Iterable[int] | None,
    high_min: float,
    now: datetime | None = None,
) -> None:
    now = now or clock.now()
    wanted = None if customer_ids is None else sorted(set(customer_ids))
    columns = (SocialProfile.customer_id, SocialProfile.platform, SocialProfile.handle,
               SocialProfile.followers, SocialProfile.engagement_rate,
               SocialProfile.brand_mentions, SocialProfile.vertical)  # fmt: skip
    chunks: Iterable[list[int] | None] = (
        [None]
        if wanted is None
        else (wanted[i : i + LOOKUP_CHUNK] for i in range(0, len(wanted), LOOKUP_CHUNK))
    )
    table = CustomerInsight.__table__
    insert = _insert(session)
    for chunk in chunks:
        query = select(*columns).order_by(SocialProfile.customer_id, SocialProfile.platform)
        if chunk is not None:
            query = query.where(SocialProfile.customer_id.in_(chunk))
        profiles: dict[int, list[SocialRecord]] = defaultdict(list)
        for row in session.execute(query):
            profiles[row.customer_id].append(
                SocialRecord(customer_external_id="", platform=row.platform, handle=row.handle,
                             followers=row.followers, engagement_rate=row.engagement_rate,
                             brand_mentions=row.brand_mentions, vertical=row.vertical)
            )  # fmt: skip
        rows = []
        for customer_id, found in profiles.items():
            result = influence_rules.influence(found, high_min=high_min)
            rows.append({"customer_id": customer_id, "influence_score": result.score,
                         "high_influence": result.high,
                         "influence_explanation": result.explanation,
                         "frequency": 0, "monetary": 0, "computed_at": now})  # fmt: skip
        for start in range(0, len(rows), WRITE_BATCH):
            statement = insert(table)
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.customer_id],
                set_={name: statement.excluded[name] for name in
                      ("influence_score", "high_influence", "influence_explanation")},
            )  # fmt: skip
            session.execute(statement, rows[start : start + WRITE_BATCH])
        stale = (
            update(table)
            .where(table.c.influence_score.is_not(None))
            .where(table.c.customer_id.not_in(select(SocialProfile.customer_id)))
            .values(influence_score=None, high_influence=False, influence_explanation=None)
        )
        if chunk is not None:
            stale = stale.where(table.c.customer_id.in_(chunk))
        session.execute(stale)


# --- social profiles ---------------------------------------------------------------------


def save_social_profiles(
    session: Session,
    records: Sequence[SocialRecord],
    *,
    known_customers: Mapping[str, int] | None = None,
    high_influence_min: float | None = None,
) -> list[Saved]:
    """Create or update profiles by (customer, platform), then re-score those customers'
    influence in the same transaction. Raises UnknownCustomer before writing anything."""
    named = sorted({r.customer_external_id for r in records})
    ids = known_customers if known_customers is not None else customer_ids(session, named)
    for external_id in named:
        if external_id not in ids:
            raise UnknownCustomer(external_id)
    now = clock.now()
    latest: dict[tuple[int, str], dict[str, Any]] = {}
    for r in records:
        latest[(ids[r.customer_external_id], r.platform)] = {
            "customer_id": ids[r.customer_external_id], "platform": r.platform,
            "handle": r.handle, "followers": r.followers,
            "engagement_rate": r.engagement_rate, "brand_mentions": r.brand_mentions,
            "vertical": r.vertical,
        }  # fmt: skip
    fields = ("handle", "followers", "engagement_rate", "brand_mentions", "vertical")
    touched = sorted({customer for customer, _ in latest})
    stored: dict[tuple[int, str], Any] = {}
    for start in range(0, len(touched), LOOKUP_CHUNK):
        chunk = touched[start : start + LOOKUP_CHUNK]
        query = select(SocialProfile.id, SocialProfile.customer_id, SocialProfile.platform,
                       *(getattr(SocialProfile, name) for name in fields))  # fmt: skip
        for row in session.execute(query.where(SocialProfile.customer_id.in_(chunk))):
            stored[(row.customer_id, row.platform)] = row
    outcomes: dict[tuple[int, str], Outcome] = {}
    changed = []
    for key, row in sorted(latest.items()):
        old = stored.get(key)
        if old is None:
            outcomes[key] = Outcome.CREATED
        elif any(getattr(old, name) != row[name] for name in fields):
            outcomes[key] = Outcome.UPDATED
        else:
            outcomes[key] = Outcome.UNCHANGED
            continue
        changed.append({**row, "updated_at": now})
    table = SocialProfile.__table__
    insert = _insert(session)
    for start in range(0, len(changed), WRITE_BATCH):
        statement = insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.customer_id, table.c.platform],
            set_={name: statement.excluded[name] for name in (*fields, "updated_at")},
        )
        session.execute(statement, changed[start : start + WRITE_BATCH])
    ids_by_key = {
        (row.customer_id, row.platform): row.id
        for start in range(0, len(touched), LOOKUP_CHUNK)
        for row in session.execute(
            select(SocialProfile.id, SocialProfile.customer_id, SocialProfile.platform).where(
                SocialProfile.customer_id.in_(touched[start : start + LOOKUP_CHUNK])
            )
        )
    }
    if changed:
        high_min = high_influence_min
        if high_min is None:
            high_min = load_rules().high_influence_min
        refresh_influence(
            session, customer_ids={row["customer_id"] for row in changed}, high_min=high_min,
            now=now,
        )  # fmt: skip
    return [
        Saved(
            f"{r.customer_external_id}:{r.platform}",
            ids_by_key[(ids[r.customer_external_id], r.platform)],
            outcomes[(ids[r.customer_external_id], r.platform)],
        )
        for r in records
    ]


def customer_insight(session: Session, *, external_id: str) -> dict[str, Any] | None:
    """One customer's labels with their explanations (None: no such customer)."""
    row = session.execute(
        select(Customer.external_id, CustomerInsight)
        .outerjoin(CustomerInsight, CustomerInsight.customer_id == Customer.id)
        .where(Customer.external_id == external_id)
    ).first()
    if row is None:
        return None
    insight = row[1]
    if insight is None:
        return {"external_id": external_id, "computed": False}
    return {
        "external_id": external_id,
        "computed": True,
        "value_tier": insight.value_tier,
        "lifecycle_stage": insight.lifecycle_stage,
        "recency_days": insight.recency_days,
        "frequency": insight.frequency,
        "monetary": insight.monetary,
        "value_explanation": insight.value_explanation,
        "influence_score": insight.influence_score,
        "high_influence": insight.high_influence,
        "influence_explanation": insight.influence_explanation,
        "computed_at": insight.computed_at,
    }
