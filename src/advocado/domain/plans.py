"""A program plan (seed 002, #计划#) as data, and how an actual compares with it. No I/O.

A plan names its owner and dates, the goals (leads, revenue, reviews, UGC, qualified
referrals), the advocate personas it targets and how many advocates each recruitment channel
should bring. The file format is documented line by line in examples/plans/2027-q1.yaml.

Progress of a goal is judged against the time gone: a goal whose percent done is below the
percent of the plan's time elapsed is behind, and the reason says by how much (en / zh).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from advocado.domain.records import FieldError, amount_from_major, currency

# goal -> (English, Chinese) definition of its actual, shown beside it.
GOALS: dict[str, tuple[str, str]] = {
    "leads": (
        "referred signups in the period (rejected ones not counted)",
        "期间内经推荐注册的新客户（不含被拒绝的）",
    ),
    "revenue": (
        "paid orders in the period of referred customers, in the plan's currency",
        "期间内被推荐客户的已支付订单金额（计划币种）",
    ),
    "reviews_asked": (
        "review-ask messages (template review_ask) sent in the period",
        "期间内已发送的评价邀请消息（模板 review_ask）",
    ),
    "reviews_clicked": (
        "review-ask messages whose link was clicked in the period (status clicked)",
        "期间内链接被点击的评价邀请消息（状态 clicked）",
    ),
    "ugc_entries": ("UGC challenge entries submitted in the period", "期间内提交的 UGC 挑战作品"),
    "ugc_featured": (
        "UGC entries submitted in the period and featured",
        "期间内提交并被精选的 UGC 作品",
    ),
    "referrals_qualified": (
        "referrals that qualified in the period",
        "期间内达成条件（合格）的推荐",
    ),
}
PERSONAS = ("emotional", "rational", "high_influence", "neutral")
# Channels whose actual the system can see: the channel of the invitation message (referral
# or UGC invite) sent to the advocate. Others (in_app, events, sales...) may be planned, but
# their actual is not recorded and is said so.
MEASURED_CHANNELS = ("email", "sms", "wecom", "wechat", "webhook")
UNKNOWN_CHANNEL = "unknown"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
_CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class PlanError(FieldError):
    """`field` of the plan file (a dotted path such as goals.leads) is wrong, for `reason`."""


@dataclass(frozen=True)
class PlanSpec:
    slug: str
    name: str
    owner: str
    starts_on: date
    ends_on: date  # included
    currency: str
    goals: dict[str, int]  # revenue in minor units
    personas: tuple[str, ...] = ()
    recruitment: dict[str, int] = field(default_factory=dict)
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "owner": self.owner,
            "starts_on": self.starts_on.isoformat(),
            "ends_on": self.ends_on.isoformat(),
            "currency": self.currency,
            "goals": dict(self.goals),
            "personas": list(self.personas),
            "recruitment": dict(self.recruitment),
            "notes": self.notes,
        }


_KEYS = ("slug", "name", "owner", "starts_on", "ends_on", "currency", "goals", "personas",
         "recruitment", "notes")  # fmt: skip


def _text(data: Mapping[str, Any], name: str, *, required: bool = True, limit: int = 200) -> str:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise PlanError(name, "required / 必填")
        return ""
    if not isinstance(value, str | int | float):
        raise PlanError(name, "must be text / 应为文本")
    text = str(value).strip()
    if len(text) > limit:
        raise PlanError(name, f"longer than {limit} characters / 超过 {limit} 个字符")
    return text


def _date(data: Mapping[str, Any], name: str) -> date:
    value = data.get(name)
    if isinstance(value, date):
        return value
    if value is None:
        raise PlanError(name, "required (YYYY-MM-DD) / 必填（年-月-日）")
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise PlanError(name, f"{value!r} is not a date (YYYY-MM-DD) / 不是日期") from None


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlanError(where, f"{value!r} is not a whole number / 应为整数")
    if value < 0:
        raise PlanError(where, "must not be negative / 不能为负数")
    return value


def parse_plan(data: Any) -> PlanSpec:
    """The plan in `data` (a parsed YAML/JSON mapping), checked. PlanError names the field
    (dotted: goals.revenue, recruitment.email, personas[1]) and the reason in en/zh."""
    if not isinstance(data, Mapping):
        raise PlanError("file", "expected a mapping at the top / 顶层应为映射")
    unknown = [k for k in data if k not in _KEYS]
    if unknown:
        raise PlanError(str(unknown[0]), f"unknown field; known: {', '.join(_KEYS)} / 未知字段")
    slug = _text(data, "slug", limit=100)
    if not _SLUG.match(slug):
        raise PlanError(
            "slug", "lower-case letters, digits, - and _ only / 仅限小写字母、数字、-、_"
        )
    starts_on, ends_on = _date(data, "starts_on"), _date(data, "ends_on")
    if ends_on < starts_on:
        raise PlanError("ends_on", f"{ends_on} is before starts_on {starts_on} / 结束早于开始")
    try:
        code = currency(str(data.get("currency") or "CNY"))
    except FieldError as error:
        raise PlanError("currency", f"{error.reason} / 币种应为三位 ISO 4217 代码") from None
    raw_goals = data.get("goals")
    if not isinstance(raw_goals, Mapping) or not raw_goals:
        raise PlanError("goals", f"a mapping of at least one of {', '.join(GOALS)} / 至少一个目标")
    goals: dict[str, int] = {}
    for name, value in raw_goals.items():
        where = f"goals.{name}"
        if name not in GOALS:
            raise PlanError(where, f"unknown goal; one of {', '.join(GOALS)} / 未知目标")
        if name == "revenue":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise PlanError(where, f"{value!r} is not an amount / 不是金额")
            try:
                goals[name] = amount_from_major(str(value), code)
            except FieldError as error:
                raise PlanError(where, f"{error.reason} / 金额无效") from None
            if goals[name] < 0:
                raise PlanError(where, "must not be negative / 不能为负数")
        else:
            goals[name] = _count(value, where)
    raw_personas = data.get("personas") or []
    if not isinstance(raw_personas, list):
        raise PlanError("personas", f"a list of {', '.join(PERSONAS)} / 应为列表")
    for i, persona in enumerate(raw_personas):
        if persona not in PERSONAS:
            raise PlanError(
                f"personas[{i}]", f"{persona!r}: one of {', '.join(PERSONAS)} / 未知的画像"
            )
    raw_recruitment = data.get("recruitment") or {}
    if not isinstance(raw_recruitment, Mapping):
        raise PlanError("recruitment", "a mapping channel: advocates to recruit / 应为映射")
    recruitment: dict[str, int] = {}
    for channel, value in raw_recruitment.items():
        where = f"recruitment.{channel}"
        if not isinstance(channel, str) or not _CHANNEL.match(channel):
            raise PlanError(where, "a channel name: lower-case letters, digits, _ / 渠道名无效")
        if channel == UNKNOWN_CHANNEL:
            raise PlanError(where, "'unknown' is what the actual calls unattributed / 保留名称")
        recruitment[channel] = _count(value, where)
    return PlanSpec(
        slug=slug,
        name=_text(data, "name"),
        owner=_text(data, "owner"),
        starts_on=starts_on,
        ends_on=ends_on,
        currency=code,
        goals=goals,
        personas=tuple(raw_personas),
        recruitment=recruitment,
        notes=_text(data, "notes", required=False, limit=2000),
    )


def time_elapsed(starts_on: date, ends_on: date, today: date) -> float:
    """The share of the plan's days gone by the end of `today` (0 before, 1 after)."""
    days = (ends_on - starts_on).days + 1
    gone = (today - starts_on).days + 1
    return min(1.0, max(0.0, gone / days))


@dataclass(frozen=True)
class Progress:
    done: float | None  # actual / target (may exceed 1); None without a target
    status: str  # done / on_track / behind / not_started / no_target
    gap: float | None  # time elapsed - done, when behind
    reason: str  # English / 中文


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def progress(*, target: int, actual: int, elapsed: float, currency: str | None = None) -> Progress:
    """How a goal stands: done when the actual reached the target; behind when the percent
    done is below the percent of time elapsed; on track otherwise. With `currency`, target
    and actual are money in minor units and the shortfall is told in major units."""
    if target <= 0:
        return Progress(None, "no_target", None, "no target set / 未设定目标")
    done = actual / target
    if actual >= target:
        return Progress(done, "done", None, f"target reached ({_pct(done)}) / 已达成目标")
    if elapsed <= 0:
        return Progress(done, "not_started", None, "the plan has not started / 计划尚未开始")
    if done < elapsed:
        gap = elapsed - done
        short_by = round(target * elapsed) - actual
        short = f"{short_by / 100:,.2f} {currency}" if currency else str(short_by)
        return Progress(
            done,
            "behind",
            gap,
            f"behind: {_pct(done)} done with {_pct(elapsed)} of the time gone, "
            f"{_pct(gap)} short ({short} below pace) / "
            f"落后：已用时间 {_pct(elapsed)}，仅完成 {_pct(done)}，"
            f"差 {_pct(gap)}（比进度少 {short}）",
        )
    return Progress(
        done,
        "on_track",
        None,
        f"on track: {_pct(done)} done with {_pct(elapsed)} of the time gone / "
        f"进度正常：已完成 {_pct(done)}，时间已过 {_pct(elapsed)}",
    )
