"""Dashboard benchmark (issue 6): p95 latency of every dashboard request, on SQLite and
PostgreSQL, beside a reference measured in the same run on the same data.

Full size (1M customers, 2M responses, 10M clicks), generated once and kept, then measured
as often as wanted without regenerating:

    # SQLite: generate into a file and keep it (5-6 min), then measure it again later
    .venv/bin/python bench/dashboard.py --database sqlite --customers 1000000 \
        --keep /tmp/advocado-bench-1m.db
    .venv/bin/python bench/dashboard.py --database sqlite --reuse /tmp/advocado-bench-1m.db
    # PostgreSQL: generate into a named schema and keep it, then measure it again later
    .venv/bin/python bench/dashboard.py --database postgresql --customers 1000000 \
        --pg-keep advocado_bench_1m
    .venv/bin/python bench/dashboard.py --database postgresql --pg-reuse advocado_bench_1m
    # --load-only generates without measuring; --figures nps,clv measures only those;
    # --filters "all time,90 days" only those filters
    # small and throw-away (both databases, deleted afterwards)
    .venv/bin/python bench/dashboard.py [--customers 20000] [--database sqlite|postgresql|both]
                                        [--repeat 20] [--figures nps,promoters]

PostgreSQL is ADVOCADO_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1/test).
`--reuse`/`--pg-reuse` migrate the kept database to the current schema (a migration that
adds an aggregate fills it); `--rebuild` recomputes every aggregate, the click side included
(about 20 min on SQLite at full size).

Generates customers (with RFM value tiers), 2 responses and 10 clicks per customer (in time
order, like real arrivals), a program with codes for 5 % of the customers, referrals for 1 in
30 clicks, an order per customer, a plan, and a segment (`bench-promoters`). Loading is bulk:
SQLite executemany in large transactions with PRAGMA synchronous=OFF; PostgreSQL COPY (FK
triggers off during the load); secondary indexes are dropped before and built after.
Then each dashboard figure is asked `--repeat` times through the real app
(GET /api/v1/dashboard/{figure}, an API key, the ASGI app in-process) with each filter (none,
a 90-day period, the segment, the program), and its p95 is printed with its ratio to the
reference: `SELECT count(*) FROM clicks` (p95 of as many runs, measured in the same run).
Then the drill-down pages (200 rows, as the console shows them; their CSV has all rows and
is a download, not a page): the click and clv ones always, every figure's with `--drills`.

How the figures stay correct as events arrive: see services/dashboard.py's docstring (the
per-day and per-customer tables are maintained in the same transaction as each write).
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
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, insert, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _activity import generate_activity  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from advocado import clock  # noqa: E402
from advocado.services import (  # noqa: E402
    aggregates,
    click_rollup,
    dashboard,
    plans,
    programs,
    segments,
)
from advocado.services.apikeys import create_api_key  # noqa: E402
from advocado.store.db import (  # noqa: E402
    current_revision,
    ensure_schema,
    make_engine,
    unit_of_work,
)
from advocado.store.models import Base, Click  # noqa: E402
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
PROGRAM = {
    "slug": "bench",
    "name": "Bench",
    "currency": "CNY",
    "starts_at": "2025-01-01",
    "landing_url": "https://shop.example.com/",
    "rewards": [{"id": "thanks", "to": "referrer", "type": "points", "label": "p", "amount": 100}],
}
SEGMENT = {"slug": "bench-promoters", "name": "Bench promoters",
           "filters": {"nps_category": ["promoter"]}}  # fmt: skip
FILTERS = {
    "all time": {},
    "90 days": {
        "from": (NOW - timedelta(days=90)).date().isoformat(),
        "to": NOW.date().isoformat(),
    },
    "segment": {"segment": SEGMENT["slug"]},
    "program": {"program": PROGRAM["slug"]},
}  # fmt: skip
CHUNK = 100_000  # rows per executemany / COPY write
COMMIT_EVERY = 1_000_000  # SQLite rows per transaction (the WAL holds one transaction)
# Big tables whose secondary indexes are dropped for the load and built after it.
BULK_TABLES = ("customers", "customer_insights", "responses", "orders", "clicks", "referrals")
START = NOW - timedelta(days=DAYS)


# --- bulk loading ------------------------------------------------------------------------


def _stamp(day: datetime, seconds: float) -> str:
    """A UTC time as both databases take it from text: SQLAlchemy's SQLite format, and a
    timestamptz read in a session whose time zone is UTC."""
    whole = int(seconds)
    micro = int((seconds - whole) * 1_000_000)
    h, rest = divmod(whole, 3600)
    return f"{day:%Y-%m-%d} {h:02d}:{rest // 60:02d}:{rest % 60:02d}.{micro:06d}"


NOW_TEXT = _stamp(NOW, 0)


def _timeline(rng: random.Random, total: int) -> Iterator[str]:
    """`total` moments over the DAYS before NOW, spread evenly over days, in time order."""
    for k in range(DAYS):
        day = START + timedelta(days=k)
        n = total * (k + 1) // DAYS - total * k // DAYS
        for seconds in sorted(rng.random() * 86400 for _ in range(n)):
            yield _stamp(day, seconds)


class Loader:
    """Writes rows (tuples of str/int/float/None: times as _stamp text, flags as 0/1, JSON as
    text) into a table as fast as the database takes them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.connection: Any = engine.raw_connection()
        cursor = self.connection.cursor()
        if self.postgres:
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.execute("SET session_replication_role = replica")  # no FK triggers in COPY
        else:
            cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()

    def put(self, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
        written = 0
        cursor = self.connection.cursor()
        names = ", ".join(columns)
        if self.postgres:
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                lines: list[str] = []
                for row in rows:
                    lines.append("\t".join(r"\N" if v is None else str(v) for v in row))
                    if len(lines) >= CHUNK:
                        copy.write("\n".join(lines) + "\n")
                        written += len(lines)
                        lines = []
                if lines:
                    copy.write("\n".join(lines) + "\n")
                    written += len(lines)
            self.connection.commit()
        else:
            sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
            batch: list[tuple[Any, ...]] = []
            cursor.execute("BEGIN")
            for row in rows:
                batch.append(row)
                if len(batch) >= CHUNK:
                    cursor.executemany(sql, batch)
                    written += len(batch)
                    batch = []
                    if written % COMMIT_EVERY == 0:
                        cursor.execute("COMMIT")
                        cursor.execute("BEGIN")
            cursor.executemany(sql, batch)
            written += len(batch)
            cursor.execute("COMMIT")
        cursor.close()
        return written

    def close(self) -> None:
        if self.postgres:
            cursor = self.connection.cursor()
            cursor.execute("SET session_replication_role = DEFAULT")
            cursor.close()
            self.connection.commit()
        self.connection.close()


def _secondary_indexes() -> list[Any]:
    return [
        index
        for name in BULK_TABLES
        for index in sorted(Base.metadata.tables[name].indexes, key=lambda i: str(i.name))
        if not index.unique
    ]


def load(engine: Engine, customers: int, seed: int = 6) -> dict[str, int]:
    """Generate and bulk-load the data set into an empty, migrated database; then rebuild the
    pre-aggregates from it (`rebuild_aggregates`) and ANALYZE. Returns the row counts."""
    rng = random.Random(seed)
    clock.set_now(NOW)
    indexes = _secondary_indexes()
    with engine.begin() as connection:
        for index in indexes:
            index.drop(connection)
    loader = Loader(engine)
    sizes: dict[str, int] = {}
    try:
        sizes["customers"] = loader.put(
            "customers",
            ("id", "external_id", "name", "locale", "timezone", "marketing_consent", "tags",
             "attributes", "created_at", "updated_at"),
            ((i, f"c{i}", f"C{i}", "zh-CN", "UTC", 1, '["vip"]' if i % 10 == 0 else "[]", "{}",
              NOW_TEXT, NOW_TEXT) for i in range(1, customers + 1)),
        )  # fmt: skip
        tiers = ("high", "mid", "mid", "low", "low", "low", None)
        loader.put(
            "customer_insights",
            ("customer_id", "frequency", "monetary", "value_tier", "high_influence",
             "computed_at"),
            ((i, 1, 19900, rng.choice(tiers), 1 if i % 20 == 0 else 0, NOW_TEXT)
             for i in range(1, customers + 1)),
        )  # fmt: skip
        days: Counter[tuple[str, str, int]] = Counter()
        scores = (0, 3, 6, 7, 8, 9, 9, 10, 10, 10)

        def responses() -> Iterator[tuple[Any, ...]]:
            for n, when in enumerate(_timeline(rng, 2 * customers)):
                score, survey = rng.choice(scores), rng.choice(("onboarding", "relationship"))
                days[(when[:10], survey, score)] += 1
                persona = rng.choice(("emotional", "rational", "neutral"))
                yield (f"r{n}", rng.randint(1, customers), score, survey, when, when, when, persona)

        sizes["responses"] = loader.put(
            "responses",
            ("external_id", "customer_id", "score", "survey", "submitted_at", "created_at",
             "updated_at", "persona"),
            responses(),
        )  # fmt: skip
        loader.put(
            "response_day_counts",
            ("day", "survey", "score", "responses"),
            ((d, s, sc, n) for (d, s, sc), n in sorted(days.items())),
        )
        with unit_of_work(engine) as session:
            programs.apply_program(session, PROGRAM)
            program_id = session.scalar(text("SELECT id FROM programs WHERE slug = 'bench'"))
        advocates = rng.sample(range(1, customers + 1), max(1, customers // 20))
        code_at = _stamp(START, 0)
        loader.put(
            "referral_codes",
            ("id", "code", "program_id", "customer_id", "vanity", "created_at"),
            ((i, f"B{i:08d}", program_id, c, 0, code_at) for i, c in enumerate(advocates, 1)),
        )
        referrals: list[tuple[Any, ...]] = []
        friends = iter(range(customers, 0, -1))
        statuses = ("signed_up", "qualified", "rewarded", "rejected")

        def clicks() -> Iterator[tuple[Any, ...]]:
            visitors = 6 * customers
            for n, when in enumerate(_timeline(rng, 10 * customers)):
                code = rng.randint(1, len(advocates))
                visitor = f"v{rng.randint(1, visitors)}"
                yield (code, when, visitor, visitor, 1 if n % 17 == 0 else 0)
                if n % 30 == 0 and len(referrals) < customers // 3:
                    status = rng.choice(statuses)
                    referrals.append(
                        (program_id, advocates[code - 1], next(friends), code, "click", status,
                         "test" if status == "rejected" else None, "[]", when, when, when,
                         when if status in ("qualified", "rewarded") else None)
                    )  # fmt: skip

        sizes["clicks"] = loader.put(
            "clicks", ("code_id", "clicked_at", "visitor_id", "fingerprint", "is_bot"), clicks()
        )
        sizes["referrals"] = loader.put(
            "referrals",
            ("program_id", "advocate_id", "referee_id", "code_id", "source", "status", "reason",
             "findings", "signed_up_at", "created_at", "updated_at", "qualified_at"),
            referrals,
        )  # fmt: skip
        referrals.clear()
        amounts = (8900, 19900, 39900)
        sizes["orders"] = loader.put(
            "orders",
            ("external_id", "customer_id", "amount", "currency", "status", "placed_at",
             "created_at", "updated_at"),
            ((f"o{n}", rng.randint(1, customers), rng.choice(amounts), "CNY", "paid", when, when,
              when) for n, when in enumerate(_timeline(rng, customers))),
        )  # fmt: skip
    finally:
        loader.close()
    if engine.dialect.name == "postgresql":  # ids were given explicitly: move the sequences on
        with engine.begin() as connection:
            for table in ("customers", "referral_codes"):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )  # fmt: skip
                )
    with engine.begin() as connection:
        for index in indexes:
            index.create(connection)
    with unit_of_work(engine) as session:  # the plan panel has a plan to measure
        plans.apply_plan(session, data=PLAN, actor="bench")
        segments.create_segment(
            session, name=SEGMENT["name"], slug=SEGMENT["slug"], filters=SEGMENT["filters"]
        )
    rebuild_aggregates(engine)
    analyze(engine)
    return sizes


def rebuild_aggregates(engine: Engine, clicks: bool = True) -> None:
    """Recompute the dashboard pre-aggregates from the loaded rows (the same code as
    `advocado dashboard rebuild`); the click side only with `clicks` (the slow one)."""
    with unit_of_work(engine) as session:
        aggregates.rebuild(session)
    if clicks:
        click_rollup.rebuild(engine)


def analyze(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


# --- measuring ---------------------------------------------------------------------------


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] if len(samples) >= 2 else samples[0]


def _reference(engine: Engine, repeat: int) -> float:
    reference = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        with engine.connect() as connection:
            connection.execute(text("SELECT count(*) FROM clicks")).scalar()
        reference.append(time.perf_counter() - start)
    return p95(reference[1:])  # the first run warms the cache, as the figures' warm-up does


def measure(
    url: str, engine: Engine, repeat: int, figures: Sequence[str], filters: Sequence[str],
    drills: bool = False,
) -> None:  # fmt: skip
    with unit_of_work(engine) as session:
        _, token = create_api_key(session, name="bench", scopes=["read"])
    ref = _reference(engine, repeat)
    print(f"  reference SELECT count(*) FROM clicks: p95 {ref * 1000:8.1f} ms")
    app = create_app(url)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        for label in filters:
            for name in figures:
                found = _p95_of(client, f"/api/v1/dashboard/{name}", FILTERS[label], repeat)
                print(f"  {name:16} {label:9} p95 {found * 1000:8.1f} ms  = "
                      f"{found / ref:6.1f}x reference", flush=True)  # fmt: skip
        pages = DRILL_PAGES if drills else [p for p in DRILL_PAGES if p[0] in CLICK_OR_CLV]
        for name, key in pages:
            if name not in figures:
                continue
            for label in filters:
                query = {**FILTERS[label], **key, "limit": "200"}
                found = _p95_of(client, f"/api/v1/dashboard/{name}/drill", query, repeat)
                what = f"{name} {','.join(key.values()) or '-'}"
                print(f"  drill {what:28} {label:9} p95 {found * 1000:8.1f} ms  = "
                      f"{found / ref:6.1f}x reference", flush=True)  # fmt: skip
    ref_after = _reference(engine, repeat)
    print(f"  reference again (after the figures): p95 {ref_after * 1000:8.1f} ms")
    app.state.engine.dispose()


def _p95_of(client: TestClient, url: str, params: dict[str, str], repeat: int) -> float:
    """p95 of `repeat` requests, after one that warms plans and caches."""
    client.get(url, params=params)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        answer = client.get(url, params=params)
        samples.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.text
    return p95(samples)


# A page of 200 rows behind a figure, as the console shows it: each figure's default
# drill-down and the heavier ones (clicks, the clv groups). Measured with --drills; the click
# and clv pages always.
DRILL_PAGES: list[tuple[str, dict[str, str]]] = [
    ("nps", {}),
    ("promoters", {"dimension": "persona", "value": "emotional"}),
    ("referrals", {"stage": "signups"}),
    ("referrals", {"stage": "revenue"}),
    ("referrals", {"stage": "cost"}),
    ("referrals", {"stage": "unique_clicks"}),
    ("referrals", {"stage": "clicks"}),
    ("k_factor", {}),
    ("clv", {"group": "advocates"}),
    ("clv", {"group": "non_advocates"}),
    ("top_advocates", {}),
    ("plan", {"plan": PLAN["slug"], "goal": "leads"}),
    ("activation", {}),
    ("activation_steps", {}),
    ("reviews", {}),
    ("ugc", {}),
]
CLICK_OR_CLV = ("referrals", "clv")
TAIL = 5000  # clicks left above the watermark: about a busy minute's worth before a roll-up


def add_click_tail(engine: Engine, customers: int) -> None:
    """TAIL new clicks left un-rolled after the load's rebuild, so the figures read aggregates
    + a live tail as they do between two worker ticks."""
    rng = random.Random(8)
    codes = max(1, customers // 20)
    rows = [
        {"code_id": rng.randint(1, codes), "clicked_at": NOW - timedelta(seconds=rng.random() * 60),
         "visitor_id": f"t{n % 3000}", "fingerprint": f"t{n % 3000}", "is_bot": n % 17 == 0}
        for n in range(TAIL)
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(Click), rows)


def run(backend: str, args: argparse.Namespace) -> None:
    keep = reuse = None
    if backend == "sqlite":
        reuse = args.reuse
        keep = args.keep or reuse
        path = Path(keep or f"/tmp/advocado-bench-dashboard-{uuid.uuid4().hex[:8]}.db")
        if reuse and not path.exists():
            sys.exit(f"--reuse {path}: no such file")
        if args.keep and path.exists():
            sys.exit(f"--keep {path}: exists already (use --reuse to measure it)")
        url = f"sqlite:///{path}"

        def cleanup() -> None:
            if not keep:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        reuse = args.pg_reuse
        keep = args.pg_keep or reuse
        schema = keep or f"advocado_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(POSTGRES)
        with admin.begin() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"),
                {"s": schema},
            ).first()
            if reuse and not exists:
                sys.exit(f"--pg-reuse {schema}: no such schema")
            if args.pg_keep and exists:
                sys.exit(f"--pg-keep {schema}: exists already (use --pg-reuse to measure it)")
            if not exists:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"

        def cleanup() -> None:
            if not keep:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    engine = make_engine(url)
    try:
        if reuse:
            before = current_revision(engine)
            start = time.perf_counter()
            ensure_schema(engine)  # a migration that adds an aggregate fills it
            if current_revision(engine) != before:
                analyze(engine)
                took = time.perf_counter() - start
                print(f"{backend}: migrated {before} -> {current_revision(engine)} in {took:.0f} s")
            if args.rebuild:
                start = time.perf_counter()
                rebuild_aggregates(engine)
                analyze(engine)
                print(f"{backend}: aggregates rebuilt in {time.perf_counter() - start:.0f} s")
            print(f"{backend}: reusing {keep}")
        else:
            ensure_schema(engine)
            start = time.perf_counter()
            sizes = load(engine, args.customers)
            sizes.update(generate_activity(engine, args.customers, now=NOW))  # activation panels
            # The activity's codes and referrals were bulk-written after load's rebuild.
            rebuild_aggregates(engine, clicks=False)
            add_click_tail(engine, args.customers)
            took = time.perf_counter() - start
            print(f"{backend}: {sizes} generated in {took:.0f} s", flush=True)
        figures = args.figures.split(",") if args.figures else list(dashboard.PANELS)
        if not args.load_only:
            filters = args.filters.split(",") if args.filters else list(FILTERS)
            measure(url, engine, args.repeat, figures, filters, drills=args.drills)
    finally:
        engine.dispose()
        cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--figures", help="comma-separated panel names (default: all)")
    parser.add_argument(
        "--filters", help=f"comma-separated, of: {', '.join(FILTERS)} (default: all)"
    )
    parser.add_argument("--keep", metavar="PATH", help="SQLite: generate into PATH, keep it")
    parser.add_argument("--reuse", metavar="PATH", help="SQLite: measure a kept PATH")
    parser.add_argument("--pg-keep", metavar="SCHEMA", help="PostgreSQL: generate into SCHEMA")
    parser.add_argument("--pg-reuse", metavar="SCHEMA", help="PostgreSQL: measure a kept SCHEMA")
    parser.add_argument("--rebuild", action="store_true", help="with a reuse: rebuild aggregates")
    parser.add_argument("--drills", action="store_true",
                        help="also every figure's drill-down page (200 rows)")  # fmt: skip
    parser.add_argument("--load-only", action="store_true", help="generate (and keep), no figures")
    args = parser.parse_args()
    for backend in ("sqlite", "postgresql") if args.database == "both" else (args.database,):
        run(backend, args)


if __name__ == "__main__":
    main()
