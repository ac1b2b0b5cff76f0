"""What a customer is worth (RFM value tier) and where they are in their life with us
(lifecycle stage), from their orders. Pure rules: services/insights applies the same rules to
every customer at once in SQL, and a test holds the two to the same answers.

Orders that count: status paid or fulfilled (pending, cancelled and refunded do not).

**Value tier (RFM).** Each customer with at least one counted order gets three scores 1-5,
each from their rank among all such customers (so the tiers fit any brand's prices and
rhythm without tuning, the classic quintile RFM):

- R, recency: days since the last order (fewer is better);
- F, frequency: number of orders;
- M, monetary: total spent (minor units, summed as stored: one currency is assumed).

A score is 1 + floor(5 × percent rank), capped at 5, where the percent rank is the share of
the other customers strictly behind this one: ties share a rank and a score, so two customers
with the same numbers always get the same tier. R + F + M (3-15) gives the tier:
high from 12 (about the best fifth: e.g. R5 F4 M3 or R4 F4 M4), mid from 8, low below.

**Lifecycle stage**, by the first rule that holds (days are whole days before "today"):

1. lapsed: no order for more than 365 days (a year: the usual retail churn line);
2. new: the first order is at most 90 days old (a quarter: the window for a second purchase);
3. declining: no order for more than 180 days, or overdue: two or more orders and the time
   since the last is more than 2 × their usual gap ((last - first) / (orders - 1)) and more
   than 30 days;
4. steady: everyone else with orders.

Customers without a counted order get no tier and no stage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

COUNTED_STATUSES = ("paid", "fulfilled")
SCORE_LEVELS = 5


class ValueTier(StrEnum):
    HIGH = "high"
    MID = "mid"
    LOW = "low"


class Lifecycle(StrEnum):
    NEW = "new"
    STEADY = "steady"
    DECLINING = "declining"
    LAPSED = "lapsed"


@dataclass(frozen=True)
class TierRules:
    """The thresholds; every one can be set in the insights settings file or the environment
    (see services/insights.load_rules)."""

    high_min_rfm: int = 12
    mid_min_rfm: int = 8
    new_within_days: int = 90
    declining_after_days: int = 180
    lapsed_after_days: int = 365
    overdue_gap_factor: float = 2.0
    overdue_min_days: int = 30

    def __post_init__(self) -> None:
        if not 3 <= self.mid_min_rfm <= self.high_min_rfm <= 15:
            raise ValueError("tiers: need 3 <= mid_min_rfm <= high_min_rfm <= 15")
        if self.new_within_days < 0:
            raise ValueError("tiers: new_within_days must be >= 0")
        if not 0 <= self.declining_after_days <= self.lapsed_after_days:
            raise ValueError("tiers: need 0 <= declining_after_days <= lapsed_after_days")
        if self.overdue_gap_factor <= 0 or self.overdue_min_days < 0:
            raise ValueError("tiers: overdue_gap_factor must be > 0, overdue_min_days >= 0")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TierRules:
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"tiers: unknown setting(s) {', '.join(unknown)}")
        converted: dict[str, Any] = {}
        for name, value in values.items():
            kind = float if known[name] in ("float", float) else int
            try:
                converted[name] = kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"tiers: {name} = {value!r} is not a number") from None
        return cls(**converted)


def percent_ranks(values: Sequence[float]) -> list[float]:
    """SQL's percent_rank() over ascending values: (rank - 1) / (n - 1), ties share the rank."""
    n = len(values)
    if n <= 1:
        return [0.0] * n
    ordered = sorted(values)
    first_at: dict[float, int] = {}
    for index, value in enumerate(ordered):
        first_at.setdefault(value, index)
    return [first_at[value] / (n - 1) for value in values]


def score(percent_rank: float) -> int:
    """1-5 from a percent rank in [0, 1]."""
    return min(SCORE_LEVELS, 1 + math.floor(SCORE_LEVELS * percent_rank))


def value_tier(r: int, f: int, m: int, rules: TierRules = TierRules()) -> ValueTier:
    total = r + f + m
    if total >= rules.high_min_rfm:
        return ValueTier.HIGH
    if total >= rules.mid_min_rfm:
        return ValueTier.MID
    return ValueTier.LOW


def lifecycle(
    *, recency_days: int, first_order_days: int, orders: int, rules: TierRules = TierRules()
) -> Lifecycle:
    """`recency_days`: days since the last order; `first_order_days`: since the first."""
    if recency_days > rules.lapsed_after_days:
        return Lifecycle.LAPSED
    if first_order_days <= rules.new_within_days:
        return Lifecycle.NEW
    if recency_days > rules.declining_after_days:
        return Lifecycle.DECLINING
    span = first_order_days - recency_days
    # recency > factor × span / (orders - 1), multiplied out (no division, as in the SQL)
    if (
        orders >= 2
        and recency_days > rules.overdue_min_days
        and recency_days * (orders - 1) > rules.overdue_gap_factor * span
    ):
        return Lifecycle.DECLINING
    return Lifecycle.STEADY
