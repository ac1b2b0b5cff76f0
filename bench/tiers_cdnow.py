"""Value tiers and lifecycle stages on a real purchase history: CDNOW (23,570 customers,
69,659 orders, 1997-01 .. 1998-06, ../shared/data/cdnow_lifetimes, MIT via lifetimes).

    .venv/bin/python bench/tiers_cdnow.py [--database sqlite|postgresql] [--today 1998-07-01]

Customers and orders go in through `advocado import` (services/importing, the normal path),
then `recompute_insights` runs with "today" pinned, and the tier and stage sizes are printed.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from advocado import clock
from advocado.services.importing import ImportOptions, Kind, import_file
from advocado.services.insights import InsightRules, recompute_insights
from advocado.store.db import ensure_schema, make_engine, unit_of_work

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "cdnow_lifetimes" / "CDNOW_master.txt"
POSTGRES = os.environ.get(
    "ADVOCADO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def write_csvs(folder: Path) -> tuple[Path, Path, int, int]:
    customers_csv, orders_csv = folder / "customers.csv", folder / "orders.csv"
    seen: set[str] = set()
    orders = 0
    with SOURCE.open() as source, orders_csv.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["external_id", "customer_external_id", "amount", "currency",
                         "placed_at", "status"])  # fmt: skip
        for line_number, line in enumerate(source, 1):
            parts = line.split()
            if len(parts) != 4 or not parts[0].isdigit():
                continue  # the header
            customer, day, _cds, dollars = parts
            seen.add(customer)
            placed = f"{day[:4]}-{day[4:6]}-{day[6:]}T12:00:00+00:00"
            writer.writerow([f"cdnow-{line_number}", f"cdnow-{customer}", dollars, "USD",
                             placed, "paid"])  # fmt: skip
            orders += 1
    with customers_csv.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["external_id"])
        writer.writerows([f"cdnow-{c}"] for c in sorted(seen))
    return customers_csv, orders_csv, len(seen), orders


def run(url: str, today: datetime) -> None:
    engine = make_engine(url)
    ensure_schema(engine)
    with tempfile.TemporaryDirectory() as folder:
        customers_csv, orders_csv, n_customers, n_orders = write_csvs(Path(folder))
        started = time.perf_counter()
        rejects = Path(folder) / "rejects.csv"
        c = import_file(engine, Kind.CUSTOMERS, customers_csv, ImportOptions(),
                        rejects_path=rejects)  # fmt: skip
        o = import_file(engine, Kind.ORDERS, orders_csv, ImportOptions(), rejects_path=rejects)
        imported = time.perf_counter() - started
    print(f"imported {c.created} customers, {o.created} orders ({o.rejected} rejected) "
          f"in {imported:.1f} s (source: {n_customers} customers, {n_orders} orders)")  # fmt: skip
    clock.set_now(today)
    started = time.perf_counter()
    with unit_of_work(engine) as session:
        summary = recompute_insights(session, rules=InsightRules())
    seconds = time.perf_counter() - started
    total = sum(summary.value_tiers.values())

    def share(n: int) -> str:
        return f"{n:>6} ({100 * n / total:4.1f}%)"

    print(f"recompute: {summary.customers} customers in {seconds:.2f} s, today = {today:%Y-%m-%d}")
    print(
        "value tier:      " + "  ".join(f"{k} {share(v)}" for k, v in summary.value_tiers.items())
    )
    print("lifecycle stage: "
          + "  ".join(f"{k} {share(v)}" for k, v in summary.lifecycle_stages.items()))  # fmt: skip
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT value_tier, count(*), avg(frequency), avg(monetary) / 100.0, avg(recency_days) "
            "FROM customer_insights WHERE value_tier IS NOT NULL GROUP BY value_tier "
            "ORDER BY avg(monetary) DESC"
        )).all()  # fmt: skip
    print("tier     customers  avg orders  avg spent $  avg days since last order")
    for tier, count, frequency, monetary, recency in rows:
        print(f"{tier:<8} {count:>9}  {float(frequency):>10.2f}  {float(monetary):>11.2f}  "
              f"{float(recency):>10.0f}")  # fmt: skip
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--today", default="1998-07-01")
    args = parser.parse_args()
    if not SOURCE.exists():
        sys.exit(f"CDNOW data not found at {SOURCE} (../shared/data beside the checkout)")
    today = datetime.fromisoformat(args.today).replace(tzinfo=UTC)
    if args.database == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            run(f"sqlite:///{folder}/cdnow.db", today)
        return
    schema = f"bench_cdnow_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        run(f"{POSTGRES}?options=-csearch_path%3D{schema}", today)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
