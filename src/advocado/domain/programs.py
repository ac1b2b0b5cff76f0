"""A referral program as data: parsed and checked from YAML/JSON, no I/O.

The file format is documented line by line in examples/programs/double-sided.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

QUALIFYING_EVENTS = ("signup", "first_order", "order")
REWARD_TYPES = ("points", "credit", "coupon", "gift")
RECIPIENTS = ("referrer", "referee", "level2")
FRAUD_ACTIONS = ("off", "review", "reject")

SECOND_LEVEL_WARNING = (
    "Two-level referral rewards the referrer's referrer. Paying on indirect recruits can be "
    "unlawful pyramid selling in China (禁止传销条例 art. 7) and elsewhere; keep it off unless "
    "your counsel has approved it. / 二级分销：向间接推荐人发放奖励在中国可能构成传销"
    "（《禁止传销条例》第七条），请在法务确认后再开启。"
)

# rule -> default action; each can be set to off / review / reject in the program's `fraud:`.
FRAUD_DEFAULTS: dict[str, str] = {
    "self_referral": "reject",  # the friend is the advocate (same customer)
    "same_email": "reject",  # normalised email: case, dots, +tags
    "same_phone": "reject",
    "same_payment": "reject",  # same payment fingerprint
    "same_device": "review",  # same visitor cookie
    "same_ip_user_agent": "review",  # an office shares an IP: hold, don't reject
    "similar_identity": "review",  # names or emails alike
    "velocity": "review",
    "disposable_email": "reject",
    "blocklist": "reject",
    "leaked_code": "review",
}


class ProgramError(ValueError):
    """`field` of the program file is wrong, for `reason`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class CouponSpec:
    amount_off: int = 0  # minor units; 满100减30 is amount_off 3000, min_spend 10000
    percent_off: int = 0  # 10 = 10 % off
    min_spend: int = 0
    valid_days: int = 30


@dataclass(frozen=True)
class Multiplier:
    start: datetime
    end: datetime
    factor: float
    label: str


@dataclass(frozen=True)
class RewardRule:
    id: str
    to: str
    type: str
    amount: int = 0  # points, or minor units of credit
    percent: float | None = None  # instead of amount: percent of the qualifying order
    tiers: tuple[int, ...] = ()  # amount of the 1st, 2nd, … referral (the last repeats)
    step_percent: float = 0.0  # each next referral + this % over the previous one
    max_amount: int | None = None  # growth stops here (default with step_percent: 10 × amount)
    on_nth: tuple[int, ...] = ()  # milestones: only the advocate's n-th referral(s)
    every_nth: int | None = None  # stages: every k-th referral
    multipliers: tuple[Multiplier, ...] = ()
    surprise_probability: float | None = None  # hidden reward: the chance to win it
    surprise_budget: int | None = None  # at most this many won in the program
    coupon: CouponSpec | None = None
    gift: str | None = None
    valid_days: int | None = None  # points / credit expire after this many days
    label: str = ""

    @property
    def hidden(self) -> bool:
        return self.surprise_probability is not None


@dataclass(frozen=True)
class ProgramConfig:
    slug: str
    name: str
    currency: str
    starts_at: datetime
    ends_at: datetime | None
    landing_url: str
    attribution_days: int = 30
    qualifying_event: str = "first_order"
    min_amount: int = 0
    hold_days: int = 7
    cap_per_advocate_per_month: int | None = None
    budget: int | None = None  # minor units of credit and coupon face value
    second_level: bool = False
    rules: tuple[RewardRule, ...] = ()
    fraud: Mapping[str, str] = field(default_factory=lambda: dict(FRAUD_DEFAULTS))
    velocity_per_hour: int = 5
    leaked_unique_clicks_per_day: int = 300
    blocklist_emails: frozenset[str] = frozenset()
    blocklist_domains: frozenset[str] = frozenset()
    blocklist_ips: frozenset[str] = frozenset()

    def active_at(self, moment: datetime) -> bool:
        return self.starts_at <= moment and (self.ends_at is None or moment < self.ends_at)


def _int(data: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProgramError(f"{where}{key}", f"expected a whole number ≥ 0, got {value!r}")
    return value


def _moment(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ProgramError(where, f"not a date or time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _coupon(data: Any, where: str) -> CouponSpec:
    if not isinstance(data, Mapping):
        raise ProgramError(where, "expected amount_off or percent_off, min_spend, valid_days")
    spec = CouponSpec(
        amount_off=_int(data, "amount_off", f"{where}.", 0) or 0,
        percent_off=_int(data, "percent_off", f"{where}.", 0) or 0,
        min_spend=_int(data, "min_spend", f"{where}.", 0) or 0,
        valid_days=_int(data, "valid_days", f"{where}.", 30) or 30,
    )
    if bool(spec.amount_off) == bool(spec.percent_off):
        raise ProgramError(where, "give exactly one of amount_off or percent_off")
    if spec.percent_off > 100:
        raise ProgramError(f"{where}.percent_off", "at most 100")
    return spec


def _rule(data: Any, index: int, ids: set[str]) -> RewardRule:
    where = f"rewards[{index}]"
    if not isinstance(data, Mapping):
        raise ProgramError(where, "expected a mapping")
    rule_id = str(data.get("id") or "").strip()
    if not rule_id:
        raise ProgramError(f"{where}.id", "missing (a short name, unique in the program)")
    if rule_id in ids:
        raise ProgramError(f"{where}.id", f"{rule_id!r} used twice")
    ids.add(rule_id)
    to, kind = data.get("to"), data.get("type")
    if to not in RECIPIENTS:
        raise ProgramError(f"{where}.to", f"one of {', '.join(RECIPIENTS)}")
    if kind not in REWARD_TYPES:
        raise ProgramError(f"{where}.type", f"one of {', '.join(REWARD_TYPES)}")
    multipliers = []
    for n, item in enumerate(data.get("multipliers") or []):
        at = f"{where}.multipliers[{n}]"
        start, end = _moment(item.get("from"), f"{at}.from"), _moment(item.get("to"), f"{at}.to")
        factor = item.get("factor")
        if start is None or end is None or end <= start:
            raise ProgramError(at, "needs from < to")
        if not isinstance(factor, int | float) or factor <= 0:
            raise ProgramError(f"{at}.factor", "a number > 0, e.g. 2 for double points")
        multipliers.append(Multiplier(start, end, float(factor), str(item.get("label", ""))))
    surprise = data.get("surprise")
    probability = budget = None
    if surprise is not None:
        probability = surprise.get("probability")
        if not isinstance(probability, int | float) or not 0 < probability <= 1:
            raise ProgramError(f"{where}.surprise.probability", "a number in (0, 1]")
        budget = _int(surprise, "budget", f"{where}.surprise.")
    percent = data.get("percent")
    if percent is not None and (not isinstance(percent, int | float) or not 0 < percent <= 100):
        raise ProgramError(f"{where}.percent", "a number in (0, 100]")
    rule = RewardRule(
        id=rule_id,
        to=to,
        type=kind,
        amount=_int(data, "amount", f"{where}.", 0) or 0,
        percent=float(percent) if percent is not None else None,
        tiers=tuple(int(t) for t in data.get("tiers") or ()),
        step_percent=float(data.get("step_percent") or 0),
        max_amount=_int(data, "max_amount", f"{where}."),
        on_nth=tuple(int(n) for n in data.get("on_nth") or ()),
        every_nth=_int(data, "every_nth", f"{where}."),
        multipliers=tuple(multipliers),
        surprise_probability=float(probability) if probability is not None else None,
        surprise_budget=budget,
        coupon=_coupon(data.get("coupon"), f"{where}.coupon") if kind == "coupon" else None,
        gift=str(data["gift"]) if data.get("gift") else None,
        valid_days=_int(data, "valid_days", f"{where}."),
        label=str(data.get("label") or ""),
    )
    if kind in ("points", "credit") and not (rule.amount or rule.percent or rule.tiers):
        raise ProgramError(where, "points/credit need amount, percent or tiers")
    if kind == "gift" and not rule.gift:
        raise ProgramError(f"{where}.gift", "name the gift (e.g. '保温杯 thermos')")
    if rule.every_nth == 0:
        raise ProgramError(f"{where}.every_nth", "at least 1")
    return rule


def parse_program(data: Any) -> ProgramConfig:
    """A checked ProgramConfig from the parsed file; ProgramError naming the field if wrong."""
    if not isinstance(data, Mapping):
        raise ProgramError("program", "expected a mapping (see examples/programs/)")
    slug = str(data.get("slug") or "").strip()
    if not slug or not slug.replace("-", "").replace("_", "").isalnum() or len(slug) > 100:
        raise ProgramError("slug", "letters, digits, '-' or '_' (up to 100)")
    landing = str(data.get("landing_url") or "")
    if not landing.startswith(("https://", "http://")):
        raise ProgramError("landing_url", "an http(s) URL the short link redirects to")
    currency = str(data.get("currency") or "").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ProgramError("currency", "an ISO 4217 code such as CNY")
    starts = _moment(data.get("starts_at"), "starts_at")
    if starts is None:
        raise ProgramError("starts_at", "missing")
    ends = _moment(data.get("ends_at"), "ends_at")
    if ends is not None and ends <= starts:
        raise ProgramError("ends_at", "must be after starts_at")
    qualify = data.get("qualify") or {}
    event = qualify.get("event", "first_order")
    if event not in QUALIFYING_EVENTS:
        raise ProgramError("qualify.event", f"one of {', '.join(QUALIFYING_EVENTS)}")
    caps = data.get("caps") or {}
    second = data.get("second_level") or {}
    enabled = bool(second.get("enabled")) if isinstance(second, Mapping) else bool(second)
    ids: set[str] = set()
    rules = tuple(_rule(item, n, ids) for n, item in enumerate(data.get("rewards") or []))
    if not rules:
        raise ProgramError("rewards", "at least one reward rule")
    if any(rule.to == "level2" for rule in rules) and not enabled:
        raise ProgramError("rewards", "a level2 rule needs second_level.enabled: true")
    fraud_in = dict(data.get("fraud") or {})
    fraud = dict(FRAUD_DEFAULTS)
    for name, value in (fraud_in.get("rules") or {}).items():
        if name not in FRAUD_DEFAULTS:
            raise ProgramError(f"fraud.rules.{name}", f"unknown rule ({', '.join(FRAUD_DEFAULTS)})")
        if value not in FRAUD_ACTIONS:
            raise ProgramError(f"fraud.rules.{name}", f"one of {', '.join(FRAUD_ACTIONS)}")
        fraud[name] = value
    block = fraud_in.get("blocklist") or {}
    return ProgramConfig(
        slug=slug,
        name=str(data.get("name") or slug),
        currency=currency,
        starts_at=starts,
        ends_at=ends,
        landing_url=landing,
        attribution_days=_int(data, "attribution_days", "", 30) or 30,
        qualifying_event=event,
        min_amount=_int(qualify, "min_amount", "qualify.", 0) or 0,
        hold_days=_int(data, "hold_days", "", 7) or 0,
        cap_per_advocate_per_month=_int(caps, "per_advocate_per_month", "caps."),
        budget=_int(caps, "budget", "caps."),
        second_level=enabled,
        rules=rules,
        fraud=fraud,
        velocity_per_hour=_int(fraud_in, "velocity_per_hour", "fraud.", 5) or 5,
        leaked_unique_clicks_per_day=_int(fraud_in, "leaked_unique_clicks_per_day", "fraud.", 300)
        or 300,
        blocklist_emails=frozenset(e.lower() for e in block.get("emails") or ()),
        blocklist_domains=frozenset(d.lower() for d in block.get("domains") or ()),
        blocklist_ips=frozenset(str(i) for i in block.get("ips") or ()),
    )
