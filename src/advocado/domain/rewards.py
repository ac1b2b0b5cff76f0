"""Reward rules, evaluated: which rewards one qualified referral earns, and why. No I/O.

Rules are combinable: every rule that applies grants its reward. Amounts are integers (points,
or minor units of money), rounded half up once, at the end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from advocado.domain.programs import CouponSpec, ProgramConfig, RewardRule


@dataclass(frozen=True)
class Trigger:
    """What qualified: the advocate's n-th successful referral in the program, at `at`."""

    nth: int
    at: datetime
    order_amount: int | None
    first_order: bool
    cause: str  # e.g. order:A-1001; seeds the surprise draw so a retry draws the same


@dataclass(frozen=True)
class Grant:
    rule: str
    to: str
    type: str
    amount: int
    hidden: bool
    coupon: CouponSpec | None
    gift: str | None
    valid_days: int | None
    because_en: str
    because_zh: str


def draw(cause: str, rule: str) -> float:
    """A number in [0, 1) fixed by the cause and rule: a surprise is won or lost once, and a
    retried event gets the same answer (no re-rolling by resending)."""
    digest = hashlib.sha256(f"{cause}|{rule}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _base(rule: RewardRule, trigger: Trigger) -> tuple[Decimal, str, str]:
    if rule.percent is not None:
        amount = Decimal(trigger.order_amount or 0) * Decimal(str(rule.percent)) / 100
        return amount, f"{rule.percent:g}% of the order", f"订单金额的{rule.percent:g}%"
    if rule.tiers:
        index = min(trigger.nth, len(rule.tiers)) - 1
        return (
            Decimal(rule.tiers[index]),
            f"tier of referral #{trigger.nth}",
            f"第{trigger.nth}次推荐的阶梯奖励",
        )
    amount = Decimal(rule.amount)
    if rule.step_percent and trigger.nth > 1:
        # Compounding grows without end (1.1^500 overflows any column): it stops at the cap.
        cap = Decimal(rule.max_amount if rule.max_amount is not None else rule.amount * 10)
        step = 1 + Decimal(str(rule.step_percent)) / 100
        amount = min(amount * step ** min(trigger.nth - 1, 1000), cap)
        capped = amount == cap
        return (
            amount,
            f"{rule.amount} +{rule.step_percent:g}% per referral after the first "
            f"(referral #{trigger.nth})" + (f", capped at {cap}" if capped else ""),
            f"首次{rule.amount}，之后每次递增{rule.step_percent:g}%（第{trigger.nth}次）"
            + (f"，上限{cap}" if capped else ""),
        )
    return amount, "fixed", "固定奖励"


def evaluate(
    program: ProgramConfig,
    trigger: Trigger,
    *,
    surprises_won: Mapping[str, int] | None = None,
) -> list[Grant]:
    """The grants of every rule that applies. `surprises_won` counts, per rule, the hidden
    rewards already won in the program (their budget)."""
    won = surprises_won or {}
    grants = []
    for rule in program.rules:
        if rule.on_nth and trigger.nth not in rule.on_nth:
            continue
        if rule.every_nth and trigger.nth % rule.every_nth:
            continue
        en: list[str] = []
        zh: list[str] = []
        if rule.on_nth:
            en.append(f"milestone: referral #{trigger.nth}")
            zh.append(f"里程碑：第{trigger.nth}次成功推荐")
        if rule.every_nth:
            en.append(f"stage: every {rule.every_nth} referrals")
            zh.append(f"阶段奖励：每{rule.every_nth}次推荐")
        if rule.hidden:
            if not trigger.first_order:
                continue
            if rule.surprise_budget is not None and won.get(rule.id, 0) >= rule.surprise_budget:
                continue
            if draw(trigger.cause, rule.id) >= (rule.surprise_probability or 0):
                continue
            en.append(f"surprise won on the friend's first order (chance "
                      f"{rule.surprise_probability:.0%})")  # fmt: skip
            zh.append(f"好友首单解锁隐藏惊喜（概率{rule.surprise_probability:.0%}）")
        amount = 0
        if rule.type in ("points", "credit"):
            value, base_en, base_zh = _base(rule, trigger)
            en.append(base_en)
            zh.append(base_zh)
            for multiplier in rule.multipliers:
                if multiplier.start <= trigger.at < multiplier.end:
                    value *= Decimal(str(multiplier.factor))
                    en.append(f"×{multiplier.factor:g} {multiplier.label}".rstrip())
                    zh.append(f"×{multiplier.factor:g} {multiplier.label}".rstrip())
            amount = _round(value)
            if amount <= 0:
                continue
        elif rule.type == "coupon" and rule.coupon is not None:
            amount = rule.coupon.amount_off
        grants.append(
            Grant(
                rule=rule.id,
                to=rule.to,
                type=rule.type,
                amount=amount,
                hidden=rule.hidden,
                coupon=rule.coupon,
                gift=rule.gift,
                valid_days=rule.valid_days,
                because_en=f"rule {rule.id}: " + "; ".join(en or ["applies"]),
                because_zh=f"规则 {rule.id}：" + "；".join(zh or ["适用"]),
            )
        )
    return grants


def money_value(grant: Grant) -> int:
    """What a grant costs the program budget (minor units): credit and coupon face value."""
    return grant.amount if grant.type in ("credit", "coupon") else 0
