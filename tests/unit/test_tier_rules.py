"""RFM value tier and lifecycle stage: the boundaries, and the settings that move them."""

from __future__ import annotations

import pytest

from advocado.domain.tiers import (
    Lifecycle,
    TierRules,
    ValueTier,
    lifecycle,
    percent_ranks,
    score,
    value_tier,
)


def test_percent_ranks_share_ties_like_sql() -> None:
    assert percent_ranks([1, 1, 1, 3, 4]) == [0.0, 0.0, 0.0, 0.75, 1.0]
    assert percent_ranks([7]) == [0.0]


@pytest.mark.parametrize(
    ("rank", "expected"),
    [(0.0, 1), (0.19, 1), (0.2, 2), (0.4, 3), (0.5, 3), (0.79, 4), (0.8, 5), (1.0, 5)],
)
def test_scores_are_quintiles(rank: float, expected: int) -> None:
    assert score(rank) == expected


@pytest.mark.parametrize(
    ("r", "f", "m", "tier"),
    [(5, 5, 5, ValueTier.HIGH), (4, 4, 4, ValueTier.HIGH), (5, 4, 2, ValueTier.MID),
     (3, 3, 2, ValueTier.MID), (3, 2, 2, ValueTier.LOW), (1, 1, 1, ValueTier.LOW)],
)  # fmt: skip
def test_value_tier_boundaries(r: int, f: int, m: int, tier: ValueTier) -> None:
    assert value_tier(r, f, m) is tier


def test_value_tier_thresholds_are_settings() -> None:
    strict = TierRules(high_min_rfm=14, mid_min_rfm=10)
    assert value_tier(4, 4, 4, strict) is ValueTier.MID
    assert value_tier(3, 3, 3, strict) is ValueTier.LOW


@pytest.mark.parametrize(
    ("recency", "first", "orders", "stage"),
    [
        (366, 900, 9, Lifecycle.LAPSED),  # over a year: lapsed, however loyal before
        (365, 900, 9, Lifecycle.DECLINING),  # exactly a year: declining, not yet lapsed
        (10, 90, 1, Lifecycle.NEW),  # first order 90 days ago: still new
        (10, 91, 1, Lifecycle.STEADY),
        (181, 400, 1, Lifecycle.DECLINING),  # silent for over half a year
        (180, 400, 1, Lifecycle.STEADY),
        (61, 100, 4, Lifecycle.DECLINING),  # usual gap 13 days, silent 61 (> 2 × 13, > 30)
        (25, 100, 4, Lifecycle.STEADY),  # overdue but within 30 days: not declining yet
        (40, 160, 5, Lifecycle.STEADY),  # usual gap 30: 40 is not over 2 × 30
        (61, 160, 5, Lifecycle.DECLINING),  # 61 > 60
    ],
)
def test_lifecycle_boundaries(recency: int, first: int, orders: int, stage: Lifecycle) -> None:
    assert lifecycle(recency_days=recency, first_order_days=first, orders=orders) is stage


def test_lifecycle_thresholds_are_settings() -> None:
    rules = TierRules(new_within_days=30, declining_after_days=60, lapsed_after_days=120)
    assert lifecycle(recency_days=10, first_order_days=60, orders=1, rules=rules) is (
        Lifecycle.STEADY
    )
    assert lifecycle(recency_days=61, first_order_days=90, orders=1, rules=rules) is (
        Lifecycle.DECLINING
    )
    assert lifecycle(recency_days=121, first_order_days=900, orders=1, rules=rules) is (
        Lifecycle.LAPSED
    )


def test_inconsistent_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        TierRules(high_min_rfm=7, mid_min_rfm=8)
    with pytest.raises(ValueError):
        TierRules(declining_after_days=400, lapsed_after_days=365)
    with pytest.raises(ValueError, match="unknown"):
        TierRules.from_mapping({"high_min": 12})
    assert TierRules.from_mapping({"overdue_gap_factor": "1.5"}).overdue_gap_factor == 1.5
