"""Physical gift rewards: the fulfilment queue and marking a gift shipped.

A gift reward is a `rewards` row of kind "gift"; it is shipped at most once, because the
shipment row's unique key is the reward. The queue lists live gifts (not clawed back) with no
shipment, oldest first, saying whether each is ready: a gift is shipped only after its hold
(the refund window) has ended, since a parcel cannot be clawed back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from advocado import clock
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import Customer, GiftShipment, Program, Reward


class GiftError(ValueError):
    """A gift that cannot be marked shipped: the field and the reason (English / 中文)."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.status = status


def _view(reward: Reward, customer: Customer, slug: str, shipment: GiftShipment | None) -> dict:
    now = clock.now()
    ready = reward.available_at <= now
    return {
        "reward_id": reward.id,
        "program": slug,
        "customer": customer.external_id,
        "name": customer.name,
        "gift": (reward.details or {}).get("gift"),
        "rule": reward.rule,
        "won_at": reward.created_at.isoformat(),
        "ship_from": reward.available_at.isoformat(),
        "ready": ready,
        "because": {
            "en": "the hold has ended: ship it" if ready else "still in the refund hold",
            "zh": "保留期已过，可以发货" if ready else "仍在退款保留期内",
        },
        "shipped": None
        if shipment is None
        else {
            "tracking": shipment.tracking,
            "by": shipment.shipped_by,
            "at": shipment.shipped_at.isoformat(),
        },
    }


def pending_gifts(engine: Engine, *, program_slug: str | None = None) -> list[dict[str, Any]]:
    """Gifts won and not shipped (nor clawed back), oldest first."""
    with read_only(engine) as session:
        query = (
            select(Reward, Customer, Program.slug)
            .join(Customer, Customer.id == Reward.beneficiary_id)
            .join(Program, Program.id == Reward.program_id)
            .outerjoin(GiftShipment, GiftShipment.reward_id == Reward.id)
            .where(Reward.kind == "gift", Reward.reversed_at.is_(None), GiftShipment.id.is_(None))
            .order_by(Reward.id)
        )
        if program_slug:
            query = query.where(Program.slug == program_slug)
        return [_view(r, c, slug, None) for r, c, slug in session.execute(query)]


def mark_shipped(
    engine: Engine, *, reward_id: int, tracking: str, shipped_by: str | None = None
) -> dict[str, Any]:
    """Record the gift as shipped, once: repeating it with the same tracking note answers
    with the first (`duplicate`); a different note for a shipped gift is an error (409)."""
    tracking = tracking.strip()
    if not tracking or len(tracking) > 500:
        raise GiftError("tracking", "a tracking note of 1 to 500 characters / 请填写物流单号或说明")
    with unit_of_work(engine) as session:
        found = session.execute(
            select(Reward, Customer, Program.slug)
            .join(Customer, Customer.id == Reward.beneficiary_id)
            .join(Program, Program.id == Reward.program_id)
            .where(Reward.id == reward_id)
        ).first()
        if found is None or found[0].kind != "gift":
            raise GiftError("reward_id", f"no gift reward {reward_id} / 没有该礼品奖励", 404)
        reward, customer, slug = found
        if reward.reversed_at is not None:
            raise GiftError(
                "reward_id",
                f"clawed back ({reward.reversal_reason}): do not ship / 奖励已撤回，请勿发货",
                409,
            )
        if reward.available_at > clock.now():
            raise GiftError(
                "reward_id",
                f"still in the refund hold until {reward.available_at:%Y-%m-%d %H:%M} UTC / "
                "仍在退款保留期内，暂不可发货",
                409,
            )
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        created = session.scalar(
            dialect.insert(GiftShipment)
            .values(
                reward_id=reward.id,
                tracking=tracking,
                shipped_by=shipped_by,
                shipped_at=clock.now(),
            )
            .on_conflict_do_nothing()
            .returning(GiftShipment.id)
        )
        shipment = session.scalar(select(GiftShipment).where(GiftShipment.reward_id == reward.id))
        assert shipment is not None
        if created is None and shipment.tracking != tracking:
            raise GiftError(
                "tracking",
                f"already shipped with {shipment.tracking!r} / 该礼品已发货",
                409,
            )
        view = _view(reward, customer, slug, shipment)
    return {**view, "duplicate": created is None}
