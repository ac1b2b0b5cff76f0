"""Recompute of value tiers and lifecycle stages at scale (issue 3): N customers with 10
orders each on average (default 1,000,000 / 10,000,000), generated straight into the tables
by the database itself, then `recompute_insights` timed on SQLite and/or PostgreSQL.

    .venv/bin/python bench/tiers_bench.py [--customers 1000000] [--database sqlite|postgresql|both]

Reference, measured in the same run on the same data: the bare aggregate
`SELECT customer_id, count(*), sum(amount), max(placed_at) FROM orders GROUP BY customer_id`
with every row fetched. The ratio recompute / reference says what ranking, labelling, writing
the explanations and upserting one row per customer cost on top of reading the orders once.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import Engine, create_engine, text

from advocado import clock
from advocado.services.insights import InsightRules, recompute_insights
from advocado.store.db import ensure_schema, make_engine, unit_of_work

POSTGRES = os.environ.get(
    "ADVOCADO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
REFERENCE = (
    "SELECT customer_id, count(*), sum(amount), max(placed_at) FROM orders GROUP BY customer_id"
)
# Orders spread over two years before NOW; amounts 1.00 .. 500.00; 5% refunded or cancelled.
# A customer's share of the orders is skewed (product of two uniforms), as in real shops.
SQLITE_FILL = [
    """WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :customers)
    INSERT INTO customers (id, external_id, locale, timezone, marketing_consent, tags,
                           attributes, created_at, updated_at)
    SELECT i, 'bench-' || i, 'en', 'UTC', 0, '[]', '{}', :stamp, :stamp FROM seq""",
    """WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :orders)
    INSERT INTO orders (id, external_id, customer_id, amount, currency, status, placed_at,
                        created_at, updated_at)
    SELECT i, 'bench-o' || i,
           1 + (abs(random()) % :customers) * (abs(random()) % 1000 + 1) / 1001,
           100 + abs(random()) % 49901, 'CNY',
           CASE WHEN abs(random()) % 20 = 0 THEN 'refunded' ELSE 'paid' END,
           strftime('%Y-%m-%d %H:%M:%S.000000', :start, '+' || (abs(random()) % 63072000)
                    || ' seconds'),
           :stamp, :stamp
    FROM seq""",
]
POSTGRES_FILL = [
    """INSERT INTO customers (id, external_id, locale, timezone, marketing_consent, tags,
                             attributes, created_at, updated_at)
    SELECT i, 'bench-' || i, 'en', 'UTC', false, '[]', '{}', now(), now()
    FROM generate_series(1, :customers) AS i""",
    """INSERT INTO orders (id, external_id, customer_id, amount, currency, status, placed_at,
                          created_at, updated_at)
    SELECT i, 'bench-o' || i,
           1 + floor(random() * :customers)::bigint * (floor(random() * 1000)::int + 1) / 1001,
           100 + floor(random() * 49901)::int, 'CNY',
           CASE WHEN random() < 0.05 THEN 'refunded' ELSE 'paid' END,
           CAST(:start AS timestamptz) + floor(random() * 63072000) * interval '1 second',
           now(), now()
    FROM generate_series(1, :orders) AS i""",
]


def fill(engine: Engine, customers: int, orders: int) -> float:
    postgres = engine.dialect.name == "postgresql"
    start = "2024-06-01T00:00:00Z" if postgres else "2024-06-01 00:00:00"
    params = {"customers": customers, "orders": orders, "stamp": "2026-06-01 00:00:00.000000",
              "start": start}  # fmt: skip
    started = time.perf_counter()
    with engine.begin() as connection:
        for statement in POSTGRES_FILL if postgres else SQLITE_FILL:
            connection.execute(text(statement), params)
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return time.perf_counter() - started


def reference(engine: Engine) -> float:
    started = time.perf_counter()
    with engine.connect() as connection:
        rows = connection.execute(text(REFERENCE)).all()
    assert rows
    return time.perf_counter() - started


def recompute(engine: Engine) -> tuple[float, dict[str, int], dict[str, int]]:
    clock.set_now(NOW)
    started = time.perf_counter()
    with unit_of_work(engine) as session:
        summary = recompute_insights(session, rules=InsightRules())
    return time.perf_counter() - started, summary.value_tiers, summary.lifecycle_stages


def bench(name: str, url: str, customers: int) -> None:
    engine = make_engine(url)
    ensure_schema(engine)
    orders = customers * 10
    seconds = fill(engine, customers, orders)
    print(f"[{name}] generated {customers:,} customers / {orders:,} orders in {seconds:.0f} s")
    ref = reference(engine)
    first, tiers, stages = recompute(engine)
    ref_again = reference(engine)
    second, _, _ = recompute(engine)
    best_ref = min(ref, ref_again)
    print(f"[{name}] reference GROUP BY: {ref:.2f} s, {ref_again:.2f} s")
    print(f"[{name}] recompute: {first:.2f} s (first), {second:.2f} s (again, overwriting); "
          f"ratio to reference {first / best_ref:.2f} / {second / best_ref:.2f}")  # fmt: skip
    print(f"[{name}] tiers {tiers}; stages {stages}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    if args.database in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            bench("sqlite", f"sqlite:///{folder}/bench.db", args.customers)
    if args.database in ("postgresql", "both"):
        schema = f"bench_tiers_{uuid.uuid4().hex[:8]}"
        admin = create_engine(POSTGRES)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            bench("postgresql", f"{POSTGRES}?options=-csearch_path%3D{schema}", args.customers)
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
