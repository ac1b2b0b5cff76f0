"""What an advocate is told at each step, in Chinese and English. No I/O."""

from __future__ import annotations

from dataclasses import dataclass

from advocado.domain.programs import ProgramConfig, RewardRule

SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$", "TWD": "NT$"}


@dataclass(frozen=True)
class Text:
    en: str
    zh: str


def money(amount: int, currency: str) -> str:
    value = amount / 100
    number = f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
    return f"{SYMBOLS.get(currency, currency + ' ')}{number}"


def _plain(amount: int) -> str:
    """满100减30: Chinese coupon names give the number alone."""
    return f"{amount / 100:g}"


def mask(name: str | None) -> str:
    """A friend's name as the advocate sees it: the first character, the rest hidden."""
    name = (name or "").strip()
    if not name:
        return "your friend / 您的好友"
    return name[0] + "*" * max(1, min(len(name) - 1, 3))


def describe(rule: RewardRule, currency: str, amount: int | None = None) -> Text:
    if rule.type == "coupon" and rule.coupon:
        c = rule.coupon
        if c.percent_off:
            off_en, off_zh = f"{c.percent_off}% off", f"{(100 - c.percent_off) / 10:g}折"
        else:
            off_en = f"{money(c.amount_off, currency)} off"
            off_zh = f"减{_plain(c.amount_off)}"
        if c.min_spend:
            return Text(
                f"{off_en} orders of {money(c.min_spend, currency)}+ coupon",
                f"满{_plain(c.min_spend)}{off_zh}优惠券",
            )
        return Text(f"{off_en} coupon (no minimum)", f"{off_zh}无门槛券")
    if rule.type == "points":
        n = amount if amount is not None else rule.amount
        return Text(f"{n} points", f"{n}积分")
    if rule.type == "credit":
        n = amount if amount is not None else rule.amount
        return Text(f"{money(n, currency)} store credit", f"{money(n, currency)}储值金")
    return Text(f"gift: {rule.gift}", f"礼品：{rule.gift}")


def referrer_offer(program: ProgramConfig) -> Text:
    """The advocate's visible reward (hidden surprises are never announced)."""
    shown = [r for r in program.rules if r.to == "referrer" and not r.hidden and not r.on_nth]
    if not shown:
        return Text("your reward", "奖励")
    parts = [describe(rule, program.currency) for rule in shown]
    return Text(" + ".join(p.en for p in parts), "+".join(p.zh for p in parts))


def signed_up(friend: str, program: ProgramConfig) -> Text:
    offer = referrer_offer(program)
    step_en = {
        "signup": "",
        "first_order": "; one first order to go to unlock your ",
        "order": "; one order to go to unlock your ",
    }[program.qualifying_event]
    step_zh = {
        "signup": "",
        "first_order": "，还差1笔首单即可解锁",
        "order": "，还差1笔消费即可解锁",
    }[program.qualifying_event]
    if program.min_amount and program.qualifying_event != "signup":
        step_en = step_en.replace(
            "order to go", f"order of {money(program.min_amount, program.currency)}+ to go"
        )
        step_zh = step_zh.replace(
            "消费", f"满{money(program.min_amount, program.currency)}的消费"
        ).replace("首单", f"满{money(program.min_amount, program.currency)}的首单")
    return Text(
        f"{friend} signed up{step_en}{offer.en if step_en else ''}",
        f"您推荐的{friend}已注册{step_zh}{offer.zh if step_zh else ''}",
    )


def rewarded(friend: str, what: Text, available_on: str, hold_days: int) -> Text:
    if hold_days:
        return Text(
            f"{friend} completed a qualifying order: your {what.en} is unlocked, usable from "
            f"{available_on} (after the {hold_days}-day refund window)",
            f"{friend}已完成消费，您的{what.zh}已解锁，{available_on}起可用（{hold_days}天退款期后）",
        )
    return Text(
        f"{friend} completed a qualifying order: your {what.en} is ready",
        f"{friend}已完成消费，您的{what.zh}已到账",
    )


def surprise(friend: str, what: Text) -> Text:
    return Text(
        f"Surprise! {friend}'s first order unlocked a hidden reward for you: {what.en}",
        f"惊喜！{friend}的首单为您解锁了隐藏奖励：{what.zh}",
    )


def rejected(friend: str, reason_en: str, reason_zh: str) -> Text:
    return Text(
        f"The referral of {friend} was not counted: {reason_en}",
        f"{friend}的推荐未被计入：{reason_zh}",
    )


def clawed_back(friend: str) -> Text:
    return Text(
        f"{friend}'s order was refunded within the refund window, so its reward was withdrawn",
        f"{friend}的订单在退款期内退款，相应奖励已撤回",
    )
