"""Influence: reading social profile fields, the score, the explanation, the threshold."""

from __future__ import annotations

import pytest

from advocado.domain.influence import (
    SocialRecord,
    count,
    engagement_rate,
    influence,
    platform,
    profile_score,
)
from advocado.domain.records import FieldError


def profile(followers: int, rate: float, mentions: int, name: str = "weibo") -> SocialRecord:
    return SocialRecord("c1", name, "@lin", followers, rate, mentions, "beauty")


@pytest.mark.parametrize(
    ("raw", "rate"),
    [("0.035", 0.035), ("3.5%", 0.035), ("3.5 %", 0.035), ("４.1％", 0.041), (0.041, 0.041),
     ("", 0.0), ("1", 1.0), ("100%", 1.0)],
)  # fmt: skip
def test_engagement_rate_reads_fractions_and_percentages(raw: str, rate: float) -> None:
    assert engagement_rate(raw) == pytest.approx(rate)


@pytest.mark.parametrize("raw", ["3.5", "150%", "-0.1", "abc"])
def test_engagement_rate_refuses_what_it_would_have_to_guess(raw: str) -> None:
    with pytest.raises(FieldError) as error:
        engagement_rate(raw)
    assert error.value.field == "engagement_rate"


def test_follower_counts_accept_separators_and_chinese_units() -> None:
    assert count("followers", "12,400") == 12_400
    assert count("followers", "1.2万") == 12_000
    assert count("followers", "12.4k") == 12_400
    assert count("followers", "") == 0
    for bad in ("-5", "1.5", "lots"):
        with pytest.raises(FieldError):
            count("followers", bad)


def test_platform_names_are_normalised() -> None:
    assert platform("Weibo") == "weibo"
    assert platform("小红书") == "xiaohongshu"
    with pytest.raises(FieldError):
        platform("")
    with pytest.raises(FieldError):
        platform("my platform!")


def test_score_grows_with_each_part_and_is_capped_at_100() -> None:
    base = profile_score(10_000, 0.03, 5)
    assert profile_score(100_000, 0.03, 5) > base
    assert profile_score(10_000, 0.05, 5) > base
    assert profile_score(10_000, 0.03, 8) > base
    assert profile_score(10**9, 1.0, 1000) == 100.0
    assert profile_score(0, 0.0, 0) == 0.0


def test_explanation_names_the_numbers_that_decided_it() -> None:
    found = influence([profile(12_400, 0.041, 6)])
    assert found.score == pytest.approx(66.6)
    assert found.high
    assert found.explanation.startswith(
        "weibo @lin [beauty] 12,400 followers × 4.1% engagement, 6 brand posts → 67/100"
    )
    assert "high influence from 60" in found.explanation


def test_threshold_is_a_setting_and_inclusive() -> None:
    found = influence([profile(12_400, 0.041, 6)], high_min=66.6)
    assert found.high
    assert not influence([profile(12_400, 0.041, 6)], high_min=70).high
    assert "below the high-influence threshold 70" in (
        influence([profile(12_400, 0.041, 6)], high_min=70).explanation
    )


def test_a_customer_scores_as_their_best_platform() -> None:
    small = profile(300, 0.01, 0, "douyin")
    big = profile(50_000, 0.04, 4, "xiaohongshu")
    found = influence([small, big])
    assert found.score == profile_score(50_000, 0.04, 4)
    assert (
        found.explanation.startswith("xiaohongshu") and "best of 2 platforms" in found.explanation
    )


def test_no_profile_means_no_influence() -> None:
    assert influence([]).score == 0 and not influence([]).high
