"""The referral engine on the database: attribution, statuses, rewards, holds, clawback,
fraud holds and the review queue; and exactly-once under retries and races."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from advocado import clock
from advocado.services import coupons, programs, referrals
from advocado.services.ledger import balances
from advocado.services.referrals import EventIn, ingest_event
from advocado.store.db import unit_of_work
from advocado.store.models import (
    Click,
    Coupon,
    Customer,
    LedgerEntry,
    Referral,
    ReferralEvent,
    Reward,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def program(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": "friends",
        "name": "Friends",
        "currency": "CNY",
        "starts_at": "2026-01-01",
        "landing_url": "https://shop.example.com/welcome",
        "attribution_days": 30,
        "qualify": {"event": "first_order", "min_amount": 5000},
        "hold_days": 7,
        "rewards": [
            {
                "id": "friend-coupon",
                "to": "referee",
                "type": "coupon",
                "coupon": {"amount_off": 2000, "valid_days": 30},
            },
            {
                "id": "referrer-coupon",
                "to": "referrer",
                "type": "coupon",
                "coupon": {"amount_off": 3000, "min_spend": 10000, "valid_days": 30},
            },
            {
                "id": "referrer-points",
                "to": "referrer",
                "type": "points",
                "amount": 50,
                "step_percent": 10,
            },
        ],
    }
    data.update(changes)
    return data


def setup(engine: Engine, **changes: Any) -> str:
    """Applies the program; returns advocate adv-1's code."""
    with unit_of_work(engine) as session:
        programs.apply_program(session, program(**changes))
        session.flush()
        return programs.code_for(session, program_slug="friends", customer_external_id="adv-1").code


def signup(engine: Engine, friend: str, code: str | None, **fields: Any) -> dict[str, Any]:
    fields.setdefault("occurred_at", T0)
    fields.setdefault("event_id", f"signup-{friend}")
    return ingest_event(
        engine,
        EventIn(type="signup", customer_external_id=friend, referral_code=code, **fields),
    )


def order(engine: Engine, friend: str, order_id: str, amount: int = 15000, **f: Any) -> dict:
    f.setdefault("occurred_at", T0 + timedelta(hours=2))
    f.setdefault("event_id", f"order-{order_id}")
    return ingest_event(
        engine,
        EventIn(
            type="order",
            customer_external_id=friend,
            order_external_id=order_id,
            amount=amount,
            currency="CNY",
            **f,
        ),
    )


def count(engine: Engine, model: Any, *where: Any) -> int:
    with unit_of_work(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def status_of(engine: Engine, friend: str) -> str:
    with unit_of_work(engine) as session:
        friend_id = session.scalar(select(Customer.id).where(Customer.external_id == friend))
        referral = session.scalar(select(Referral).where(Referral.referee_id == friend_id))
        assert referral is not None
        rewards = list(session.scalars(select(Reward).where(Reward.referral_id == referral.id)))
        return referrals.visible_status(referral, rewards, clock.now())


def points(engine: Engine, external_id: str) -> dict[str, int]:
    with unit_of_work(engine) as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
        found = balances(session, customer_id).get("POINTS")
    return found.as_dict() if found else {"available": 0, "pending": 0, "expired": 0}


def test_double_sided_flow_from_code_to_reward(engine: Engine) -> None:
    code = setup(engine)
    clock.set_now(T0)
    out = signup(engine, "f-1", code.lower(), name="张三")  # codes are case-blind
    assert (out["attributed"], out["source"], out["status"]) == (True, "code", "signed_up")
    assert status_of(engine, "f-1") == "signed_up"
    # The friend's welcome coupon is theirs at once; the referrer has nothing yet.
    friend_coupon = coupons.validate(
        engine, code=_coupon_of(engine, "f-1"), customer_external_id="f-1", cart_amount=3000
    )
    assert (friend_coupon.ok, friend_coupon.discount) == (True, 2000)

    small = order(engine, "f-1", "A-0", amount=4000)  # below the 50.00 minimum
    assert small["referrals"][0]["qualified"] is False
    assert "minimum" in small["referrals"][0]["reason"]["en"]

    clock.set_now(T0 + timedelta(hours=3))
    big = order(engine, "f-1", "A-1", amount=15000, occurred_at=T0 + timedelta(hours=3))
    # not the first order any more (A-0 came first): a first_order program does not qualify
    assert big["referrals"][0]["qualified"] is False
    assert status_of(engine, "f-1") == "signed_up"


def _coupon_of(engine: Engine, external_id: str) -> str:
    with unit_of_work(engine) as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
        return session.scalars(
            select(Coupon.code).where(Coupon.customer_id == customer_id).order_by(Coupon.id)
        ).first()


def test_first_order_rewards_after_the_hold_and_tells_the_advocate(engine: Engine) -> None:
    code = setup(engine)
    clock.set_now(T0)
    signup(engine, "f-1", code, name="张三")
    out = order(engine, "f-1", "A-1")
    rewards = out["referrals"][0]["rewards"]
    assert {r["rule"] for r in rewards} == {"referrer-coupon", "referrer-points"}
    assert status_of(engine, "f-1") == "reward_pending"
    assert points(engine, "adv-1") == {"available": 0, "pending": 50, "expired": 0}
    referrer_coupon = _coupon_of(engine, "adv-1")
    early = coupons.validate(
        engine, code=referrer_coupon, customer_external_id="adv-1", cart_amount=20000
    )
    assert not early.ok and "refund window" in early.reason_en

    clock.set_now(T0 + timedelta(days=8))
    assert status_of(engine, "f-1") == "rewarded"
    assert points(engine, "adv-1")["available"] == 50
    assert (
        coupons.validate(
            engine, code=referrer_coupon, customer_external_id="adv-1", cart_amount=20000
        ).discount
        == 3000
    )
    with unit_of_work(engine) as session:
        view = referrals.advocate_progress(session, "adv-1")
    steps = [n["step"] for n in view["notices"]]
    assert "signed_up" in steps and "reward:referrer-points" in steps
    signed = next(n for n in view["notices"] if n["step"] == "signed_up")
    assert signed["zh"].startswith("您推荐的张*已注册，还差1笔")
    assert "one first order" in signed["en"]


def test_second_referral_earns_ten_percent_more(engine: Engine) -> None:
    code = setup(engine)
    clock.set_now(T0)
    for n in (1, 2, 3):
        signup(engine, f"f-{n}", code)
        order(engine, f"f-{n}", f"A-{n}")
    clock.set_now(T0 + timedelta(days=8))
    assert points(engine, "adv-1")["available"] == 50 + 55 + 61  # 60.5 rounds half up


def test_same_event_twice_is_one_event_and_a_new_id_for_the_same_order_pays_nothing(
    engine: Engine,
) -> None:
    code = setup(engine)
    clock.set_now(T0)
    signup(engine, "f-1", code)
    first = order(engine, "f-1", "A-1")
    again = order(engine, "f-1", "A-1")
    assert again["duplicate"] is True
    assert again["referrals"] == first["referrals"]
    other_id = order(engine, "f-1", "A-1", event_id="webhook-retry-of-A-1")
    assert other_id["duplicate"] is False
    assert count(engine, Reward) == 3  # friend coupon + referrer coupon + points
    assert count(engine, LedgerEntry) == 1
    assert count(engine, ReferralEvent) == 3


def test_refund_inside_the_hold_claws_back_after_it_stands(engine: Engine) -> None:
    code = setup(engine)
    clock.set_now(T0)
    signup(engine, "f-1", code, name="张三")
    signup(engine, "f-2", code, name="李四")
    order(engine, "f-1", "A-1")
    order(engine, "f-2", "A-2")
    refund = ingest_event(
        engine,
        EventIn(
            event_id="r-1",
            type="refund",
            occurred_at=T0 + timedelta(days=3),
            customer_external_id="f-1",
            order_external_id="A-1",
        ),
    )
    assert len(refund["reversed_rewards"]) == 2
    late = ingest_event(
        engine,
        EventIn(
            event_id="r-2",
            type="refund",
            occurred_at=T0 + timedelta(days=9),
            customer_external_id="f-2",
            order_external_id="A-2",
        ),
    )
    assert late["reversed_rewards"] == [] and len(late["kept"]) == 2
    clock.set_now(T0 + timedelta(days=10))
    assert status_of(engine, "f-1") == "rejected"
    assert status_of(engine, "f-2") == "rewarded"
    assert points(engine, "adv-1")["available"] == 55  # only the second referral's points
    # The clawback is a reversing entry; nothing was edited or deleted.
    with unit_of_work(engine) as session:
        entries = list(session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)))
    assert [e.amount for e in entries] == [50, 55, 50]
    assert entries[2].reverses_id == entries[0].id
    with unit_of_work(engine) as session:
        voided = session.scalar(
            select(func.count()).select_from(Coupon).where(Coupon.status == "void")
        )
    assert voided == 1
    with unit_of_work(engine) as session:
        view = referrals.advocate_progress(session, "adv-1")
    assert any(n["step"] == "clawed_back" and "退款" in n["zh"] for n in view["notices"])


def test_first_click_within_the_window_attributes_without_a_code(engine: Engine) -> None:
    code = setup(engine)
    with unit_of_work(engine) as session:
        code_id = session.scalar(select(Click.code_id).limit(1))
        from advocado.store.models import ReferralCode

        code_id = session.scalar(select(ReferralCode.id).where(ReferralCode.code == code))
        session.add(
            Click(
                code_id=code_id,
                clicked_at=T0 - timedelta(days=40),
                visitor_id="v-old",
                fingerprint="x",
                is_bot=False,
            )
        )
        session.add(
            Click(
                code_id=code_id,
                clicked_at=T0 - timedelta(days=2),
                visitor_id="v-1",
                fingerprint="y",
                is_bot=False,
            )
        )
    clock.set_now(T0)
    out = signup(engine, "f-1", None, visitor_id="v-1")
    assert (out["attributed"], out["source"]) == (True, "click")
    stale = signup(engine, "f-2", None, visitor_id="v-old")
    assert stale["attributed"] is False and "window" in stale["reason"]["en"]


def test_existing_customers_are_never_referred(engine: Engine) -> None:
    code = setup(engine)
    clock.set_now(T0)
    order(engine, "old-1", "OLD-1", occurred_at=T0 - timedelta(days=100))
    out = signup(engine, "old-1", code)
    assert out["attributed"] is False
    assert "existing customer" in out["reason"]["en"] and "老客户" in out["reason"]["zh"]


def test_fraud_self_referral_rejected_shared_office_held_then_approved(engine: Engine) -> None:
    code = setup(engine)
    clock.set_now(T0)
    with unit_of_work(engine) as session:
        adv = session.scalar(select(Customer).where(Customer.external_id == "adv-1"))
        adv.email, adv.name = "Zhang.San+shop@gmail.com", "Zhang San"
    ingest_event(
        engine,
        EventIn(
            event_id="adv-seen",
            type="signup",
            occurred_at=T0,
            customer_external_id="adv-1",
            ip="10.0.0.7",
            user_agent="Mozilla/5.0 Office",
        ),
    )
    same = signup(engine, "f-alias", code, email="zhangsan@gmail.com")
    assert same["status"] == "rejected"
    finding = same["findings"][0]
    assert finding["rule"] == "same_email" and finding["values"]["normalised"] == (
        "zhangsan@gmail.com"
    )
    office = signup(
        engine,
        "f-colleague",
        code,
        email="li@corp.example",
        ip="10.0.0.7",
        user_agent="Mozilla/5.0 Office",
    )
    assert office["status"] == "review"
    assert [f["rule"] for f in office["findings"]] == ["same_ip_user_agent"]
    order(engine, "f-colleague", "C-1")  # qualifies while held: no rewards yet
    assert count(engine, Reward) == 0
    with unit_of_work(engine) as session:
        queue = referrals.review_queue(session)
    assert [item["friend"] for item in queue] == ["f-colleague"]
    referrals.decide(engine, referral_id=queue[0]["id"], approve=True, note="colleague, ok")
    assert status_of(engine, "f-colleague") == "reward_pending"
    assert count(engine, Reward) == 3


def test_disposable_email_and_blocklisted_network_are_rejected(engine: Engine) -> None:
    code = setup(engine, fraud={"blocklist": {"ips": ["203.0.113.0/24"]}})
    clock.set_now(T0)
    throwaway = signup(engine, "f-1", code, email="x@mailinator.com")
    assert throwaway["status"] == "rejected"
    assert throwaway["findings"][0]["values"] == {"domain": "mailinator.com"}
    blocked = signup(engine, "f-2", code, email="ok@example.org", ip="203.0.113.9")
    assert blocked["status"] == "rejected"
    assert blocked["findings"][0]["values"] == {"ip": "203.0.113.0/24"}
    assert "黑名单" in blocked["findings"][0]["zh"]


def test_monthly_cap_and_budget(engine: Engine) -> None:
    code = setup(engine, caps={"per_advocate_per_month": 1})
    clock.set_now(T0)
    for n in (1, 2):
        signup(engine, f"f-{n}", code)
        order(engine, f"f-{n}", f"A-{n}")
    assert status_of(engine, "f-1") == "reward_pending"
    with unit_of_work(engine) as session:
        stats = referrals.program_stats(session, "friends")[0]
    assert stats["qualified"] == 2
    assert count(engine, Reward, Reward.role == "referrer") == 2  # only f-1's two rewards


def test_second_level_only_when_enabled_and_never_deeper(engine: Engine) -> None:
    rules = program()["rewards"] + [{"id": "grand", "to": "level2", "type": "points", "amount": 10}]
    with pytest.raises(ValueError, match="second_level"):
        setup(engine, rewards=rules)
    code = setup(engine, rewards=rules, second_level={"enabled": True})
    clock.set_now(T0)
    signup(engine, "f-1", code)
    order(engine, "f-1", "A-1")
    with unit_of_work(engine) as session:
        code_f1 = programs.code_for(session, program_slug="friends", customer_external_id="f-1")
    signup(engine, "f-2", code_f1.code)
    order(engine, "f-2", "A-2")
    with unit_of_work(engine) as session:
        code_f2 = programs.code_for(session, program_slug="friends", customer_external_id="f-2")
    signup(engine, "f-3", code_f2.code)
    order(engine, "f-3", "A-3")
    clock.set_now(T0 + timedelta(days=8))
    # adv-1: own referral 50 + level-2 on f-2 (10); nothing from f-3 (depth 3).
    assert points(engine, "adv-1")["available"] == 60


def test_hidden_surprise_is_won_once_within_its_budget(engine: Engine) -> None:
    rules = program()["rewards"] + [
        {
            "id": "surprise",
            "to": "referrer",
            "type": "points",
            "amount": 500,
            "surprise": {"probability": 1.0, "budget": 1},
        }
    ]
    code = setup(engine, rewards=rules)
    clock.set_now(T0)
    for n in (1, 2):
        signup(engine, f"f-{n}", code)
        order(engine, f"f-{n}", f"A-{n}")
    assert count(engine, Reward, Reward.hidden.is_(True)) == 1
    with unit_of_work(engine) as session:
        view = referrals.advocate_progress(session, "adv-1")
    assert sum("Surprise!" in n["en"] for n in view["notices"]) == 1


def race(n: int, action: Callable[[], Any]) -> list[Any]:
    """Runs `action` in n threads released at once; returns results (or exceptions)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = action()
        except Exception as error:  # noqa: BLE001 - reported by the test
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_fifty_concurrent_deliveries_of_one_order_reward_once(engine: Engine) -> None:
    code = setup(
        engine, rewards=[{"id": "points", "to": "referrer", "type": "points", "amount": 50}]
    )
    clock.set_now(T0)
    signup(engine, "f-1", code)
    engine.pool.dispose()
    results = race(50, lambda: order(engine, "f-1", "A-1"))
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    assert sum(1 for r in results if not r["duplicate"]) == 1
    assert count(engine, Reward) == 1
    assert count(engine, LedgerEntry) == 1
    assert count(engine, ReferralEvent, ReferralEvent.event_id == "order-A-1") == 1


def test_fifty_concurrent_orders_with_different_event_ids_still_reward_once(
    engine: Engine,
) -> None:
    code = setup(
        engine, rewards=[{"id": "points", "to": "referrer", "type": "points", "amount": 50}]
    )
    clock.set_now(T0)
    signup(engine, "f-1", code)
    counter = iter(range(1000))
    lock = threading.Lock()

    def deliver() -> dict[str, Any]:
        with lock:
            n = next(counter)
        return order(engine, "f-1", "A-1", event_id=f"delivery-{n}")

    results = race(50, deliver)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert count(engine, Reward) == 1
    assert count(engine, LedgerEntry) == 1


def test_two_concurrent_redemptions_of_one_coupon_one_succeeds(engine: Engine) -> None:
    code = setup(engine)
    clock.set_now(T0)
    signup(engine, "f-1", code)
    coupon = _coupon_of(engine, "f-1")
    for _attempt in range(5):  # several rounds: a lucky interleaving must not hide a bug
        with unit_of_work(engine) as session:
            row = session.scalar(select(Coupon).where(Coupon.code == coupon))
            row.status, row.redeemed_order, row.redeemed_at = "active", None, None
        results = race(
            2,
            lambda: coupons.redeem(
                engine,
                code=coupon,
                customer_external_id="f-1",
                cart_amount=5000,
                order_external_id=f"ORDER-{threading.get_ident()}",
            ),
        )
        assert [r for r in results if isinstance(r, Exception)] == []
        assert sorted(r.ok for r in results) == [False, True]
        loser = next(r for r in results if not r.ok)
        assert "already used" in loser.reason_en and "已使用" in loser.reason_zh


def test_coupon_is_bound_to_its_customer(engine: Engine) -> None:
    code = setup(engine)
    clock.set_now(T0)
    signup(engine, "f-1", code)
    coupon = _coupon_of(engine, "f-1")
    stolen = coupons.redeem(
        engine,
        code=coupon,
        customer_external_id="someone-else",
        cart_amount=5000,
        order_external_id="X",
    )
    assert not stolen.ok and "another customer" in stolen.reason_en
    used = coupons.redeem(
        engine, code=coupon, customer_external_id="f-1", cart_amount=5000, order_external_id="O-1"
    )
    retry = coupons.redeem(
        engine, code=coupon, customer_external_id="f-1", cart_amount=5000, order_external_id="O-1"
    )
    assert (used.ok, used.discount, retry.ok) == (True, 2000, True)
