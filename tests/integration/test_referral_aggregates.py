"""The referral-side pre-aggregates (services.referral_aggregates) stay equal to what
`rebuild` computes from the rows through every write path: signup, order and refund events
(qualification, rewards, fraud holds and rejections, clawbacks, partial refunds, level 2,
hidden rewards, caps, budgets, racing deliveries), review decisions, order imports and API
writes (an order moved to another customer, paid -> refunded, amounts changed), a referral
made for a customer who already bought, duplicate events, and new codes. And the figures that
read them equal the figures computed from the rows (funnel, K-factor, top advocates, plan
actuals) for all time, a 90-day period and a program. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import test_referral_ops
import test_referrals
from sqlalchemy import Engine, select
from test_referral_ops import refund
from test_referrals import T0, order, setup, signup

from advocado import clock
from advocado.domain.dashboard import Filters
from advocado.domain.records import CustomerRecord, OrderRecord
from advocado.services import dashboard, programs, records, referral_aggregates, referrals
from advocado.services.referrals import EventIn, ingest_event
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import Program, Referral


def _maintained_equals_rebuilt(engine: Engine) -> dict[str, Any]:
    with unit_of_work(engine) as session:
        kept = referral_aggregates.snapshot(session)
    with unit_of_work(engine) as session:
        referral_aggregates.rebuild(session)
    with unit_of_work(engine) as session:
        rebuilt = referral_aggregates.snapshot(session)
    assert kept == rebuilt
    return kept


# Every scenario of the referral engine's own tests, then: maintained == rebuilt.
SCENARIOS: list[Callable[..., None]] = [
    test_referrals.test_double_sided_flow_from_code_to_reward,
    test_referrals.test_first_order_rewards_after_the_hold_and_tells_the_advocate,
    test_referrals.test_second_referral_earns_ten_percent_more,
    test_referrals.test_same_event_twice_is_one_event_and_a_new_id_for_the_same_order_pays_nothing,
    test_referrals.test_refund_inside_the_hold_claws_back_after_it_stands,
    test_referrals.test_first_click_within_the_window_attributes_without_a_code,
    test_referrals.test_existing_customers_are_never_referred,
    test_referrals.test_fraud_self_referral_rejected_shared_office_held_then_approved,
    test_referrals.test_disposable_email_and_blocklisted_network_are_rejected,
    test_referrals.test_monthly_cap_and_budget,
    test_referrals.test_second_level_only_when_enabled_and_never_deeper,
    test_referrals.test_hidden_surprise_is_won_once_within_its_budget,
    test_referrals.test_fifty_concurrent_deliveries_of_one_order_reward_once,
    test_referrals.test_fifty_concurrent_orders_with_different_event_ids_still_reward_once,
    test_referral_ops.test_counters_equal_the_history_through_rewards_caps_and_clawbacks,
    test_referral_ops.test_a_partial_refund_keeps_the_referral_while_the_minimum_is_kept,
    test_referral_ops.test_a_partial_refund_after_the_hold_changes_nothing,
    test_referral_ops.test_racing_orders_never_spend_past_the_budget,
    test_referral_ops.test_racing_orders_of_two_advocates_keep_tiers_and_caps_exact,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__[5:45])
def test_every_referral_scenario_keeps_the_aggregates(
    engine: Engine, scenario: Callable[..., None]
) -> None:
    scenario(engine)
    kept = _maintained_equals_rebuilt(engine)
    assert kept["advocate_firsts"]  # every scenario makes a code


def test_order_writes_and_review_decisions_keep_the_aggregates(engine: Engine) -> None:
    """Orders through the import/API path (records.save_orders): a friend's order moved to
    another friend and to a stranger, refunded, its amount changed; an order placed before
    the referral (the friend enters the revenue when referred); a duplicate event; a held
    referral approved and another rejected on review (its friend's orders leave)."""
    code = setup(engine)
    clock.set_now(T0)
    office = {"ip": "10.0.0.7", "user_agent": "Mozilla/5.0 Office"}
    ingest_event(engine, EventIn(event_id="adv-seen", type="signup", occurred_at=T0,
                                 customer_external_id="adv-1", **office))  # fmt: skip
    with unit_of_work(engine) as session:
        records.save_customers(session, [CustomerRecord(f"x{k}") for k in range(3)])
        records.save_orders(
            session, [OrderRecord("early", "x0", 9000, "CNY", T0 - timedelta(days=3))]
        )
    signup(engine, "x0", code)  # bought before: not referred, its order stays out
    signup(engine, "f-1", code)
    signup(engine, "f-2", code, **office)  # held for review
    signup(engine, "f-3", code, **office)
    order(engine, "f-3", "o-5", 30000)
    order(engine, "f-1", "o-1", 15000)
    order(engine, "f-1", "o-1", 15000)  # same event again: a duplicate
    order(engine, "f-2", "o-2", 20000)
    _maintained_equals_rebuilt(engine)
    with unit_of_work(engine) as session:
        records.save_orders(
            session,
            [
                OrderRecord("o-1", "f-2", 17000, "CNY", T0 + timedelta(hours=3)),  # moved
                OrderRecord("o-3", "f-1", 5000, "CNY", T0 + timedelta(days=1), "refunded"),
                OrderRecord("o-4", "x1", 4000, "USD", T0 + timedelta(days=1)),
            ],
        )
    _maintained_equals_rebuilt(engine)
    with unit_of_work(engine) as session:
        records.save_orders(
            session,
            [
                OrderRecord("o-1", "x2", 17000, "CNY", T0 + timedelta(hours=3)),  # to a stranger
                OrderRecord("o-3", "f-1", 6000, "CNY", T0 + timedelta(days=1)),  # paid now
            ],
        )
    _maintained_equals_rebuilt(engine)
    with unit_of_work(engine) as session:
        held = list(session.scalars(select(Referral).where(Referral.status == "review")))
    assert len(held) == 2
    for k, referral in enumerate(held):
        referrals.decide(engine, referral_id=referral.id, approve=k % 2 == 0, note="checked")
        _maintained_equals_rebuilt(engine)
    refund(engine, "f-1", "o-3", None, 1)
    refund(engine, "f-1", "o-3", None, 1)  # the same refund again
    # o-1 qualified f-1 and now belongs to x2: its refund, from x2, rejects f-1's referral
    out = refund(engine, "x2", "o-1", None, 2)
    assert out["reversed_rewards"]
    kept = _maintained_equals_rebuilt(engine)
    assert {k[0] for k in kept["referred_revenue_days"]} >= {0}


def test_codes_made_keep_the_firsts(engine: Engine) -> None:
    setup(engine)
    clock.set_now(T0 + timedelta(days=1))
    with unit_of_work(engine) as session:
        programs.code_for(session, program_slug="friends", customer_external_id="adv-2")
        programs.code_for(session, program_slug="friends", customer_external_id="adv-2")
    kept = _maintained_equals_rebuilt(engine)
    assert len(kept["advocate_firsts"]) == 4  # adv-1 and adv-2, in the program and in any


def _figures(session: Any, f: Filters) -> dict[str, Any]:
    scope = dashboard._scope(session, f)
    return {
        "referrals": dashboard.referral_funnel(session, f).as_dict(),
        "k_factor": dashboard.k_factor(session, f).as_dict(),
        "top": dashboard.top_advocates(session, f).as_dict(),
        "leads": dashboard.referral_signups(session, scope, leads=True),
        "qualified": dashboard.referrals_qualified_in(session, scope),
        "revenue": dashboard.referred_revenue(session, scope),
    }


def test_figures_from_the_aggregates_equal_the_figures_from_the_rows(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two programs (a friend referred in both counts once in the revenue), statuses of every
    kind, rewards; all time, a 90-day period ending before the newest referral, a program."""
    test_referrals.test_refund_inside_the_hold_claws_back_after_it_stands(engine)
    with unit_of_work(engine) as session:
        programs.apply_program(session, test_referrals.program(slug="second", name="Second"))
        session.flush()
        code = programs.code_for(session, program_slug="second", customer_external_id="adv-9")
    clock.set_now(T0 + timedelta(days=40))
    signup(engine, "g-1", code.code, event_id="second-g-1", occurred_at=T0 + timedelta(days=40))
    order(engine, "g-1", "og-1", 30000, occurred_at=T0 + timedelta(days=41))
    with unit_of_work(engine) as session:
        slugs = list(session.scalars(select(Program.slug).order_by(Program.slug)))
    days = Filters(start=T0.date() - timedelta(days=60), end=T0.date() + timedelta(days=29))
    filters = [Filters(), days]
    filters += [Filters(program=slug) for slug in slugs]
    for f in filters:
        with read_only(engine) as session:
            summed = _figures(session, f)
        with monkeypatch.context() as patched:
            patched.setattr(dashboard, "_summed", lambda scope: False)
            with read_only(engine) as session:
                from_rows = _figures(session, f)
        assert summed == from_rows, f
    with read_only(engine) as session:
        funnel = dashboard.referral_funnel(session, Filters()).summary
    assert funnel["revenue"] > 0 and funnel["rewards_cost"] > 0
