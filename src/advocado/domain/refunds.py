"""Whether a referral still qualifies after its order is refunded, in full or in part. No I/O.

The rule: what the friend kept (the order amount minus every refund of it so far) must still
meet the program's minimum order amount (and be more than nothing). A full refund never
qualifies. Rewards are not resized on a partial refund: a referral qualifies or it does not.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AfterRefund:
    still_qualifies: bool
    full: bool
    remaining: int
    en: str
    zh: str


def _money(minor: int) -> str:
    return f"{minor / 100:.2f}"


def after_refund(
    *, order_amount: int | None, refunded_before: int, refund: int | None, min_amount: int
) -> AfterRefund:
    """`refund` None means the whole order; `order_amount` None means an order we never saw
    (treated as refunded in full)."""
    if order_amount is None or refund is None or refunded_before + refund >= order_amount:
        return AfterRefund(False, True, 0, "order refunded in full", "订单已全额退款")
    remaining = order_amount - refunded_before - refund
    floor = max(min_amount, 1)
    if remaining >= floor:
        return AfterRefund(
            True,
            False,
            remaining,
            f"partial refund of {_money(refund)}: {_money(remaining)} kept still meets the "
            f"minimum {_money(min_amount)}",
            f"部分退款{_money(refund)}：剩余{_money(remaining)}仍达到门槛{_money(min_amount)}",
        )
    return AfterRefund(
        False,
        False,
        remaining,
        f"partial refund of {_money(refund)}: {_money(remaining)} kept is below the "
        f"minimum {_money(min_amount)}",
        f"部分退款{_money(refund)}：剩余{_money(remaining)}低于门槛{_money(min_amount)}",
    )
