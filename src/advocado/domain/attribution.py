"""Who referred a new customer, decided from what is known. No I/O.

A code entered at signup or checkout wins; otherwise the first click within the program's
attribution window, found through the visitor cookie the shop passes back. Existing customers
are never referred, and nobody refers themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class CodeSeen:
    code_id: int
    program_id: int
    advocate_id: int
    attribution_days: int
    active: bool


@dataclass(frozen=True)
class ClickSeen:
    code: CodeSeen
    clicked_at: datetime


@dataclass(frozen=True)
class Attribution:
    code: CodeSeen
    source: str  # code / click
    because_en: str
    because_zh: str


@dataclass(frozen=True)
class NotAttributed:
    because_en: str
    because_zh: str


def attribute(
    *,
    at: datetime,
    entered: CodeSeen | None,
    clicks: list[ClickSeen],
    existing_customer: bool,
) -> Attribution | NotAttributed:
    if existing_customer:
        return NotAttributed(
            "existing customer (ordered before): not a referral", "老客户（此前已下单），不计为推荐"
        )
    if entered is not None and entered.active:
        return Attribution(entered, "code", "referral code entered", "填写了推荐码")
    for click in sorted(clicks, key=lambda c: c.clicked_at):
        window = timedelta(days=click.code.attribution_days)
        if click.code.active and click.clicked_at <= at <= click.clicked_at + window:
            return Attribution(
                click.code,
                "click",
                f"first click on the link within {click.code.attribution_days} days",
                f"{click.code.attribution_days}天内首次点击推荐链接",
            )
    if entered is not None:
        return NotAttributed("the program is not running", "推荐活动未在进行中")
    return NotAttributed("no code and no click in the window", "无推荐码，归因期内也无点击")
