"""Each dashboard figure against values computed by hand from a small, known dataset, through
the service, the JSON API and the CSV export (which must agree), on SQLite and PostgreSQL."""

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Date, Engine, literal, select

from advocado import clock
from advocado.domain.dashboard import Filters, bucket_start, parse_filters
from advocado.domain.records import CustomerRecord, FieldError, OrderRecord, ResponseRecord
from advocado.services import dashboard, programs, referrals, segments
from advocado.services.apikeys import create_api_key
from advocado.services.clicks import fingerprint
from advocado.services.records import save_customers, save_orders, save_responses
from advocado.store.db import as_date, bucket_day, read_only, unit_of_work
from advocado.store.models import Click
from advocado.web.app import create_app

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


PROGRAM = {
    "slug": "p",
    "name": "P",
    "currency": "CNY",
    "starts_at": "2026-01-01",
    "landing_url": "https://shop.example.com/",
    "attribution_days": 30,
    "qualify": {"event": "first_order", "min_amount": 0},
    "hold_days": 7,
    "rewards": [
        {
            "id": "welcome",
            "to": "referee",
            "type": "coupon",
            "label": "w",
            "coupon": {"amount_off": 500, "min_spend": 0, "valid_days": 30},
        },
        {
            "id": "thanks",
            "to": "referrer",
            "type": "coupon",
            "label": "t",
            "coupon": {"amount_off": 1000, "min_spend": 0, "valid_days": 30},
        },
    ],
    "fraud": {"rules": {"same_ip_user_agent": "off", "disposable_email": "reject"}},
}


def _event(engine: Engine, when: datetime, **fields: Any) -> dict[str, Any]:
    clock.set_now(when)
    return referrals.ingest_event(engine, referrals.EventIn(occurred_at=when, **fields))


@pytest.fixture
def data(engine: Engine) -> Iterator[Engine]:
    """a1, a2 advocates (codes on 1 May); c1..c4 other customers; friends f1, f2 (qualify by
    their first order) of a1 and f3 of a2 (throwaway mailbox: rejected)."""
    clock.set_now(at(1, 1))
    people = ["a1", "a2", "c1", "c2", "c3", "c4"]
    answers = [
        ("a1", 10, at(3, 2), "s1"),
        ("a2", 9, at(3, 3), "s1"),
        ("c1", 7, at(3, 10), "s1"),
        ("c2", 3, at(3, 11), "s2"),
        ("c3", 10, at(4, 1), "s2"),
        ("c4", 0, at(4, 2), "s1"),
    ]
    orders = [
        ("o1", "a1", 5000, at(2, 1)),
        ("o2", "a1", 7000, at(4, 1)),
        ("o3", "a2", 3000, at(3, 1)),
        ("o4", "c1", 10000, at(3, 5)),
    ]
    with unit_of_work(engine) as session:
        save_customers(session, [CustomerRecord(external_id=p, name=p.upper()) for p in people])
        save_responses(
            session,
            [
                ResponseRecord(
                    external_id=f"r-{who}",
                    score=score,
                    submitted_at=when,
                    customer_external_id=who,
                    survey=survey,
                )
                for who, score, when, survey in answers
            ],
        )
        save_orders(
            session,
            [
                OrderRecord(
                    external_id=o,
                    customer_external_id=who,
                    amount=amount,
                    currency="CNY",
                    placed_at=when,
                )
                for o, who, amount, when in orders
            ],
        )
        programs.apply_program(session, PROGRAM)
    clock.set_now(at(5, 1))
    with unit_of_work(engine) as session:
        code1 = programs.code_for(session, program_slug="p", customer_external_id="a1")
        code2 = programs.code_for(session, program_slug="p", customer_external_id="a2")
        visits = [
            (code1, "v1", False, at(5, 2, 9)),
            (code1, "v1", False, at(5, 2, 10)),
            (code1, "v1", False, at(5, 9, 9)),
            (code1, "v2", False, at(5, 9, 10)),
            (code1, "bot", True, at(5, 9, 11)),
            (code2, "v3", False, at(5, 19)),
        ]
        session.add_all(
            [
                Click(
                    code_id=code.id,
                    clicked_at=when,
                    visitor_id=visitor,
                    ip_hash=None,
                    fingerprint=fingerprint(visitor, "ua"),
                    user_agent="ua",
                    referrer=None,
                    is_bot=bot,
                )
                for code, visitor, bot, when in visits
            ]
        )
        codes = (code1.code, code2.code)
    for friend, code, when, email in (
        ("f1", codes[0], at(5, 3), "f1@example.cn"),
        ("f2", codes[0], at(5, 10), "f2@example.cn"),
        ("f3", codes[1], at(5, 20), "f3@mailinator.com"),
    ):
        _event(
            engine,
            when,
            event_id=f"s-{friend}",
            type="signup",
            customer_external_id=friend,
            email=email,
            referral_code=code,
            ip=f"203.0.113.{friend[1]}",
            user_agent=f"ua-{friend}",
        )
    for friend, amount, when in (("f1", 20000, at(5, 5)), ("f2", 10000, at(5, 12))):
        _event(
            engine,
            when,
            event_id=f"o-{friend}",
            type="order",
            customer_external_id=friend,
            order_external_id=f"fo-{friend}",
            amount=amount,
            currency="CNY",
        )
    clock.set_now(NOW)
    yield engine


def figure(engine: Engine, name: str, **params: str) -> dashboard.Panel:
    with read_only(engine) as session:
        return dashboard.panel(session, name, parse_filters(params))


def test_nps_over_time_weekly_and_monthly(data: Engine) -> None:
    weekly = figure(data, "nps")
    got = {
        (r["period"], r["survey"]): (r["promoters"], r["passives"], r["detractors"], r["nps"])
        for r in weekly.rows
    }
    assert got == {
        ("2026-03-02", "s1"): (2, 0, 0, 100.0),
        ("2026-03-09", "s1"): (0, 1, 0, 0.0),
        ("2026-03-09", "s2"): (0, 0, 1, -100.0),
        ("2026-03-30", "s1"): (0, 0, 1, -100.0),
        ("2026-03-30", "s2"): (1, 0, 0, 100.0),
    }
    assert weekly.summary["overall"]["nps"] == 16.7  # (3 promoters - 2 detractors) / 6
    monthly = figure(data, "nps", bucket="month")
    got = {(r["period"], r["survey"]): r["nps"] for r in monthly.rows}
    assert got == {
        ("2026-03-01", "s1"): 66.7,
        ("2026-03-01", "s2"): -100.0,
        ("2026-04-01", "s1"): -100.0,
        ("2026-04-01", "s2"): 100.0,
    }
    april = figure(data, "nps", **{"from": "2026-04-01", "to": "2026-04-30"})
    assert april.summary["overall"]["nps"] == 0.0  # one promoter, one detractor


def test_filters_by_segment_and_program(data: Engine) -> None:
    with unit_of_work(data) as session:
        segments.create_segment(
            session, name="Promoters", slug="promoters", filters={"nps_category": ["promoter"]}
        )
    in_segment = figure(data, "nps", segment="promoters")  # a1, a2, c3: all promoters
    assert in_segment.summary["overall"]["promoters"] == 3
    assert in_segment.summary["overall"]["responses"] == 3
    in_program = figure(data, "nps", program="p")  # a1, a2 (advocates); friends gave no score
    assert in_program.summary["overall"]["responses"] == 2
    with pytest.raises(FieldError, match="segment"):
        figure(data, "nps", segment="nope")
    with pytest.raises(FieldError, match="program"):
        figure(data, "referrals", program="nope")


def test_promoters_by_persona_and_tier(data: Engine) -> None:
    found = figure(data, "promoters")
    assert found.summary["promoters"] == 3  # a1, a2, c3
    personas = [r for r in found.rows if r["dimension"] == "persona"]
    assert sum(r["promoters"] for r in personas) == 3
    with read_only(data) as session:
        people = dashboard.drill(session, "promoters", Filters(), {}, limit=None)
    assert sorted(r["customer"] for r in people.rows) == ["a1", "a2", "c3"]


def test_referral_funnel_money_and_roi(data: Engine) -> None:
    with unit_of_work(data) as session:
        dashboard.set_paid_cac(session, amount=5000, currency="CNY", actor="test")
    found = figure(data, "referrals")
    counts = {r["stage"]: r["count"] for r in found.rows}
    assert counts["clicks"] == 6 and counts["unique_clicks"] == 3  # v1, v2, v3; bot left out
    assert counts["signups"] == 3 and counts["qualified"] == 2 and counts["rejected"] == 1
    s = found.summary
    assert s["revenue"] == 30000  # f1 20000 + f2 10000
    assert s["rewards_cost"] == 3000  # two welcome coupons (500) + two thanks coupons (1000)
    assert s["cost_per_acquired"] == 1500 and s["paid_cac"] == 5000
    assert s["roi"] == pytest.approx(9.0)  # (30000 - 3000) / 3000
    assert s["saving_vs_paid"] == 7000
    assert [r["referrals"] for r in s["rejected_reasons"]] == [1]
    with read_only(data) as session:
        rejected = dashboard.drill(
            session, "referrals", Filters(), {"stage": "rejected"}, limit=None
        )
        clicks = dashboard.drill(session, "referrals", Filters(), {"stage": "clicks"}, limit=None)
        revenue = dashboard.drill(session, "referrals", Filters(), {"stage": "revenue"}, limit=None)
    assert [r["friend"] for r in rejected.rows] == ["f3"]
    assert len(clicks.rows) == 6
    assert sorted(r["amount"] for r in revenue.rows) == [10000, 20000]
    may = figure(data, "referrals", **{"from": "2026-05-09", "to": "2026-05-31"})
    assert {r["stage"]: r["count"] for r in may.rows}["clicks"] == 4  # 9 May x3, 19 May x1


def test_k_factor_and_time_to_first_referral(data: Engine) -> None:
    found = figure(data, "k_factor")
    s = found.summary
    assert s["invitations_per_advocate"] == 1.5  # 3 unique visitors / 2 advocates
    assert s["conversion"] == 1.0  # 3 signups / 3 invitations
    assert s["k_factor"] == 1.5
    assert s["time_to_first"]["median_days"] == 10.5  # a1: 2 days, a2: 19 days
    assert s["time_to_first"]["advocates"] == 2


def test_clv_of_advocates_and_the_rest(data: Engine) -> None:
    rows = {r["group"]: r for r in figure(data, "clv").rows}
    # a1 is the only advocate (a2's only friend was rejected)
    assert rows["advocates"] == {
        "group": "advocates",
        "customers": 1,
        "orders": 2,
        "revenue": 12000,
        "average_order_value": 6000,
        "frequency": 2.0,
        "value_12m": 12000,
    }
    assert rows["non_advocates"]["customers"] == 4  # a2, c1, f1, f2
    assert rows["non_advocates"]["revenue"] == 43000
    assert rows["non_advocates"]["value_12m"] == 10750


def test_top_advocates(data: Engine) -> None:
    rows = figure(data, "top_advocates").rows
    assert [
        (r["customer"], r["signups"], r["qualified"], r["rejected"], r["referred_revenue"])
        for r in rows
    ] == [("a1", 2, 2, 0, 30000), ("a2", 1, 0, 1, 0)]


@pytest.fixture
def api(data: Engine, database_url: str) -> Iterator[TestClient]:
    with unit_of_work(data) as session:
        _, token = create_api_key(session, name="t", scopes=["read"])
    app = create_app(database_url)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client
    app.state.engine.dispose()


def test_json_and_csv_are_the_same_figures(api: TestClient, data: Engine) -> None:
    for name in dashboard.PANELS:
        body = api.get(f"/api/v1/dashboard/{name}", params={"bucket": "month"}).json()
        assert body == figure(data, name, bucket="month").as_dict()
        text = api.get(
            f"/api/v1/dashboard/{name}", params={"bucket": "month", "format": "csv"}
        ).text
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        assert len(rows) == len(body["rows"])
        assert list(rows[0]) == body["columns"] if rows else True
    drill = api.get("/api/v1/dashboard/referrals/drill", params={"stage": "rejected"}).json()
    assert [r["friend"] for r in drill["rows"]] == ["f3"]


def test_bad_filter_is_named(api: TestClient) -> None:
    answer = api.get("/api/v1/dashboard/nps", params={"from": "2026-13-01"})
    assert answer.status_code == 422
    assert "from" in answer.text
    assert api.get("/api/v1/dashboard/nope").status_code == 404
    assert api.post("/api/v1/dashboard/nps").status_code in (403, 405)


def test_figures_follow_new_events(data: Engine) -> None:
    """No stale aggregate: a new signup is in the next request's funnel."""
    before = {r["stage"]: r["count"] for r in figure(data, "referrals").rows}["signups"]
    with read_only(data) as session:
        code = session.scalar(select(Click.code_id).limit(1))
    assert code is not None
    from advocado.store.models import ReferralCode

    with read_only(data) as session:
        value = session.scalar(select(ReferralCode.code).where(ReferralCode.id == code))
    _event(
        data,
        at(6, 1),
        event_id="s-f9",
        type="signup",
        customer_external_id="f9",
        email="f9@example.cn",
        referral_code=value,
        ip="203.0.113.99",
        user_agent="x",
    )
    after = {r["stage"]: r["count"] for r in figure(data, "referrals").rows}["signups"]
    assert after == before + 1


@pytest.mark.parametrize("bucket", ["week", "month"])
def test_sql_buckets_are_the_charts_weeks_and_months(engine: Engine, bucket: str) -> None:
    """NPS over time buckets its day rows in SQL (store.db.bucket_day): for every day of two
    years, the database gives the same Monday or first of the month as the chart's rule."""
    days = [date(2024, 1, 1) + timedelta(days=n) for n in range(731)]
    with read_only(engine) as session:
        found = [
            as_date(session.scalar(select(bucket_day(session, literal(d, Date), bucket))))
            for d in days
        ]
    assert found == [bucket_start(d, bucket) for d in days]
