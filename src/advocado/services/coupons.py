"""Coupons: issued once per reward, validated at checkout, redeemed exactly once.

Redemption is a single conditional UPDATE (… WHERE status = 'active'): of two racing
redemptions the database lets exactly one change the row; the other sees 0 rows changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain import codes
from advocado.domain.programs import CouponSpec
from advocado.store.db import unit_of_work
from advocado.store.models import Coupon, Customer


def issue(
    session: Session,
    *,
    reward_id: int,
    customer_id: int,
    spec: CouponSpec,
    currency: str,
    valid_from: datetime,
) -> Coupon | None:
    """The reward's coupon, once (reward_id is unique); None if it already exists."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for _attempt in range(5):
        statement = (
            dialect.insert(Coupon)
            .values(
                code=codes.new_code("C", 10),
                reward_id=reward_id,
                customer_id=customer_id,
                currency=currency,
                amount_off=spec.amount_off,
                percent_off=spec.percent_off,
                min_spend=spec.min_spend,
                valid_from=valid_from,
                expires_at=valid_from + timedelta(days=spec.valid_days),
                status="active",
                created_at=clock.now(),
            )
            .on_conflict_do_nothing()
            .returning(Coupon.id)
        )
        coupon_id = session.scalar(statement)
        if coupon_id is not None:
            return session.get(Coupon, coupon_id)
        if session.scalar(select(Coupon.id).where(Coupon.reward_id == reward_id)) is not None:
            return None
    raise RuntimeError("could not draw a free coupon code in 5 tries")


@dataclass(frozen=True)
class Check:
    ok: bool
    discount: int = 0
    reason_en: str = ""
    reason_zh: str = ""
    coupon: Coupon | None = None

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"valid": self.ok, "discount": self.discount}
        if self.coupon is not None:
            found["currency"] = self.coupon.currency
            found["expires_at"] = self.coupon.expires_at.isoformat()
        if not self.ok:
            found["reason"] = {"en": self.reason_en, "zh": self.reason_zh}
        return found


def _discount(coupon: Coupon, cart_amount: int) -> int:
    if coupon.percent_off:
        return cart_amount * coupon.percent_off // 100
    return min(coupon.amount_off, cart_amount)


def _check(
    session: Session, code: str, customer_external_id: str, cart_amount: int, currency: str | None
) -> Check:
    coupon = session.scalar(select(Coupon).where(Coupon.code == codes.normalise(code)))
    if coupon is None:
        return Check(False, 0, "no such coupon", "优惠券不存在")
    owner = session.scalar(select(Customer.external_id).where(Customer.id == coupon.customer_id))
    now = clock.now()
    if owner != customer_external_id:
        return Check(
            False, 0, "this coupon belongs to another customer", "该优惠券属于其他用户", coupon
        )
    if coupon.status == "redeemed":
        return Check(
            False,
            0,
            f"already used (order {coupon.redeemed_order})",
            f"已使用（订单{coupon.redeemed_order}）",
            coupon,
        )
    if coupon.status == "void":
        return Check(
            False, 0, f"withdrawn: {coupon.void_reason}", f"已作废：{coupon.void_reason}", coupon
        )
    if now < coupon.valid_from:
        day = f"{coupon.valid_from:%Y-%m-%d %H:%M} UTC"
        return Check(
            False,
            0,
            f"usable from {day} (after the refund window)",
            f"{day}起可用（退款期后）",
            coupon,
        )
    if now >= coupon.expires_at:
        return Check(False, 0, "expired", "已过期", coupon)
    if currency and currency.upper() != coupon.currency:
        return Check(
            False, 0, f"coupon is in {coupon.currency}", f"优惠券币种为{coupon.currency}", coupon
        )
    if cart_amount < coupon.min_spend:
        return Check(
            False,
            0,
            f"needs a cart of at least {coupon.min_spend} (minor units)",
            f"需满{coupon.min_spend / 100:g}元可用",
            coupon,
        )
    return Check(True, _discount(coupon, cart_amount), coupon=coupon)


def validate(
    engine: Engine,
    *,
    code: str,
    customer_external_id: str,
    cart_amount: int,
    currency: str | None = None,
) -> Check:
    with unit_of_work(engine) as session:
        return _check(session, code, customer_external_id, cart_amount, currency)


def redeem(
    engine: Engine,
    *,
    code: str,
    customer_external_id: str,
    cart_amount: int,
    order_external_id: str,
    currency: str | None = None,
) -> Check:
    """Use the coupon on an order, atomically. The same order redeeming again is told it
    succeeded (a retry); any other second redemption fails."""
    with unit_of_work(engine) as session:
        check = _check(session, code, customer_external_id, cart_amount, currency)
        coupon = check.coupon
        if coupon is not None and coupon.status == "redeemed":
            if coupon.redeemed_order == order_external_id:
                return Check(True, coupon.discount or 0, coupon=coupon)
            return check
        if not check.ok or coupon is None:
            return check
        changed = session.execute(
            update(Coupon)
            .where(Coupon.id == coupon.id, Coupon.status == "active")
            .values(
                status="redeemed",
                redeemed_at=clock.now(),
                redeemed_order=order_external_id,
                discount=check.discount,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            session.refresh(coupon)
            if coupon.redeemed_order == order_external_id:
                return Check(True, coupon.discount or 0, coupon=coupon)
            return Check(
                False,
                0,
                f"already used (order {coupon.redeemed_order})",
                f"已使用（订单{coupon.redeemed_order}）",
                coupon,
            )
        return check


def void(session: Session, coupon: Coupon, *, reason: str) -> bool:
    """Withdraw an unused coupon; False if it was already used (then it stands)."""
    changed = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.status == "active")
        .values(status="void", void_reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    return changed == 1
