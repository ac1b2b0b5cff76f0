"""Small referral-program activity for the demo brand, so the dashboard's funnel, K-factor,
CLV and top advocates are not empty: one double-sided program, codes for some promoters (those
who bought most recently), link clicks (a few by bots), and friends' signups, first orders, a
refund and a throwaway mailbox, all sent through the real event path
(services.referrals.ingest_event)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from advocado.services import programs, referrals
from advocado.services.clicks import fingerprint, hash_ip, ip_salt
from advocado.store.db import unit_of_work
from advocado.store.models import Click, Customer, Order, Response

PROGRAM = "bring-a-friend"
ADVOCATES = 24
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0"
BOT_UA = "Googlebot/2.1 (+http://www.google.com/bot.html)"


def program_config(starts_at: datetime) -> dict[str, Any]:
    return {
        "slug": PROGRAM,
        "name": "老带新 双向奖励 / Bring a friend",
        "currency": "CNY",
        "starts_at": starts_at.date().isoformat(),
        "landing_url": "https://kettlecraft.example.com/welcome",
        "attribution_days": 30,
        "qualify": {"event": "first_order", "min_amount": 0},
        "hold_days": 7,
        "rewards": [
            {"id": "friend-welcome", "to": "referee", "type": "coupon",
             "label": "20元无门槛券 / ¥20 off",
             "coupon": {"amount_off": 2000, "min_spend": 0, "valid_days": 30}},
            {"id": "referrer-voucher", "to": "referrer", "type": "coupon",
             "label": "满100减30 / ¥30 off orders of ¥100+",
             "coupon": {"amount_off": 3000, "min_spend": 10000, "valid_days": 30}},
        ],
        "fraud": {"rules": {"same_ip_user_agent": "review", "disposable_email": "reject"}},
    }  # fmt: skip


def load_referral_activity(engine: Engine, *, seed: int, today: datetime) -> int:
    """Returns how many friends signed up. Needs the demo's customers and responses."""
    rng = random.Random(seed + 4)
    start = today - timedelta(days=120)
    with unit_of_work(engine) as session:
        programs.apply_program(session, program_config(start), actor="demo")
        promoters = list(
            session.scalars(
                select(Customer.external_id)
                .join(Response, Response.customer_id == Customer.id)
                .outerjoin(Order, Order.customer_id == Customer.id)
                .where(Response.score >= 9)
                .group_by(Customer.id, Customer.external_id)
                .order_by(func.max(Order.placed_at).desc().nulls_last(), Customer.id)
                .limit(ADVOCATES)
            )
        )
        codes = {
            who: programs.code_for(session, program_slug=PROGRAM, customer_external_id=who)
            for who in promoters
        }
        # Friends are demo customers who have not bought yet (their signup arrives as an
        # event), so the demo's customer count stays what was asked for.
        pool = list(
            session.scalars(
                select(Customer.external_id)
                .where(~Customer.id.in_(select(Order.customer_id)))
                .where(Customer.external_id.not_in(promoters))
                .order_by(Customer.id)
            )
        )
        rng.shuffle(pool)
        for code in codes.values():
            code.created_at = start + timedelta(days=rng.randint(0, 30))
    salt = ip_salt(engine)
    signups: list[tuple[str, str, str, datetime]] = []
    clicks: list[Click] = []
    for n, (who, code) in enumerate(codes.items()):
        for k in range(rng.randint(0, 9)):
            ip = f"198.51.{n}.{k + 10}"
            at = code.created_at + timedelta(days=rng.randint(1, 80), minutes=rng.randint(0, 900))
            bot = rng.random() < 0.1
            agent = BOT_UA if bot else UA
            visitor = f"demo-{n}-{k}"
            digest = hash_ip(ip, salt)
            clicks.append(Click(code_id=code.id, clicked_at=at, visitor_id=visitor,
                                ip_hash=digest, fingerprint=fingerprint(digest, agent),
                                user_agent=agent, referrer=None, is_bot=bot))  # fmt: skip
            if not bot and rng.random() < 0.45 and at < today - timedelta(days=2):
                signups.append((who, code.code, visitor, at + timedelta(hours=rng.randint(1, 40))))
    with unit_of_work(engine) as session:
        session.add_all(clicks)
    for i, (_who, code_value, visitor, at) in enumerate(signups[: len(pool)]):
        friend = pool[i]
        throwaway = f"{friend}@mailinator.com" if i % 11 == 5 else None  # rejected: shows why
        referrals.ingest_event(engine, referrals.EventIn(
            event_id=f"demo-signup-{i}", type="signup", occurred_at=at,
            customer_external_id=friend, email=throwaway, referral_code=code_value,
            visitor_id=visitor, ip=f"203.0.113.{i % 250}", user_agent=UA))  # fmt: skip
        if rng.random() < 0.7:
            order_at = at + timedelta(days=rng.randint(0, 10))
            if order_at >= today:
                continue
            referrals.ingest_event(engine, referrals.EventIn(
                event_id=f"demo-order-{i}", type="order", occurred_at=order_at,
                customer_external_id=friend, order_external_id=f"demo-fo-{i}",
                amount=rng.choice((8900, 12900, 19900, 39900)), currency="CNY"))  # fmt: skip
            if i % 9 == 4:
                referrals.ingest_event(engine, referrals.EventIn(
                    event_id=f"demo-refund-{i}", type="refund",
                    occurred_at=order_at + timedelta(days=2), customer_external_id=friend,
                    order_external_id=f"demo-fo-{i}"))  # fmt: skip
    return min(len(signups), len(pool))
