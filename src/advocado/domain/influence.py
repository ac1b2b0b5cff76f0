"""How loud a customer is: a social profile as it comes in, and the influence score (0-100)
with the numbers that decided it.

The score adds three parts, each capped, so no single number can carry a profile alone:

- reach, up to 50: log10(followers + 1) / 6 of 50 points; 1,000,000 followers is full reach,
  10,000 is 33, 1,000 is 25. Logarithmic because the 10th thousand follower matters as much as
  the 10th million does to a KOC programme: a KOC is a peer, not a celebrity.
- engagement, up to 30: the average engagement rate / 6% of 30 points. 1-3% is ordinary on
  Weibo / Instagram, over 6% is a community that listens.
- brand posts, up to 20: 2 points per post that mentions the brand, 10 posts or more is full.
  Someone who already talks about us is the best ambassador (seed 000, level 4).

A customer with several profiles scores as their best one. `high_influence` is a score at or
above the threshold (default 60; e.g. 20,000 followers at 4% with 6 brand posts): seed 000
makes such promoters P0, handed to a person, not to automation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from advocado.domain.records import FieldError, optional_text, required_text

REACH_POINTS = 50.0
ENGAGEMENT_POINTS = 30.0
MENTION_POINTS = 20.0
FULL_REACH_FOLLOWERS = 1_000_000
FULL_ENGAGEMENT_RATE = 0.06
POINTS_PER_MENTION = 2.0
DEFAULT_HIGH_INFLUENCE_MIN = 60.0

_PLATFORM = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,39}$")
_PLATFORM_ALIASES = {
    "微博": "weibo", "新浪微博": "weibo", "小红书": "xiaohongshu", "red": "xiaohongshu",
    "抖音": "douyin", "b站": "bilibili", "哔哩哔哩": "bilibili", "知乎": "zhihu",
    "微信": "wechat", "视频号": "wechat_channels", "快手": "kuaishou", "twitter": "x",
}  # fmt: skip
_MULTIPLIERS = {"k": 1_000, "m": 1_000_000, "w": 10_000, "万": 10_000, "千": 1_000}


@dataclass(frozen=True)
class SocialRecord:
    """One row of `advocado import social`: the profile of one customer on one platform."""

    customer_external_id: str
    platform: str
    handle: str
    followers: int = 0
    engagement_rate: float = 0.0  # 0.035 = 3.5 %
    brand_mentions: int = 0
    vertical: str | None = None


@dataclass(frozen=True)
class Influence:
    score: float  # 0-100, one decimal
    high: bool
    explanation: str


def platform(value: str | None) -> str:
    raw = required_text("platform", value, 40).lower()
    raw = _PLATFORM_ALIASES.get(raw, raw)
    if not _PLATFORM.match(raw):
        raise FieldError("platform", f"{value!r} is not a platform name (e.g. weibo, douyin)")
    return raw


def count(name: str, value: str | int | None) -> int:
    """A whole number >= 0: '12400', '12,400', '1.2万', '12.4k' all read as 12400-ish."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    else:
        raw = (value or "").strip().lower().replace(",", "").replace("，", "") if value else ""
        if not raw:
            return 0
        multiplier = 1
        if raw[-1] in _MULTIPLIERS:
            multiplier, raw = _MULTIPLIERS[raw[-1]], raw[:-1].strip()
        try:
            number = Decimal(raw) * multiplier
        except InvalidOperation:
            raise FieldError(name, f"{value!r} is not a number") from None
    if number != number.to_integral_value():
        raise FieldError(name, f"{value!r} is not a whole number")
    if number < 0:
        raise FieldError(name, f"{value!r} is negative")
    return int(number)


def engagement_rate(value: str | float | None) -> float:
    """'3.5%' or 0.035 -> 0.035. A bare number above 1 is refused rather than guessed at."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        rate, percent = Decimal(str(value)), False
    else:
        raw = (value or "").strip() if value else ""
        if not raw:
            return 0.0
        percent = raw.endswith(("%", "％"))
        try:
            rate = Decimal(raw.rstrip("%％").strip())
        except InvalidOperation:
            raise FieldError("engagement_rate", f"{value!r} is not a rate") from None
    if percent:
        rate /= 100
    if rate < 0:
        raise FieldError("engagement_rate", f"{value!r} is negative")
    if rate > 1:
        raise FieldError(
            "engagement_rate", f"{value!r} is over 100%: write 3.5% or 0.035 for 3.5 percent"
        )
    return float(rate)


def social_record(
    *,
    customer_external_id: str | None,
    platform_name: str | None,
    handle: str | None,
    followers: str | int | None,
    rate: str | float | None,
    brand_mentions: str | int | None,
    vertical: str | None,
) -> SocialRecord:
    """Checks one incoming profile; raises FieldError naming the field."""
    return SocialRecord(
        customer_external_id=required_text("customer_external_id", customer_external_id),
        platform=platform(platform_name),
        handle=required_text("handle", handle),
        followers=count("followers", followers),
        engagement_rate=engagement_rate(rate),
        brand_mentions=count("brand_mentions", brand_mentions),
        vertical=optional_text("vertical", vertical, 100),
    )


def profile_points(followers: int, rate: float, brand_mentions: int) -> tuple[float, float, float]:
    """(reach, engagement, brand posts) points, each capped."""
    reach = REACH_POINTS * min(
        1.0, math.log10(max(followers, 0) + 1) / math.log10(FULL_REACH_FOLLOWERS)
    )
    engagement = ENGAGEMENT_POINTS * min(1.0, max(rate, 0.0) / FULL_ENGAGEMENT_RATE)
    mentions = min(MENTION_POINTS, POINTS_PER_MENTION * max(brand_mentions, 0))
    return reach, engagement, mentions


def profile_score(followers: int, rate: float, brand_mentions: int) -> float:
    return round(sum(profile_points(followers, rate, brand_mentions)), 1)


def _percent(rate: float) -> str:
    text = f"{rate * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def influence(
    profiles: Sequence[SocialRecord], *, high_min: float = DEFAULT_HIGH_INFLUENCE_MIN
) -> Influence:
    """The customer's influence: their best profile's score, and why.

    e.g. "weibo @lin 12,400 followers × 4.1% engagement, 6 brand posts → 67/100
    (reach 34.1 + engagement 20.5 + brand posts 12); high influence from 60"."""
    if not profiles:
        return Influence(0.0, False, "no social profile")
    scored = sorted(
        profiles,
        key=lambda p: (
            profile_score(p.followers, p.engagement_rate, p.brand_mentions),
            p.followers,
            p.platform,
        ),  # fmt: skip
        reverse=True,
    )
    best = scored[0]
    reach, engagement, mentions = profile_points(
        best.followers, best.engagement_rate, best.brand_mentions
    )
    score = round(reach + engagement + mentions, 1)
    high = score >= high_min
    posts = "brand post" if best.brand_mentions == 1 else "brand posts"
    vertical = f" [{best.vertical}]" if best.vertical else ""
    explanation = (
        f"{best.platform} @{best.handle.lstrip('@')}{vertical} {best.followers:,} followers × "
        f"{_percent(best.engagement_rate)} engagement, {best.brand_mentions} {posts} → "
        f"{score:.0f}/100 (reach {reach:.1f} + engagement {engagement:.1f} + brand posts "
        f"{mentions:.0f}); {'high influence' if high else 'below'} "
        f"{'from' if high else 'the high-influence threshold'} {high_min:g}"
    )
    if len(profiles) > 1:
        explanation += f"; best of {len(profiles)} platforms"
    return Influence(score, high, explanation)
