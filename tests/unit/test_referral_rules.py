"""Pure rules of the referral engine: program files, reward rules, attribution, fraud,
codes and ledger balances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from advocado.domain import codes, fraud
from advocado.domain.attribution import Attribution, ClickSeen, CodeSeen, attribute
from advocado.domain.ledger import Posting, balance
from advocado.domain.programs import ProgramError, parse_program
from advocado.domain.rewards import Trigger, evaluate

T0 = datetime(2026, 5, 1, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "programs" / "double-sided.yaml"


def base(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": "p",
        "currency": "CNY",
        "starts_at": "2026-01-01",
        "landing_url": "https://shop.example.com/",
        "rewards": [
            {"id": "pts", "to": "referrer", "type": "points", "amount": 50, "step_percent": 10}
        ],
    }
    data.update(changes)
    return data


def trigger(nth: int = 1, at: datetime = T0, **changes: Any) -> Trigger:
    fields: dict[str, Any] = {"order_amount": 10000, "first_order": True, "cause": "order:A"}
    fields.update(changes)
    return Trigger(nth=nth, at=at, **fields)


def test_the_shipped_example_is_seed_004s_program() -> None:
    config = parse_program(yaml.safe_load(EXAMPLE.read_text()))
    assert (config.qualifying_event, config.hold_days, config.currency) == ("first_order", 7, "CNY")
    friend, referrer = config.rules
    assert (friend.to, friend.coupon.amount_off, friend.coupon.min_spend) == ("referee", 2000, 0)
    assert (referrer.coupon.amount_off, referrer.coupon.min_spend) == (3000, 10000)
    assert friend.coupon.valid_days == referrer.coupon.valid_days == 30
    assert not config.second_level


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"landing_url": "ftp://x"}, "landing_url"),
        ({"currency": "yuan"}, "currency"),
        ({"qualify": {"event": "share"}}, "qualify.event"),
        (
            {
                "rewards": [
                    {
                        "id": "c",
                        "to": "referee",
                        "type": "coupon",
                        "coupon": {"amount_off": 1, "percent_off": 5},
                    }
                ]
            },
            "rewards[0].coupon",
        ),
        ({"rewards": [{"id": "x", "to": "level2", "type": "points", "amount": 1}]}, "rewards"),
        ({"fraud": {"rules": {"same_ip": "review"}}}, "fraud.rules.same_ip"),
    ],
)
def test_program_errors_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ProgramError) as error:
        parse_program(base(**changes))
    assert error.value.field == field


def test_tiers_grow_ten_percent_per_referral() -> None:
    config = parse_program(base())
    amounts = [evaluate(config, trigger(n))[0].amount for n in (1, 2, 3, 4)]
    assert amounts == [50, 55, 61, 67]  # 50 × 1.1^(n-1), rounded half up
    assert "递增10%" in evaluate(config, trigger(2))[0].because_zh
    # Growth stops at the cap (default 10 × the first amount): the 500th referral is 500.
    grant = evaluate(config, trigger(500))[0]
    assert grant.amount == 500 and "上限" in grant.because_zh


def test_milestone_multiplier_and_percent_rules_combine() -> None:
    config = parse_program(
        base(
            rewards=[
                {
                    "id": "pts",
                    "to": "referrer",
                    "type": "points",
                    "amount": 50,
                    "multipliers": [
                        {
                            "from": "2026-05-01",
                            "to": "2026-05-08",
                            "factor": 2,
                            "label": "anniversary week",
                        }
                    ],
                },
                {
                    "id": "third",
                    "to": "referrer",
                    "type": "gift",
                    "gift": "保温杯 thermos",
                    "on_nth": [3],
                },
                {"id": "cash", "to": "referrer", "type": "credit", "percent": 5},
            ]
        )
    )
    in_week = {g.rule: g for g in evaluate(config, trigger(3, T0 + timedelta(days=1)))}
    assert in_week["pts"].amount == 100 and "anniversary week" in in_week["pts"].because_en
    assert in_week["third"].gift == "保温杯 thermos"
    assert in_week["cash"].amount == 500  # 5 % of 100.00
    later = {g.rule: g for g in evaluate(config, trigger(2, T0 + timedelta(days=30)))}
    assert later["pts"].amount == 50 and "third" not in later


def test_surprise_is_fixed_by_its_cause_and_respects_its_budget() -> None:
    config = parse_program(
        base(
            rewards=[
                {
                    "id": "s",
                    "to": "referrer",
                    "type": "points",
                    "amount": 500,
                    "surprise": {"probability": 0.5, "budget": 3},
                }
            ]
        )
    )
    outcomes = [bool(evaluate(config, trigger(cause=f"order:{n}"))) for n in range(200)]
    assert 70 < sum(outcomes) < 130  # about half win
    assert outcomes == [bool(evaluate(config, trigger(cause=f"order:{n}"))) for n in range(200)]
    winner = f"order:{outcomes.index(True)}"
    assert evaluate(config, trigger(cause=winner), surprises_won={"s": 3}) == []
    assert evaluate(config, trigger(cause=winner, first_order=False)) == []


def test_code_wins_over_click_and_window_and_existing_customer() -> None:
    code = CodeSeen(1, 1, 10, 30, True)
    other = CodeSeen(2, 1, 20, 30, True)
    clicked = [ClickSeen(other, T0 - timedelta(days=3))]
    decided = attribute(at=T0, entered=code, clicks=clicked, existing_customer=False)
    assert isinstance(decided, Attribution) and decided.code.advocate_id == 10
    by_click = attribute(at=T0, entered=None, clicks=clicked, existing_customer=False)
    assert isinstance(by_click, Attribution) and by_click.source == "click"
    stale = [ClickSeen(other, T0 - timedelta(days=31))]
    assert not isinstance(
        attribute(at=T0, entered=None, clicks=stale, existing_customer=False), Attribution
    )
    existing = attribute(at=T0, entered=code, clicks=[], existing_customer=True)
    assert not isinstance(existing, Attribution) and "老客户" in existing.because_zh


def test_email_normalisation() -> None:
    assert fraud.normalise_email("Zhang.San+promo@GMail.com") == "zhangsan@gmail.com"
    assert fraud.normalise_email("a.b+x@corp.cn") == "a.b@corp.cn"  # dots matter elsewhere


def test_fraud_rules_explain_and_follow_their_settings() -> None:
    config = parse_program(base())
    advocate = fraud.Identity(
        1,
        email="li.lei@gmail.com",
        phone="+86 138 0013 8000",
        ip_user_agents=frozenset({("h", "UA")}),
    )
    same_phone = fraud.Identity(2, phone="13800138000")
    verdict = fraud.check(
        config,
        advocate=advocate,
        friend=same_phone,
        referrals_last_hour=0,
        unique_clicks_last_day=0,
    )
    assert verdict.decision == "reject" and verdict.findings[0].rule == "same_phone"
    office = fraud.Identity(3, email="han@corp.cn", ip_user_agents=frozenset({("h", "UA")}))
    held = fraud.check(
        config, advocate=advocate, friend=office, referrals_last_hour=0, unique_clicks_last_day=0
    )
    assert held.decision == "review" and "IP" in held.reason
    off = parse_program(base(fraud={"rules": {"same_ip_user_agent": "off"}}))
    assert (
        fraud.check(
            off, advocate=advocate, friend=office, referrals_last_hour=0, unique_clicks_last_day=0
        ).decision
        == "allow"
    )
    fast = fraud.check(
        config,
        advocate=advocate,
        friend=fraud.Identity(4),
        referrals_last_hour=5,
        unique_clicks_last_day=0,
    )
    assert fast.findings[0].rule == "velocity" and fast.findings[0].values["limit"] == "5"
    leaked = fraud.check(
        config,
        advocate=advocate,
        friend=fraud.Identity(5),
        referrals_last_hour=0,
        unique_clicks_last_day=0,
        referrer_hosts=["www.smzdm.com"],
    )
    assert leaked.findings[0].rule == "leaked_code" and "smzdm" in leaked.findings[0].zh
    alike = fraud.check(
        config,
        advocate=fraud.Identity(1, name="Wang Xiaoming"),
        friend=fraud.Identity(6, name="Wang Xiaoming."),
        referrals_last_hour=0,
        unique_clicks_last_day=0,
    )
    assert alike.findings[0].rule == "similar_identity"


def test_codes_are_unambiguous_and_vanity_codes_are_checked() -> None:
    drawn = {codes.new_code() for _ in range(2000)}
    assert len(drawn) == 2000
    assert not set("".join(drawn)) & set("01ILOU")
    assert codes.check_vanity(" zhangsan-2026 ") == "ZHANGSAN-2026"
    with pytest.raises(ValueError, match="推荐码"):
        codes.check_vanity("a b")


def test_balance_holds_expiry_soonest_first_and_reversals() -> None:
    day = timedelta(days=1)
    postings = [
        Posting(1, 100, T0, T0, expires_at=T0 + 30 * day),  # expires later
        Posting(2, 100, T0, T0, expires_at=T0 + 10 * day),  # expires sooner: spent first
        Posting(3, -120, T0 + day, T0 + day),
        Posting(4, 40, T0 + day, T0 + 8 * day),  # on hold for 7 days
    ]
    at_5 = balance(postings, T0 + 5 * day)
    assert (at_5.available, at_5.pending, at_5.expired) == (80, 40, 0)
    at_20 = balance(postings, T0 + 20 * day)
    # Lot 2 was spent whole, lot 1 lost 20: nothing has expired yet.
    assert (at_20.available, at_20.expired) == (120, 0)
    at_40 = balance(postings, T0 + 40 * day)
    assert (at_40.available, at_40.expired) == (40, 80)
    reversed_ = [*postings, Posting(5, -40, T0 + 2 * day, T0 + 2 * day, reverses=4)]
    assert balance(reversed_, T0 + 20 * day).available == 80


def test_new_visitor_ids_are_unique_random_and_sort_by_first_click_time() -> None:
    from datetime import UTC, datetime, timedelta

    from advocado.web.links import _Visitors

    visitors = _Visitors()
    start = datetime(2026, 6, 1, tzinfo=UTC)
    ids = [visitors.new(start + timedelta(milliseconds=i)) for i in range(10_000)]
    assert len(set(ids)) == len(ids)  # 96 random bits each: no repeats across two batches
    assert ids == sorted(ids)  # time first, in hex: the clicks' visitor index grows at its end
    assert all(len(i) == 28 and i.isascii() and ";" not in i for i in ids)
    same_ms = {visitors.new(start)[12:] for _ in range(1000)}
    assert len(same_ms) == 1000


def test_partial_refund_rule_keeps_what_meets_the_minimum() -> None:
    from advocado.domain.refunds import after_refund

    kept = after_refund(order_amount=15000, refunded_before=0, refund=6000, min_amount=5000)
    assert (kept.still_qualifies, kept.full, kept.remaining) == (True, False, 9000)
    assert "90.00" in kept.en and "50.00" in kept.zh
    below = after_refund(order_amount=15000, refunded_before=6000, refund=5000, min_amount=5000)
    assert (below.still_qualifies, below.remaining) == (False, 4000)
    assert "below the minimum" in below.en and "低于门槛" in below.zh
    one_left = after_refund(order_amount=100, refunded_before=0, refund=99, min_amount=0)
    assert one_left.still_qualifies
    nothing_left = after_refund(order_amount=100, refunded_before=50, refund=50, min_amount=0)
    assert nothing_left.full and not nothing_left.still_qualifies
    assert after_refund(order_amount=None, refunded_before=0, refund=10, min_amount=0).full
    assert after_refund(order_amount=500, refunded_before=0, refund=None, min_amount=0).full


def test_expiry_postings_take_their_own_lot_and_keep_the_balance_the_same() -> None:
    from datetime import UTC, datetime, timedelta

    from advocado.domain.ledger import Posting, balance, expiring

    t0, day = datetime(2026, 1, 1, tzinfo=UTC), timedelta(days=1)
    lots = [
        Posting(1, 100, t0, t0, expires_at=t0 + 10 * day),
        Posting(2, 100, t0, t0, expires_at=t0 + 20 * day),
        Posting(3, 50, t0, t0),  # never expires
        Posting(4, -120, t0 + day, t0 + day),  # soonest first: all of lot 1, 20 of lot 2
    ]
    at_30 = t0 + 30 * day
    assert expiring(lots, t0 + 15 * day) == []  # lot 1 was spent in full
    assert expiring(lots, at_30) == [(2, 80)]
    before = balance(lots, at_30)
    assert before.as_dict() == {"available": 50, "pending": 0, "expired": 80}
    posted = [*lots, Posting(5, -80, at_30, at_30, expires_lot=2)]
    assert balance(posted, at_30) == before  # posting the expiry changes nothing visible
    assert expiring(posted, at_30) == []  # and there is nothing left to expire
