"""The 12-month value's pre-aggregates (value_groups, value_group_days) stay equal to what
`rebuild` computes from the rows through every write that moves them: order imports (new,
moved to another customer, no longer paid), the shop's order events, refunds (and the
clawback that rejects a referral), referrals created (signed up, held for review, rejected
at once), reviews (approve, reject), codes given; and the clv figure and its drill-downs
(no filter, a period, each program, a segment) equal the figures computed by hand from the
rows. On SQLite and PostgreSQL (ADVOCADO_TEST_DATABASE)."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from advocado import clock
from advocado.domain.dashboard import parse_filters
from advocado.domain.records import CustomerRecord, OrderRecord
from advocado.services import (
    aggregates,
    cohorts,
    customer_aggregates,
    customer_value,
    dashboard,
    programs,
    referrals,
    segments,
)
from advocado.services.records import save_customers, save_orders
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import Customer, Order, Program, Referral, ReferralCode

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
VIP = ("a1", "c1", "c3")  # the "vip" segment, at first


def at(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def _program(slug: str) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": slug.upper(),
        "currency": "CNY",
        "starts_at": "2025-01-01",
        "landing_url": "https://shop.example.com/",
        "attribution_days": 30,
        "qualify": {"event": "first_order", "min_amount": 0},
        "hold_days": 7,
        "rewards": [
            {
                "id": "thanks",
                "to": "referrer",
                "type": "coupon",
                "label": "t",
                "coupon": {"amount_off": 1000, "min_spend": 0, "valid_days": 30},
            },
        ],
        "fraud": {"rules": {"same_ip_user_agent": "review", "disposable_email": "reject"}},
    }


def _kept_equals_rebuilt(engine: Engine) -> dict[str, Any]:
    """value_groups/value_group_days (and paid_order_days, which refunds now move too, and
    the segments' and programs' cohort_paid_order_days once the worker judged them)."""
    cohorts.settle(engine)
    with unit_of_work(engine) as session:
        kept = customer_value.snapshot(session)
        orders = customer_aggregates.snapshot(session)["orders"]
        kept_cohorts = cohorts.snapshot(session)
    with unit_of_work(engine) as session:
        aggregates.rebuild(session)
    with unit_of_work(engine) as session:
        assert customer_value.snapshot(session) == kept
        assert customer_aggregates.snapshot(session)["orders"] == orders
        assert cohorts.snapshot(session) == kept_cohorts
    return kept


def _event(engine: Engine, when: datetime, **fields: Any) -> dict[str, Any]:
    clock.set_now(when)
    return referrals.ingest_event(engine, referrals.EventIn(occurred_at=when, **fields))


def _orders(engine: Engine, rows: list[tuple[str, str, int, datetime, str, str]]) -> None:
    with unit_of_work(engine) as session:
        save_orders(
            session,
            [
                OrderRecord(
                    external_id=o,
                    customer_external_id=who,
                    amount=amount,
                    currency=currency,
                    placed_at=when,
                    status=status,
                )
                for o, who, amount, when, currency, status in rows
            ],
        )


Buyers = dict[str, list[tuple[str, int, int]]]


def _expected(engine: Engine, *, program: str | None = None, to: str | None = None,
              members: set[int] | None = None) -> Buyers:  # fmt: skip
    """Per group, the buyers (external id, orders, revenue), by revenue desc then id: the
    figure's rule, straight from orders, referrals and codes."""
    with read_only(engine) as session:
        end = (
            datetime.fromisoformat(to).replace(tzinfo=UTC) + timedelta(days=1)
            if to
            else datetime.combine(NOW.date() + timedelta(days=1), datetime.min.time(), UTC)
        )
        low = end - timedelta(days=365)
        program_id = (
            None
            if program is None
            else session.scalar(select(Program.id).where(Program.slug == program))
        )
        people = None
        if program_id is not None:
            people = set(
                session.scalars(
                    select(ReferralCode.customer_id).where(ReferralCode.program_id == program_id)
                )
            ) | set(
                session.scalars(
                    select(Referral.referee_id).where(Referral.program_id == program_id)
                )
            )
        if members is not None:
            people = members if people is None else people & members
        advocates = {
            r.advocate_id
            for r in session.scalars(select(Referral))
            if r.status != "rejected" and (program_id is None or r.program_id == program_id)
        }
        names = {i: e for i, e in session.execute(select(Customer.id, Customer.external_id))}
        bought: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for o in session.scalars(select(Order)):
            if o.status != "paid" or o.currency != "CNY" or not low <= o.placed_at < end:
                continue
            if people is not None and o.customer_id not in people:
                continue
            bought[o.customer_id][0] += 1
            bought[o.customer_id][1] += o.amount
    found: dict[str, list[tuple[int, str, int, int]]] = {"advocates": [], "non_advocates": []}
    for customer, (n, revenue) in bought.items():
        group = "advocates" if customer in advocates else "non_advocates"
        found[group].append((customer, names[customer], n, revenue))
    return {
        group: [(name, n, r) for _, name, n, r in sorted(rows, key=lambda x: (-x[3], x[0]))]
        for group, rows in found.items()
    }


def _check_figures(engine: Engine, **params: str) -> None:
    members = None
    if "segment" in params:
        with read_only(engine) as session:
            _, spec = segments.segment_filter(session, slug=params["segment"])
            members = set(session.scalars(segments.member_ids(session, spec)))
    expected = _expected(engine, program=params.get("program"), to=params.get("to"),
                         members=members)  # fmt: skip
    with read_only(engine) as session:
        panel = dashboard.panel(session, "clv", parse_filters(params))
        rows = {r["group"]: r for r in panel.rows}
        for group, buyers in expected.items():
            got = (rows[group]["customers"], rows[group]["orders"], rows[group]["revenue"])
            assert got == (
                len(buyers),
                sum(n for _, n, _ in buyers),
                sum(r for _, _, r in buyers),
            ), (group, params)
            for limit in (2, None):
                drill = dashboard.drill(session, "clv", parse_filters(params),
                                       {"group": group}, limit=limit)  # fmt: skip
                shown = [(r["customer"], r["orders"], r["revenue"]) for r in drill.rows]
                assert shown == buyers[:limit], (group, params, limit)


def _walk_in_small_batches(engine: Engine) -> None:
    """top_outside stops early only when nobody further can enter: batches of one; for
    everyone, a program's people and a segment's members (stored, corrected if dirty)."""
    with read_only(engine) as session:
        names = {i: e for i, e in session.execute(select(Customer.id, Customer.external_id))}
        end = datetime.combine(NOW.date() + timedelta(days=1), datetime.min.time(), UTC)
        segment, spec = segments.segment_filter(session, slug="vip")
        vip = cohorts.segment_members(session, segment.id, spec)
        assert vip is not None
        members = set(session.scalars(segments.member_ids(session, spec)))
        cases: list[tuple[dict[str, Any], dict[str, Any]]] = [({}, {}), (
            {"members": members}, {"keep": vip.holds}
        )]  # fmt: skip
        for slug, program_id in session.execute(select(Program.slug, Program.id)):
            cases.append(({"program": slug}, {"program_id": program_id,
                          "keep": customer_value.is_member(program_id)}))  # fmt: skip
        for wanted, given in cases:
            expected = _expected(engine, **wanted)["non_advocates"]
            for limit in range(len(expected) + 2):
                found = customer_value.top_outside(
                    session, currency="CNY", start=end - timedelta(days=365), end=end,
                    limit=limit, batch=1, **given,
                )  # fmt: skip
                assert found is not None
                assert [(names[c], n, r) for c, n, r in found] == expected[:limit], wanted


def _all_figures(engine: Engine) -> None:
    _walk_in_small_batches(engine)
    for params in (
        {},
        {"from": "2026-04-01", "to": "2026-06-29"},
        {"from": "2025-06-01", "to": "2025-08-30"},
        {"program": "p"},
        {"program": "q"},
        {"program": "p", "from": "2026-04-01", "to": "2026-06-29"},
        {"segment": "everyone"},
        {"segment": "everyone", "program": "p"},
        {"segment": "vip"},
        {"segment": "vip", "from": "2026-04-01", "to": "2026-06-29"},
        {"segment": "vip", "program": "p"},
    ):
        _check_figures(engine, **params)


def test_every_write_path_keeps_value_groups_equal_to_a_rebuild(engine: Engine) -> None:
    clock.set_now(at(2025, 1, 1))
    people = ["a1", "a2", "a3", "c1", "c2", "c3"]
    with unit_of_work(engine) as session:
        save_customers(session, [
            CustomerRecord(external_id=p, name=p.upper(), tags=("vip",) if p in VIP else ())
            for p in people
        ])  # fmt: skip
        programs.apply_program(session, _program("p"))
        programs.apply_program(session, _program("q"))
        segments.create_segment(session, slug="everyone", name="Everyone", filters={})
        segments.create_segment(session, slug="vip", name="VIP", filters={"tags_any": ["vip"]})
    # Orders: some before the 12-month window (a previous order), one in USD, one cancelled.
    _orders(
        engine,
        [
            ("o1", "a1", 5000, at(2025, 3, 1), "CNY", "paid"),
            ("o2", "a1", 7000, at(2026, 2, 1), "CNY", "paid"),
            ("o3", "a2", 3000, at(2026, 3, 1), "CNY", "paid"),
            ("o4", "c1", 10000, at(2025, 7, 5), "CNY", "paid"),
            ("o5", "c1", 4000, at(2026, 5, 5), "CNY", "paid"),
            ("o6", "a3", 9000, at(2026, 4, 2), "USD", "paid"),
            ("o7", "a3", 2500, at(2026, 4, 3), "CNY", "paid"),
            ("o8", "c2", 6000, at(2026, 1, 9), "CNY", "cancelled"),
        ],
    )
    _kept_equals_rebuilt(engine)
    clock.set_now(at(2026, 5, 1))
    with unit_of_work(engine) as session:  # codes given: members of p (a1, a2), of q (a3)
        code1 = programs.code_for(session, program_slug="p", customer_external_id="a1").code
        code2 = programs.code_for(session, program_slug="p", customer_external_id="a2").code
        code3 = programs.code_for(session, program_slug="q", customer_external_id="a3").code
    kept = _kept_equals_rebuilt(engine)
    assert {(p, role) for p, role, _ in kept["groups"]} == {
        (p, "member") for p, _, _ in kept["groups"]
    }
    # Referrals: f1 signs up (a1 becomes an advocate), f2 rejected at once (a throwaway
    # mailbox: a2 stays not one), f3 held for review (a3 is one while held).
    _event(
        engine,
        at(2026, 5, 3),
        event_id="s-f1",
        type="signup",
        customer_external_id="f1",
        email="f1@example.cn",
        referral_code=code1,
        ip="203.0.113.1",
        user_agent="ua-1",
    )
    _event(
        engine,
        at(2026, 5, 4),
        event_id="s-f2",
        type="signup",
        customer_external_id="f2",
        email="f2@mailinator.com",
        referral_code=code2,
        ip="203.0.113.2",
        user_agent="ua-2",
    )
    _event(
        engine,
        at(2026, 5, 5),
        event_id="seen-a3",
        type="signup",
        customer_external_id="a3",
        ip="10.0.0.7",
        user_agent="Office",
    )
    held = _event(engine, at(2026, 5, 6), event_id="s-f3", type="signup",
                  customer_external_id="f3", email="f3@corp.example", referral_code=code3,
                  ip="10.0.0.7", user_agent="Office")  # fmt: skip
    assert held["status"] == "review"
    kept = _kept_equals_rebuilt(engine)
    advocates = {(p, c) for p, role, c in kept["groups"] if role == "advocate"}
    assert len({c for p, c in advocates if p == 0}) == 2  # a1, a3
    with read_only(engine) as session:  # segments' orders split by advocate: a1's are in
        split = {(cohort, flag) for cohort, _, _, _, flag in cohorts.snapshot(session)["orders"]}
    assert {("segment:1", True), ("segment:1", False), ("segment:2", True)} <= split
    _all_figures(engine)
    # The shop's order events: f1 and f3 buy (f1's referral qualifies).
    for friend, amount, when in (("f1", 20000, at(2026, 5, 7)), ("f3", 8000, at(2026, 5, 8))):
        _event(engine, when, event_id=f"o-{friend}", type="order", customer_external_id=friend,
               order_external_id=f"fo-{friend}", amount=amount, currency="CNY")  # fmt: skip
    _kept_equals_rebuilt(engine)
    # Review: f3's referral rejected (a3 no longer an advocate).
    with unit_of_work(engine) as session:
        (queued,) = referrals.review_queue(session)
    referrals.decide(engine, referral_id=queued["id"], approve=False, note="no")
    kept = _kept_equals_rebuilt(engine)
    assert {c for p, role, c in kept["groups"] if p == 0 and role == "advocate"} == {
        i for (i,) in _ids(engine, "a1")
    }
    _all_figures(engine)
    # A refund inside the hold: the order is no longer paid, the reward clawed back and the
    # referral rejected (a1 no longer an advocate).
    _event(engine, at(2026, 5, 9), event_id="r-f1", type="refund", customer_external_id="f1",
           order_external_id="fo-f1")  # fmt: skip
    kept = _kept_equals_rebuilt(engine)
    assert not {c for p, role, c in kept["groups"] if role == "advocate"}
    # Another friend of a1, approved after review: a1 an advocate again.
    _event(engine, at(2026, 5, 10), event_id="seen-a1", type="signup",
           customer_external_id="a1", ip="10.0.0.8", user_agent="Home")  # fmt: skip
    _event(
        engine,
        at(2026, 5, 11),
        event_id="s-f4",
        type="signup",
        customer_external_id="f4",
        email="f4@corp.example",
        referral_code=code1,
        ip="10.0.0.8",
        user_agent="Home",
    )
    with unit_of_work(engine) as session:
        (queued,) = referrals.review_queue(session)
    referrals.decide(engine, referral_id=queued["id"], approve=True, note="ok")
    _kept_equals_rebuilt(engine)
    # Imports: an order moved from c1 to a1, one no longer paid, one new for f4.
    clock.set_now(NOW)
    _orders(
        engine,
        [
            ("o5", "a1", 4000, at(2026, 5, 5), "CNY", "paid"),
            ("o7", "a3", 2500, at(2026, 4, 3), "CNY", "cancelled"),
            ("o9", "f4", 1200, at(2026, 6, 1), "CNY", "paid"),
            ("o10", "a1", 300, at(2025, 6, 20), "CNY", "paid"),
        ],
    )
    _kept_equals_rebuilt(engine)
    _all_figures(engine)
    # Segment members written, not judged yet (the dirty window): a1 leaves "vip", f4 and
    # c2 enter it; then judged.
    with unit_of_work(engine) as session:
        save_customers(session, [
            CustomerRecord(external_id="a1", name="A1"),
            CustomerRecord(external_id="c2", name="C2", tags=("vip",)),
            CustomerRecord(external_id="f4", tags=("vip",)),
        ])  # fmt: skip
    _all_figures(engine)
    _kept_equals_rebuilt(engine)
    _all_figures(engine)


def _ids(engine: Engine, *external_ids: str) -> list[tuple[int]]:
    with read_only(engine) as session:
        return [
            (i,)
            for i in session.scalars(
                select(Customer.id).where(Customer.external_id.in_(external_ids))
            )
        ]


def test_racing_order_and_referral_writers(engine: Engine) -> None:
    """Orders of an advocate and of her friends imported while friends sign up (some
    rejected at once) and the shop reports their orders, in threads: the aggregates still
    equal a rebuild (PostgreSQL: the customers' rows are locked while their share moves)."""
    clock.set_now(at(2026, 5, 1))
    with unit_of_work(engine) as session:
        save_customers(session, [CustomerRecord(external_id="a1", name="A1")])
        programs.apply_program(session, _program("p"))
    with unit_of_work(engine) as session:
        code = programs.code_for(session, program_slug="p", customer_external_id="a1").code
    errors: list[BaseException] = []

    def imports() -> None:
        try:
            for n in range(10):
                _orders(engine, [(f"i{n}", "a1", 100 * n, at(2026, 4, 1 + n), "CNY", "paid")])
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    def friends(worker: int) -> None:
        try:
            for n in range(5):
                friend = f"f{worker}-{n}"
                mail = "mailinator.com" if n % 2 else "example.cn"
                referrals.ingest_event(engine, referrals.EventIn(
                    event_id=f"s-{friend}", type="signup", occurred_at=at(2026, 5, 2),
                    customer_external_id=friend, email=f"{friend}@{mail}",
                    referral_code=code, ip=f"203.0.113.{worker * 10 + n}",
                    user_agent=f"ua-{friend}",
                ))  # fmt: skip
                referrals.ingest_event(engine, referrals.EventIn(
                    event_id=f"o-{friend}", type="order", occurred_at=at(2026, 5, 3),
                    customer_external_id=friend, order_external_id=f"fo-{friend}",
                    amount=1000 + n, currency="CNY",
                ))  # fmt: skip
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=imports)]
    threads += [threading.Thread(target=friends, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    kept = _kept_equals_rebuilt(engine)
    assert any(role == "advocate" for _, role, _ in kept["groups"])
    clock.set_now(NOW)
    _check_figures(engine)
    _check_figures(engine, program="p")
