"""Drill-down pages under a segment or program filter: a page (`limit` rows) walks the rows in
their order and probes each one's membership when the cohort is large, reads the members'
rows (IN) when it is small; either way the page is exactly the first `limit` rows of the
full list (what the CSV export has), the full list is the one computed from the rows (the
segment's filter evaluated; a program's people ∩ everyone), and its length is the figure.
Checked all time, over 90 days, under segments with dirty members in and out (before the
worker judges them) and after, under a program, with clicks rolled up and a live tail. On
SQLite and PostgreSQL (ADVOCADO_TEST_DATABASE)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from advocado import clock
from advocado.domain.dashboard import Filters
from advocado.domain.records import CustomerRecord, OrderRecord, ResponseRecord
from advocado.services import (
    audit,
    click_rollup,
    cohorts,
    dashboard,
    plans,
    programs,
    referrals,
    segments,
)
from advocado.services.clicks import fingerprint
from advocado.services.records import save_customers, save_orders, save_responses
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import Click, Customer, Message, ReferralCode

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
COMMENTS = (None, "爱了爱了 太惊喜 超喜欢", "系统稳定，ROI很高", "ok")
PEOPLE = [f"c{k}" for k in range(24)]
ADVOCATES = PEOPLE[:10]
SEGMENTS = {
    "everyone": {},
    "vip": {"tags_any": ["vip"]},
    "promoters": {"nps_category": ["promoter"]},
}
PROGRAM = {
    "slug": "p", "name": "P", "currency": "CNY", "starts_at": "2026-01-01",
    "landing_url": "https://shop.example.com/", "attribution_days": 30,
    "qualify": {"event": "first_order", "min_amount": 0}, "hold_days": 7,
    "rewards": [{"id": "thanks", "to": "referrer", "type": "coupon", "label": "t",
                 "coupon": {"amount_off": 1000, "min_spend": 0, "valid_days": 30}}],
    "fraud": {"rules": {"same_ip_user_agent": "off", "disposable_email": "reject"}},
}  # fmt: skip
PLAN = {
    "slug": "q2", "name": "Q2", "owner": "Li Na", "starts_on": "2026-03-01",
    "ends_on": "2026-07-30", "currency": "CNY",
    "goals": {"leads": 3, "revenue": "200.00", "referrals_qualified": 3},
}  # fmt: skip
CASES: list[tuple[str, dict[str, str]]] = [
    ("nps", {}),
    ("nps", {"category": "promoter"}),
    ("promoters", {}),
    ("promoters", {"dimension": "persona", "value": "emotional"}),
    ("promoters", {"dimension": "value_tier", "value": "unknown"}),
    *[("referrals", {"stage": s}) for s in ("clicks", "unique_clicks", "signups", "qualified",
                                            "rejected", "revenue", "cost")],
    ("k_factor", {}),
    *[("plan", {"plan": "q2", "goal": g}) for g in ("leads", "revenue", "referrals_qualified")],
    ("clv", {"group": "advocates"}),
    ("clv", {"group": "non_advocates"}),
    ("reviews", {}),
    ("reviews", {"stage": "clicked"}),
]  # fmt: skip


def _at(rng: random.Random) -> datetime:
    return NOW - timedelta(days=rng.randint(0, 150), minutes=rng.randint(0, 900))


def _clicks(engine: Engine, rng: random.Random, n: int) -> None:
    with unit_of_work(engine) as session:
        codes = list(session.scalars(select(ReferralCode.id)))
        session.add_all(
            Click(
                code_id=rng.choice(codes),
                clicked_at=_at(rng),
                visitor_id=f"v{k % 7}",
                ip_hash=None,
                fingerprint=fingerprint(f"v{k % 7}", "ua"),
                user_agent="ua",
                referrer=None,
                is_bot=k % 9 == 0,
            )  # fmt: skip
            for k in range(n)
        )


def _review_asks(engine: Engine, rng: random.Random, start: int, n: int) -> None:
    """Review asks written as rows (the drill reads the rows)."""
    with unit_of_work(engine) as session:
        ids = list(session.scalars(select(Customer.id)))
        for k in range(start, start + n):
            when = _at(rng)
            clicked = when + timedelta(hours=1) if k % 3 == 0 else None
            session.add(
                Message(
                    cause_key=f"ask-{k}",
                    customer_id=rng.choice(ids),
                    template="review_ask",
                    channel="email",
                    marketing=False,
                    status="clicked" if clicked else rng.choice(("sent", "skipped")),
                    context={},
                    due_at=when,
                    sent_at=when,
                    clicked_at=clicked,
                    created_at=when,
                    updated_at=when,
                )  # fmt: skip
            )


@pytest.fixture
def data(engine: Engine) -> Engine:
    rng = random.Random(5)
    clock.set_now(NOW - timedelta(days=160))
    with unit_of_work(engine) as session:
        save_customers(session, [
            CustomerRecord(p, name=p.upper(), tags=("vip",) if k % 3 == 0 else ())
            for k, p in enumerate(PEOPLE)
        ])  # fmt: skip
        save_responses(session, [
            ResponseRecord(f"r{k}", rng.choice((0, 5, 7, 9, 10, 10)), _at(rng),
                           rng.choice(PEOPLE + [None]), rng.choice(COMMENTS),
                           rng.choice(("s1", "s2")))
            for k in range(70)
        ])  # fmt: skip
        save_orders(session, [
            OrderRecord(f"o{k}", rng.choice(PEOPLE), 1000 * (k + 1), "CNY", _at(rng))
            for k in range(30)
        ])  # fmt: skip
        programs.apply_program(session, PROGRAM)
        plans.apply_plan(session, data=PLAN, actor=audit.CLI)
        session.flush()
        codes = [
            programs.code_for(session, program_slug="p", customer_external_id=a).code
            for a in ADVOCATES
        ]
    for k in range(18):
        when = _at(rng)
        clock.set_now(when)
        mailbox = "mailinator.com" if k % 5 == 0 else "example.cn"
        referrals.ingest_event(engine, referrals.EventIn(
            occurred_at=when, event_id=f"s{k}", type="signup", customer_external_id=f"f{k}",
            email=f"f{k}@{mailbox}", referral_code=rng.choice(codes), ip=f"203.0.113.{k}",
            user_agent=f"ua-{k}"))  # fmt: skip
        if k % 3:
            order_at = when + timedelta(days=1)
            clock.set_now(order_at)
            referrals.ingest_event(engine, referrals.EventIn(
                occurred_at=order_at, event_id=f"o{k}", type="order",
                customer_external_id=f"f{k}", order_external_id=f"fo{k}",
                amount=500 * (k + 1), currency="CNY"))  # fmt: skip
    clock.set_now(NOW)
    _clicks(engine, rng, 60)
    with unit_of_work(engine) as session:
        click_rollup.roll_up_clicks(session)
    _clicks(engine, rng, 15)  # the live tail, not rolled up
    _review_asks(engine, rng, 0, 40)
    with unit_of_work(engine) as session:
        for slug, filters in SEGMENTS.items():
            segments.create_segment(session, name=slug, slug=slug, filters=filters)
    return engine


def _drill(engine: Engine, name: str, f: Filters, key: dict[str, str], limit: int | None,
           monkeypatch: pytest.MonkeyPatch, *, large: bool) -> list[dict[str, Any]]:  # fmt: skip
    """A drill's rows, the cohort probed per row (`large`) or read with IN."""
    with monkeypatch.context() as patch:
        patch.setattr(dashboard, "LARGE_COHORT", 0 if large else 10**9)
        with read_only(engine) as session:
            return dashboard.drill(session, name, f, key, limit=limit).rows


def _from_rows(engine: Engine, name: str, f: Filters, key: dict[str, str],
               monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:  # fmt: skip
    """The full list with the segment's filter evaluated (no stored members); a program as
    its people ∩ everyone."""
    if f.program and not f.segment:
        f = Filters(start=f.start, end=f.end, program=f.program, segment="everyone")
    with monkeypatch.context() as patch:
        patch.setattr(cohorts, "LIVE_LIMIT", -1)
        with read_only(engine) as session:
            return dashboard.drill(session, name, f, key, limit=None).rows


def _figure(engine: Engine, name: str, f: Filters, key: dict[str, str]) -> int | None:
    """The figure a drill lists the rows of (None: no one figure)."""
    with read_only(engine) as session:
        if name == "plan":
            found = dashboard.panel(session, "plan", f)
            row = next(r for r in found.rows if r["goal"] == key["goal"])
            return None if key["goal"] == "revenue" else row["actual"]
        panel = dashboard.panel(session, name, f)
    if name == "nps" and not key:
        return sum(r["promoters"] + r["passives"] + r["detractors"] for r in panel.rows)
    if name == "promoters" and key:
        found = {(r["dimension"], r["value"]): r["promoters"] for r in panel.rows}
        return found.get((key["dimension"], key["value"]), 0)
    if name == "promoters":
        return int(panel.summary["promoters"])
    if name == "referrals" and key["stage"] in dashboard.FUNNEL:
        return next(r["count"] for r in panel.rows if r["stage"] == key["stage"])
    if name == "clv":
        return next(r["customers"] for r in panel.rows if r["group"] == key["group"])
    if name == "k_factor" and f.start is None:
        return next(r["value"] for r in panel.rows if r["metric"] == "advocates")
    return None


def _check(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    period = ((NOW - timedelta(days=89)).date(), NOW.date())
    filters = [Filters(), Filters(start=period[0], end=period[1])]
    for slug in SEGMENTS:
        filters += [Filters(segment=slug), Filters(start=period[0], end=period[1], segment=slug)]
    filters += [Filters(program="p"), Filters(program="p", segment="vip")]
    for f in filters:
        for name, key in CASES:
            full = _from_rows(engine, name, f, key, monkeypatch)
            for large in (True, False):
                assert _drill(engine, name, f, key, None, monkeypatch, large=large) == full
                for limit in (1, 2, 5, 200):
                    page = _drill(engine, name, f, key, limit, monkeypatch, large=large)
                    assert page == full[:limit], (name, key, f, large, limit)
            figure = _figure(engine, name, f, key)
            if figure is not None:
                assert figure == len(full), (name, key, f)


def test_drill_pages_are_the_first_rows_of_the_full_list(
    data: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _check(data, monkeypatch)  # segments just saved: no dirty members
    rng = random.Random(9)
    with unit_of_work(data) as session:  # dirty members in and out, before the worker runs
        save_customers(session, [
            CustomerRecord(p, tags=() if k % 3 == 0 else ("vip",))
            for k, p in enumerate(PEOPLE[:9])
        ])  # fmt: skip
        save_responses(session, [
            ResponseRecord(f"r{k}", 10 if k % 2 else 0, NOW - timedelta(hours=k), PEOPLE[k],
                           COMMENTS[1], "s1")
            for k in range(8)
        ])  # fmt: skip
    with read_only(data) as session:
        segment, spec = segments.segment_filter(session, slug="vip")
        found = cohorts.segment_members(session, segment.id, spec)
        assert found is not None and found.into and found.out
    _clicks(data, rng, 10)
    _review_asks(data, rng, 40, 10)
    _check(data, monkeypatch)
    cohorts.settle(data)
    _check(data, monkeypatch)
