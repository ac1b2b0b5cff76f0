"""The response/customer pre-aggregates (customer_latest_responses, promoter_day_counts) stay
equal to what `rebuild` computes from the rows, through imports in several batches (late,
earlier-dated answers), updates (a comment arriving later changes the persona; a score; a
response moved to another customer or day), deletes (erasure), insight recomputes and
racing writers; and the figures that read them equal the figures computed from the rows
by hand. On SQLite and PostgreSQL (ADVOCADO_TEST_DATABASE)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from advocado import clock
from advocado.domain.dashboard import Filters
from advocado.domain.influence import SocialRecord
from advocado.domain.records import CustomerRecord, OrderRecord, ResponseRecord
from advocado.domain.segments import parse_filters
from advocado.services import (
    customer_aggregates,
    dashboard,
    insights,
    records,
    referral_aggregates,
    segments,
)
from advocado.services.voc import reclassify_responses
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import Customer, CustomerInsight, CustomerLatestResponse, Response

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
COMMENTS = (None, "爱了爱了 太惊喜", "系统稳定，ROI很高", "ok", "meh")


def _maintained_equals_rebuilt(engine: Engine) -> dict[str, Any]:
    with unit_of_work(engine) as session:
        kept = customer_aggregates.snapshot(session)
    with unit_of_work(engine) as session:
        customer_aggregates.rebuild(session)
    with unit_of_work(engine) as session:
        rebuilt = customer_aggregates.snapshot(session)
    assert kept == rebuilt
    return kept


def _responses(rng: random.Random, start: int, n: int) -> list[ResponseRecord]:
    return [
        ResponseRecord(
            f"r{start + i}",
            rng.choice((0, 5, 7, 8, 9, 10)),
            NOW - timedelta(days=rng.randint(0, 120), minutes=rng.randint(0, 900)),
            rng.choice([f"c{k}" for k in range(12)] + [None]),
            rng.choice(COMMENTS),
            rng.choice(("q1", "q2", None)),
        )
        for i in range(n)
    ]


def _expected_promoters(
    engine: Engine, start: date | None, end: date | None = None
) -> dict[tuple[str, str], int]:
    """Promoters by dimension, straight from the rows: each customer's latest response."""
    with read_only(engine) as session:
        rows = session.execute(
            select(Response.customer_id, Response.submitted_at, Response.id, Response.score,
                   Response.persona).where(Response.customer_id.is_not(None))
        ).all()  # fmt: skip
        tiers = {
            i.customer_id: (i.value_tier, i.high_influence)
            for i in session.scalars(select(CustomerInsight))
        }
    latest: dict[int, Any] = {}
    for row in rows:
        day = row.submitted_at.astimezone(UTC).date()
        if (start is not None and day < start) or (end is not None and day > end):
            continue
        if row.customer_id not in latest or (row.submitted_at, row.id) > (
            latest[row.customer_id].submitted_at,
            latest[row.customer_id].id,
        ):
            latest[row.customer_id] = row
    found: Counter[tuple[str, str]] = Counter({("influence", "high_influence"): 0})
    for customer, row in latest.items():
        if row.score < 9:
            continue
        tier, high = tiers.get(customer, (None, False))
        found[("persona", row.persona or "unknown")] += 1
        found[("value_tier", tier or "unknown")] += 1
        found[("influence", "high_influence")] += 1 if high else 0
    return dict(found)


def _figure(engine: Engine, f: Filters) -> dict[tuple[str, str], int]:
    with read_only(engine) as session:
        found = dashboard.promoters(session, f)
    return {(r["dimension"], r["value"]): r["promoters"] for r in found.rows}


def _check_figures(engine: Engine) -> None:
    for start in (None, (NOW - timedelta(days=30)).date()):
        expected = _expected_promoters(engine, start)
        assert _figure(engine, Filters(start=start)) == expected
        assert _figure(engine, Filters(start=start, end=NOW.date())) == expected
        # A period ending before the newest answer: computed from the responses themselves.
        end = (NOW - timedelta(days=10)).date()
        assert _figure(engine, Filters(start=start, end=end)) == _expected_promoters(
            engine, start, end
        )


def test_maintained_equals_rebuilt_through_imports_updates_deletes(engine: Engine) -> None:
    clock.set_now(NOW)
    rng = random.Random(11)
    with unit_of_work(engine) as session:
        records.save_customers(session, [CustomerRecord(f"c{k}") for k in range(12)])
    made = 0
    for _ in range(4):  # batches; later batches carry earlier-dated answers too
        batch = _responses(rng, made, 25)
        made += len(batch)
        with unit_of_work(engine) as session:
            records.save_responses(session, batch)
        kept = _maintained_equals_rebuilt(engine)
        _check_figures(engine)
    assert kept["latest"] and kept["promoters"]

    # Updates: a comment arriving later (persona), a new score, another customer, another day.
    with read_only(engine) as session:
        stored = {r.external_id: r for r in session.execute(select(Response)).scalars().all()}
    with unit_of_work(engine) as session:
        latest_ids = set(session.scalars(select(CustomerLatestResponse.response_id)))
    target = next(r for r in stored.values() if r.id in latest_ids)
    with unit_of_work(engine) as session:
        records.save_responses(session, [
            ResponseRecord(target.external_id, 10, target.submitted_at, "c1",
                           "爱了爱了 太惊喜 超喜欢", target.survey),
            ResponseRecord("r3", 0, NOW, "c2", None, "q1"),
            ResponseRecord("r4", 10, NOW - timedelta(days=400), "c3", None, "q1"),
        ])  # fmt: skip
    _maintained_equals_rebuilt(engine)
    _check_figures(engine)

    # Deletes (erasure of a customer's answers).
    with read_only(engine) as session:
        of_c1 = list(
            session.scalars(
                select(Response.external_id).join(Customer).where(Customer.external_id == "c1")
            )
        )
    with unit_of_work(engine) as session:
        assert records.delete_responses(session, [*of_c1, "r5", "no-such"]) == len(
            set(of_c1) | {"r5"}
        )
    kept = _maintained_equals_rebuilt(engine)
    _check_figures(engine)
    with read_only(engine) as session:
        c1 = records.customer_ids(session, ["c1"])["c1"]
    assert c1 not in kept["latest"]


def test_insights_and_reclassification_keep_promoter_counts(engine: Engine) -> None:
    clock.set_now(NOW)
    rng = random.Random(5)
    with unit_of_work(engine) as session:
        records.save_customers(session, [CustomerRecord(f"c{k}") for k in range(12)])
        records.save_responses(session, _responses(rng, 0, 60))
        records.save_orders(session, [
            OrderRecord(f"o{k}", f"c{k % 12}", 1000 * (k + 1), "CNY", NOW - timedelta(days=k))
            for k in range(30)
        ])  # fmt: skip
    with unit_of_work(engine) as session:
        insights.recompute_insights(session, now=NOW)
    _maintained_equals_rebuilt(engine)
    _check_figures(engine)
    with unit_of_work(engine) as session:
        insights.save_social_profiles(
            session,
            [SocialRecord("c1", "weibo", "c1", followers=900_000, engagement_rate=0.2,
                                   brand_mentions=40)],
            high_influence_min=10.0,
        )  # fmt: skip
    _maintained_equals_rebuilt(engine)
    _check_figures(engine)
    with unit_of_work(engine) as session:  # personas of stored comments, re-analysed
        session.execute(Response.__table__.update().values(persona=None, analyzed_at=None))
        customer_aggregates.rebuild(session)  # the line above bypassed the services
    reclassify_responses(engine, batch_size=7)
    _maintained_equals_rebuilt(engine)
    _check_figures(engine)


def test_segment_members_from_latest_responses(engine: Engine) -> None:
    clock.set_now(NOW)
    rng = random.Random(8)
    with unit_of_work(engine) as session:
        records.save_customers(session, [CustomerRecord(f"c{k}") for k in range(12)])
        records.save_responses(session, _responses(rng, 0, 80))
    since = (NOW - timedelta(days=40)).date()
    with read_only(engine) as session:
        rows = session.execute(
            select(Response.customer_id, Response.submitted_at, Response.id, Response.score)
            .where(Response.customer_id.is_not(None))
        ).all()  # fmt: skip
        latest: dict[int, Any] = {}
        for row in rows:
            if row.customer_id not in latest or (row.submitted_at, row.id) > (
                latest[row.customer_id].submitted_at,
                latest[row.customer_id].id,
            ):
                latest[row.customer_id] = row
        promoters = {c for c, r in latest.items() if r.score >= 9}
        recent = {c for c, r in latest.items() if r.score >= 9 and r.submitted_at.date() >= since}
        spec = parse_filters({"nps_category": ["promoter"]})
        assert set(session.scalars(segments.member_ids(session, spec))) == promoters
        assert segments.count_members(session, spec) == len(promoters)
        spec = parse_filters({"nps_category": ["promoter"], "submitted_from": since.isoformat()})
        assert set(session.scalars(segments.member_ids(session, spec))) == recent


def test_racing_writers_for_one_customer(engine: Engine) -> None:
    """Threads answering for the same customers at once: the latest response and the counts
    still equal the rows (PostgreSQL: the customer rows are locked while recomputed)."""
    clock.set_now(NOW)
    with unit_of_work(engine) as session:
        records.save_customers(session, [CustomerRecord(f"c{k}") for k in range(3)])
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        rng = random.Random(worker)
        try:
            for n in range(8):
                batch = [
                    ResponseRecord(f"w{worker}-{n}-{k}", rng.choice((3, 9, 10)),
                                   NOW - timedelta(minutes=rng.randint(0, 5000)), f"c{k}")
                    for k in range(3)
                ]  # fmt: skip
                with unit_of_work(engine) as session:
                    records.save_responses(session, batch)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    kept = _maintained_equals_rebuilt(engine)
    assert len(kept["latest"]) == 3
    _check_figures(engine)


def test_top_advocates_equal_the_full_ranking(engine: Engine) -> None:
    """The top-N (revenue summed for the candidates only) is the full query's first N rows,
    ties on qualified and signups included."""
    from advocado.services import programs
    from advocado.store.models import Referral

    clock.set_now(NOW)
    rng = random.Random(3)
    program = {"slug": "p", "name": "P", "currency": "CNY", "starts_at": "2026-01-01",
               "landing_url": "https://shop.example.com/",
               "rewards": [{"id": "t", "to": "referrer", "type": "points", "label": "p",
                            "amount": 1}]}  # fmt: skip
    with unit_of_work(engine) as session:
        records.save_customers(session, [CustomerRecord(f"c{k}") for k in range(60)])
        programs.apply_program(session, program)
        ids = records.customer_ids(session, [f"c{k}" for k in range(60)])
        program_id = session.scalar(select(programs.Program.id))
        friends = [ids[f"c{friend}"] for friend in range(20, 60)]
        # written directly, so followed as the services do (services.referral_aggregates)
        with referral_aggregates.friends_changing(session, friends):
            for friend in range(20, 60):
                when = NOW - timedelta(days=rng.randint(0, 60))
                status = rng.choice(("signed_up", "qualified", "rewarded", "rejected"))
                session.add(Referral(
                    program_id=program_id, advocate_id=ids[f"c{rng.randint(0, 9)}"],
                    referee_id=ids[f"c{friend}"], source="code", status=status, findings=[],
                    signed_up_at=when, created_at=when, updated_at=when,
                    qualified_at=when if status in ("qualified", "rewarded") else None,
                ))  # fmt: skip
        session.flush()
        records.save_orders(session, [
            OrderRecord(f"o{k}", f"c{rng.randint(20, 59)}", rng.choice((100, 200)), "CNY",
                        NOW - timedelta(days=rng.randint(0, 60)))
            for k in range(80)
        ])  # fmt: skip
    for f in (Filters(), Filters(start=(NOW - timedelta(days=20)).date())):
        with read_only(engine) as session:
            scope = dashboard._scope(session, f)
            full = dashboard._advocate_rows(
                session, dashboard._advocate_table(session, scope), scope.currency
            )
            assert len(full) > 3
            for limit in range(1, len(full) + 2):
                assert dashboard._top_advocates(session, scope, limit) == full[:limit]


def _clv_by_hand(engine: Engine, end: datetime) -> dict[str, tuple[int, int, int]]:
    from advocado.store.models import Order, Referral

    low = end - timedelta(days=365)
    with read_only(engine) as session:
        advocates = set(
            session.scalars(select(Referral.advocate_id).where(Referral.status != "rejected"))
        )
        orders = session.execute(
            select(Order.customer_id, Order.amount).where(
                Order.status == "paid", Order.currency == "CNY", Order.placed_at >= low,
                Order.placed_at < end,
            )
        ).all()  # fmt: skip
    found: dict[str, tuple[set[int], int, int]] = {
        "advocates": (set(), 0, 0),
        "non_advocates": (set(), 0, 0),
    }
    for customer, amount in orders:
        group = "advocates" if customer in advocates else "non_advocates"
        who, n, revenue = found[group]
        who.add(customer)
        found[group] = (who, n + 1, revenue + amount)
    return {g: (len(w), n, r) for g, (w, n, r) in found.items()}


def test_paid_order_days_and_clv(engine: Engine) -> None:
    """Orders imported in batches, re-imported changed (refunded, moved to another customer,
    day or currency), and sent as shop events: paid_order_days equals the rebuilt one, and the
    CLV figure equals the orders counted by hand."""
    from advocado.services import programs, referrals
    from advocado.services.referrals import EventIn

    clock.set_now(NOW)
    rng = random.Random(9)
    program = {"slug": "p", "name": "P", "currency": "CNY", "starts_at": "2026-01-01",
               "landing_url": "https://shop.example.com/",
               "rewards": [{"id": "t", "to": "referrer", "type": "points", "label": "p",
                            "amount": 1}]}  # fmt: skip
    with unit_of_work(engine) as session:
        records.save_customers(session, [CustomerRecord(f"c{k}") for k in range(15)])
        programs.apply_program(session, program)
        code = programs.code_for(session, program_slug="p", customer_external_id="c0").code

    def order(n: int) -> OrderRecord:
        return OrderRecord(
            f"o{n}", f"c{rng.randint(1, 14)}", rng.choice((100, 250)),
            rng.choice(("CNY", "CNY", "USD")),
            NOW - timedelta(days=rng.randint(0, 500), hours=rng.randint(0, 23)),
            rng.choice(("paid", "paid", "paid", "refunded")),
        )  # fmt: skip

    for batch in range(3):
        with unit_of_work(engine) as session:
            records.save_orders(session, [order(n) for n in range(batch * 20, batch * 20 + 30)])
        _maintained_equals_rebuilt(engine)
    # A friend signs up with c0's code and orders twice (the shop's events).
    for n, (kind, when) in enumerate(
        (("signup", NOW - timedelta(days=3)), ("order", NOW - timedelta(days=2)),
         ("order", NOW - timedelta(days=400)))
    ):  # fmt: skip
        referrals.ingest_event(engine, EventIn(
            event_id=f"e{n}", type=kind, customer_external_id="friend", occurred_at=when,
            referral_code=code, **({"order_external_id": f"shop{n}", "amount": 5000,
                                    "currency": "CNY"} if kind == "order" else {}),
        ))  # fmt: skip
    with unit_of_work(engine) as session:  # the advocate buys too
        records.save_orders(session, [OrderRecord("a1", "c0", 700, "CNY", NOW)])
    kept = _maintained_equals_rebuilt(engine)
    assert kept["orders"]
    for f, end in (
        (Filters(), datetime(2026, 7, 1, tzinfo=UTC)),
        (Filters(end=date(2026, 3, 31)), datetime(2026, 4, 1, tzinfo=UTC)),
    ):
        with read_only(engine) as session:
            rows = {r["group"]: r for r in dashboard.clv(session, f).rows}
        expected = _clv_by_hand(engine, end)
        assert expected["advocates"][0] == 1 or f.end is not None
        for group, (customers, orders, revenue) in expected.items():
            assert (rows[group]["customers"], rows[group]["orders"], rows[group]["revenue"]) == (
                customers, orders, revenue,
            )  # fmt: skip
