"""Dashboard benchmark (issue 6): p95 latency of every dashboard request, on SQLite and
PostgreSQL, beside a reference measured in the same run on the same data.

    .venv/bin/python bench/dashboard.py [--customers 20000] [--database sqlite|postgresql|both]
                                        [--repeat 20]

Generates customers, 2 responses and 10 clicks per customer (the issue's full size is
--customers 1000000: 1M customers, 2M responses, 10M clicks), a program with codes for 5 % of
the customers, referrals for 1 in 30 clicks, and orders. Then each dashboard figure is asked
`--repeat` times through the real app (GET /api/v1/dashboard/{figure}, an API key, the
ASGI app in-process), without a filter and with a 90-day period, and its p95 is printed with
its ratio to the reference: `SELECT count(*) FROM clicks` (p95 of as many runs).

How the figures stay correct as events arrive: NPS reads response_day_counts, adjusted by
services.records in the same transaction as each write to responses; every other figure is
computed from the rows at request time, on indexed columns (clicks by code and time,
referrals by status, orders by customer and time). Nothing is cached, so nothing goes stale;
the price is that the click figures scan the period's clicks (see the ratios).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, insert, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fastapi.testclient import TestClient  # noqa: E402

from advocado import clock  # noqa: E402
from advocado.services import dashboard, plans, programs  # noqa: E402
from advocado.services.apikeys import create_api_key  # noqa: E402
from advocado.store.db import ensure_schema, make_engine, unit_of_work  # noqa: E402
from advocado.store.models import (  # noqa: E402
    Click,
    Customer,
    Order,
    Referral,
    ReferralCode,
    Response,
    ResponseDayCount,
)
from advocado.web.app import create_app  # noqa: E402

POSTGRES = os.environ.get(
    "ADVOCADO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 365
PLAN = {
    "slug": "bench",
    "name": "Bench plan",
    "owner": "bench",
    "starts_on": (NOW - timedelta(days=180)).date().isoformat(),
    "ends_on": (NOW + timedelta(days=10)).date().isoformat(),
    "goals": {"leads": 1000, "revenue": "100000.00", "reviews_asked": 100, "reviews_clicked": 10,
              "ugc_entries": 10, "ugc_featured": 1, "referrals_qualified": 500},
    "recruitment": {"email": 100, "wecom": 100, "events": 10},
}  # fmt: skip
BATCH = 5000
PROGRAM = {
    "slug": "bench",
    "name": "Bench",
    "currency": "CNY",
    "starts_at": "2025-01-01",
    "landing_url": "https://shop.example.com/",
    "rewards": [{"id": "thanks", "to": "referrer", "type": "points", "label": "p", "amount": 100}],
}


def _batches(rows: list[dict[str, object]]) -> list[list[dict[str, object]]]:
    return [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]


def _insert(engine: Engine, table: object, rows: list[dict[str, object]]) -> None:
    with engine.begin() as connection:
        for batch in _batches(rows):
            connection.execute(insert(table), batch)  # type: ignore[arg-type]


def generate(engine: Engine, customers: int, seed: int = 6) -> dict[str, int]:
    rng = random.Random(seed)
    clock.set_now(NOW)

    def moment() -> datetime:
        return NOW - timedelta(days=rng.random() * DAYS)

    _insert(
        engine,
        Customer,
        [
            {
                "external_id": f"c{i}",
                "name": f"C{i}",
                "locale": "zh-CN",
                "timezone": "UTC",
                "marketing_consent": True,
                "tags": [],
                "attributes": {},
                "created_at": NOW,
                "updated_at": NOW,
            }
            for i in range(1, customers + 1)
        ],
    )
    responses, days = [], Counter()
    for n in range(2 * customers):
        when, score = moment(), rng.choice((0, 3, 6, 7, 8, 9, 9, 10, 10, 10))
        survey = rng.choice(("onboarding", "relationship"))
        responses.append(
            {
                "external_id": f"r{n}",
                "customer_id": rng.randint(1, customers),
                "score": score,
                "survey": survey,
                "submitted_at": when,
                "created_at": NOW,
                "updated_at": NOW,
                "persona": rng.choice(("emotional", "rational", "neutral")),
            }
        )
        days[(when.date(), survey, score)] += 1
    _insert(engine, Response, responses)
    _insert(
        engine,
        ResponseDayCount,
        [{"day": d, "survey": s, "score": sc, "responses": n} for (d, s, sc), n in days.items()],
    )
    with unit_of_work(engine) as session:
        programs.apply_program(session, PROGRAM)
    advocates = rng.sample(range(1, customers + 1), max(1, customers // 20))
    _insert(
        engine,
        ReferralCode,
        [
            {
                "code": f"B{i:08d}",
                "program_id": 1,
                "customer_id": c,
                "vanity": False,
                "created_at": NOW - timedelta(days=DAYS),
            }
            for i, c in enumerate(advocates, start=1)
        ],
    )
    clicks, referrals, friends = [], [], iter(range(customers, 0, -1))
    for n in range(10 * customers):
        code, when = rng.randint(1, len(advocates)), moment()
        visitor = f"v{rng.randint(1, 6 * customers)}"
        clicks.append(
            {
                "code_id": code,
                "clicked_at": when,
                "visitor_id": visitor,
                "fingerprint": visitor,
                "is_bot": n % 17 == 0,
            }
        )
        if n % 30 == 0 and len(referrals) < customers // 3:
            friend = next(friends)
            status = rng.choice(("signed_up", "qualified", "rewarded", "rejected"))
            referrals.append(
                {
                    "program_id": 1,
                    "advocate_id": advocates[code - 1],
                    "referee_id": friend,
                    "source": "click",
                    "status": status,
                    "reason": "test" if status == "rejected" else None,
                    "findings": [],
                    "signed_up_at": when,
                    "created_at": when,
                    "updated_at": when,
                    "qualified_at": when if status in ("qualified", "rewarded") else None,
                }
            )
    _insert(engine, Click, clicks)
    _insert(engine, Referral, referrals)
    _insert(
        engine,
        Order,
        [
            {
                "external_id": f"o{n}",
                "customer_id": rng.randint(1, customers),
                "amount": rng.choice((8900, 19900, 39900)),
                "currency": "CNY",
                "status": "paid",
                "placed_at": moment(),
                "created_at": NOW,
                "updated_at": NOW,
            }
            for n in range(customers)
        ],
    )
    with unit_of_work(engine) as session:  # the plan panel has a plan to measure
        plans.apply_plan(session, data=PLAN, actor="bench")
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return {
        "customers": customers,
        "responses": len(responses),
        "clicks": len(clicks),
        "referrals": len(referrals),
    }


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] if len(samples) >= 2 else samples[0]


def measure(url: str, engine: Engine, repeat: int) -> None:
    with unit_of_work(engine) as session:
        _, token = create_api_key(session, name="bench", scopes=["read"])
    reference = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        with engine.connect() as connection:
            connection.execute(text("SELECT count(*) FROM clicks")).scalar()
        reference.append(time.perf_counter() - start)
    ref = p95(reference[1:])  # the first run warms the cache, as the figures' warm-up does
    print(f"  reference SELECT count(*) FROM clicks: p95 {ref * 1000:8.1f} ms")
    app = create_app(url)
    period = {"from": (NOW - timedelta(days=90)).date().isoformat(), "to": NOW.date().isoformat()}
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        for label, params in (("all time", {}), ("90 days", period)):
            for name in dashboard.PANELS:
                client.get(f"/api/v1/dashboard/{name}", params=params)  # warm: plans, caches
                samples = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    answer = client.get(f"/api/v1/dashboard/{name}", params=params)
                    samples.append(time.perf_counter() - start)
                    assert answer.status_code == 200, answer.text
                found = p95(samples)
                print(
                    f"  {name:14} {label:9} p95 {found * 1000:8.1f} ms  = {found / ref:6.1f}x "
                    f"reference"
                )
        _measure_click_drills(client, period, ref, repeat)
    app.state.engine.dispose()


CLICK_DRILLS = {"unique_clicks": "first visits", "clicks": "all clicks"}
TAIL = 5000  # clicks left above the watermark: about a busy minute's worth before a roll-up


def _measure_click_drills(client: TestClient, period: dict[str, str], ref: float,
                          repeat: int) -> None:  # fmt: skip
    """The funnel's click drill-downs (a page of 200 rows, as the console shows)."""
    for stage in CLICK_DRILLS:
        for label, params in (("all time", {}), ("90 days", period)):
            url = "/api/v1/dashboard/referrals/drill"
            query = {**params, "stage": stage, "limit": "200"}
            client.get(url, params=query)
            samples = []
            for _ in range(repeat):
                start = time.perf_counter()
                answer = client.get(url, params=query)
                samples.append(time.perf_counter() - start)
                assert answer.status_code == 200, answer.text
            found = p95(samples)
            print(f"  drill {stage:14} {label:9} p95 {found * 1000:8.1f} ms  = "
                  f"{found / ref:6.1f}x reference")  # fmt: skip


def rebuild_click_aggregates(engine: Engine, customers: int) -> None:
    """`advocado dashboard rebuild`'s click part, then TAIL new clicks left un-rolled, so the
    figures read aggregates + a live tail as they do between two worker ticks."""
    from advocado.services import click_rollup

    start = time.perf_counter()
    done = click_rollup.rebuild(engine)
    print(f"  click aggregates rebuilt from {done.clicks} clicks in "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    rng = random.Random(8)
    codes = max(1, customers // 20)
    _insert(engine, Click, [
        {"code_id": rng.randint(1, codes), "clicked_at": NOW - timedelta(seconds=rng.random() * 60),
         "visitor_id": f"t{n % 3000}", "fingerprint": f"t{n % 3000}", "is_bot": n % 17 == 0}
        for n in range(TAIL)
    ])  # fmt: skip


def run(backend: str, customers: int, repeat: int) -> None:
    if backend == "sqlite":
        path = Path(f"/tmp/advocado-bench-dashboard-{uuid.uuid4().hex[:8]}.db")
        url, cleanup = f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    else:
        schema = f"advocado_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(POSTGRES)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"

        def cleanup() -> None:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    engine = make_engine(url)
    try:
        ensure_schema(engine)
        start = time.perf_counter()
        sizes = generate(engine, customers)
        print(f"{backend}: {sizes} generated in {time.perf_counter() - start:.0f} s")
        rebuild_click_aggregates(engine, customers)
        measure(url, engine, repeat)
    finally:
        engine.dispose()
        cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    for backend in ("sqlite", "postgresql") if args.database == "both" else (args.database,):
        run(backend, args.customers, args.repeat)


if __name__ == "__main__":
    main()
