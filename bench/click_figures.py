"""The click figures alone (issue 6): p95 of the referral funnel's clicks / unique clicks (also
the K-factor's invitations) read from the aggregates + a live tail (services.click_rollup),
beside the same figures scanned from the clicks (what the dashboard did before) and beside
`SELECT count(*) FROM clicks`, measured in the same run; and the click drill-downs' first page.

    .venv/bin/python bench/click_figures.py --url sqlite:////tmp/copy.db [--tail 5000]
    .venv/bin/python bench/click_figures.py --url postgresql+psycopg://…/test --reuse-schema S

It measures an existing generated database (bench/dashboard.py's data): the aggregates are
rebuilt up to `--tail` clicks below the newest, so those are the live tail. SQLite: the file
is migrated (give it a copy). PostgreSQL with --reuse-schema: the aggregate tables go in a new
schema searched first, the generated schema S is only read (and nothing in it changes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from advocado.domain.dashboard import Filters  # noqa: E402
from advocado.services import click_rollup, dashboard  # noqa: E402
from advocado.store.db import ensure_schema, make_engine, read_only, unit_of_work  # noqa: E402
from advocado.store.models import (  # noqa: E402
    Base,
    Click,
    ClickDayCount,
    ClickProgramDay,
    ClickVisitor,
    Program,
    RollupWatermark,
    Segment,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] if len(samples) >= 2 else samples[0]


def timed(repeat: int, work: Callable[[], Any]) -> float:
    work()  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return p95(samples)


def rebuild_below(engine: Engine, tail: int) -> None:
    """Rebuild from the clicks up to `tail` below the newest: those stay the live tail."""
    with read_only(engine) as session:
        newest = session.scalar(select(func.max(Click.id))) or 0
    start = time.perf_counter()
    with unit_of_work(engine) as session:
        done = click_rollup.rebuild_clicks(session, upto=newest - tail)
    print(f"  rebuilt aggregates from {done.clicks} clicks in {time.perf_counter() - start:.0f} s")


def measure(engine: Engine, repeat: int, scan_repeat: int, skip_segment: bool = False) -> None:
    with read_only(engine) as session:
        program = session.scalar(select(Program.slug).limit(1))
        segment = session.scalar(select(Segment.slug).limit(1))
        tail = session.scalar(
            select(func.count()).where(Click.id > select(RollupWatermark.last_id).scalar_subquery())
        )
    print(f"  live tail: {tail} clicks above the watermark")
    ref = timed(repeat, lambda: _scalar(engine, "SELECT count(*) FROM clicks"))
    print(f"  reference SELECT count(*) FROM clicks: p95 {ref * 1000:8.1f} ms")
    period = (NOW - timedelta(days=90)).date(), NOW.date()
    filters = {
        "all time": Filters(),
        "90 days": Filters(start=period[0], end=period[1]),
        "program 90d": Filters(start=period[0], end=period[1], program=program),
    }
    if segment and not skip_segment:
        filters["segment 90d"] = Filters(start=period[0], end=period[1], segment=segment)
    for label, f in filters.items():

        def aggregates(f: Filters = f) -> tuple[int, int]:
            with read_only(engine) as session:
                return dashboard._click_counts(session, dashboard._scope(session, f))

        def scan(f: Filters = f) -> tuple[int, int]:
            with read_only(engine) as session:
                scope = dashboard._scope(session, f)
                codes = dashboard._codes(scope)
                return click_rollup.scan_counts(session, start=scope.start, end=scope.end,
                                                codes=codes)  # fmt: skip

        found = aggregates()
        fast = timed(repeat, aggregates)
        print(f"  clicks+unique {label:12} p95 {fast * 1000:8.1f} ms = {fast / ref:6.2f}x "
              f"reference  {found}", flush=True)  # fmt: skip
        if scan_repeat:
            before = timed(scan_repeat, scan)
            assert scan() == found, (scan(), found)
            print(f"    scanned (before)   p95 {before * 1000:8.1f} ms = {before / ref:6.2f}x "
                  f"reference (same figures)", flush=True)  # fmt: skip
        for stage in ("unique_clicks", "clicks"):

            def page(f: Filters = f, stage: str = stage) -> int:
                with read_only(engine) as session:
                    return len(dashboard.drill(session, "referrals", f, {"stage": stage},
                                               limit=200).rows)  # fmt: skip

            took = timed(repeat, page)
            print(f"    drill {stage:13} p95 {took * 1000:8.1f} ms = {took / ref:6.2f}x "
                  f"reference", flush=True)  # fmt: skip


def _scalar(engine: Engine, sql: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql)).scalar()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--reuse-schema", help="PostgreSQL: the generated schema, read only")
    parser.add_argument("--tail", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--aggregates-schema", help="with --reuse-schema: kept aggregates")
    parser.add_argument("--scan-repeat", type=int, default=2, help="0: skip the old scan")
    parser.add_argument("--skip-segment", action="store_true", help="not the segment filter")
    parser.add_argument("--no-rebuild", action="store_true", help="measure the kept aggregates")
    args = parser.parse_args()
    args.rebuild = not args.no_rebuild
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    url = args.url
    if args.reuse_schema and args.aggregates_schema:  # measured before: no rebuild
        url = f"{url}?options=-csearch_path%3D{args.aggregates_schema},{args.reuse_schema}"
        engine = make_engine(url)
        args.rebuild = False
    elif args.reuse_schema:
        mine = f"advocado_clicks_{uuid.uuid4().hex[:8]}"
        admin = create_engine(url)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{mine}"'))
        url = f"{url}?options=-csearch_path%3D{mine},{args.reuse_schema}"
        engine = make_engine(url)
        tables = [ClickDayCount, ClickProgramDay, ClickVisitor, RollupWatermark]
        for table in tables:  # without foreign keys: nothing in the generated schema changes
            table.__table__.foreign_keys.clear()
            for constraint in list(table.__table__.constraints):
                if constraint.__class__.__name__ == "ForeignKeyConstraint":
                    table.__table__.constraints.discard(constraint)
        Base.metadata.create_all(engine, tables=[t.__table__ for t in tables])

        def cleanup() -> None:
            engine.dispose()
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{mine}" CASCADE'))
            admin.dispose()

    else:
        engine = make_engine(url)
        ensure_schema(engine)
    try:
        print(f"{engine.dialect.name}:")
        if args.rebuild:
            rebuild_below(engine, args.tail)
        measure(engine, args.repeat, args.scan_repeat, args.skip_segment)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
