"""Import and NPS benchmarks (issue 2). Prints figures, and each as a ratio to a reference
measured in the same run, so machines of different speed can be compared.

    .venv/bin/python bench/run.py [--rows 1000000] [--database sqlite|postgresql|both]

- import: N NPS responses (real comments from ../shared/data when present) through
  `advocado import responses`, in a child process so its peak RSS is its own. Reference: the
  same file merely read by Python's csv module. Peak RSS is also taken at N/10 rows to show
  memory stays flat as the file grows.
- nps: `nps_figures` over all rows and over one quarter, median of 15. Reference: a bare
  SELECT count(*) on the same table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
POSTGRES = os.environ.get(
    "ADVOCADO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def real_comments(limit: int = 50_000) -> list[str]:
    comments: list[str] = []
    sources = [
        SHARED / "chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv",
        SHARED / "waimai_10k" / "waimai_10k.csv",
    ]
    for source in sources:
        if source.exists():
            with source.open(encoding="utf-8", errors="replace") as file:
                comments += [row[-1] for row in csv.reader(file)][1:]
    verbatims = SHARED / "nps_verbatims_textsummary" / "text_data.csv"
    if verbatims.exists():
        with verbatims.open(encoding="utf-8", errors="replace") as file:
            comments += [row["text"] for row in csv.DictReader(file) if row["text"]]
    shopping = SHARED / "online_shopping_10_cats.zip"
    if shopping.exists():
        with zipfile.ZipFile(shopping) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".csv"))
            lines = archive.read(name).decode("utf-8-sig", "replace").splitlines()
            comments += [row[-1] for row in csv.reader(lines[1:20_000]) if row]
    if not comments:
        print(f"(no real data at {SHARED}: using built-in comments)")
        comments = ["系统稳定，功能全面", "爱了爱了 yyds", "出貨很快，CP值高", "Love it!", "ok", ""]
    return comments[:limit]


def generate(path: Path, rows: int, comments: list[str]) -> None:
    rng = random.Random(2)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    scores = list(range(11))
    weights = [4, 2, 2, 3, 3, 5, 6, 10, 15, 20, 30]
    surveys = ["onboarding", "renewal", "support", "order"]
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["external_id", "score", "comment", "survey", "channel", "submitted_at"])
        for i in range(rows):
            moment = start + timedelta(seconds=rng.randrange(365 * 86400))
            writer.writerow([
                f"r{i}", rng.choices(scores, weights)[0], rng.choice(comments),
                rng.choice(surveys), "email", moment.isoformat(),
            ])  # fmt: skip


def csv_read_seconds(path: Path) -> float:
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as file:
        for _ in csv.reader(file):
            pass
    return time.perf_counter() - started


def timed_import(path: Path, url: str, workdir: Path) -> tuple[float, float, dict]:
    """Seconds, peak RSS (MiB) of the child, and its JSON summary."""
    env = {**os.environ, "ADVOCADO_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "advocado.cli", "db", "upgrade"], env=env, check=True,
                   capture_output=True, cwd=workdir)  # fmt: skip
    out_path, err_path = workdir / "import.out", workdir / "import.err"
    started = time.perf_counter()
    with out_path.open("w") as stdout, err_path.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "advocado.cli", "import", "responses", str(path), "--json"],
            env=env, stdout=stdout, stderr=stderr, cwd=workdir,
        )  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"import failed: {err_path.read_text()[-2000:]}")
    peak = usage.ru_maxrss
    stdout_text = out_path.read_text()
    return seconds, peak / 1024, json.loads(stdout_text.strip().splitlines()[-1])


def nps_timings(url: str) -> dict[str, float]:
    from advocado.services.nps import nps_figures
    from advocado.store.db import make_engine, unit_of_work

    engine = make_engine(url)

    def median_ms(action) -> float:  # type: ignore[no-untyped-def]
        action()  # warm the cache: a dashboard asks often
        runs = []
        for _ in range(15):
            started = time.perf_counter()
            action()
            runs.append((time.perf_counter() - started) * 1000)
        return statistics.median(runs)

    def all_time() -> None:
        with unit_of_work(engine) as session:
            nps_figures(session)

    def one_quarter() -> None:
        with unit_of_work(engine) as session:
            nps_figures(session, start=datetime(2025, 4, 1, tzinfo=UTC),
                        end=datetime(2025, 7, 1, tzinfo=UTC), survey="renewal")  # fmt: skip

    def bare_count() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT count(*) FROM responses")).scalar()

    figures = {"nps_all_ms": median_ms(all_time), "nps_quarter_survey_ms": median_ms(one_quarter),
               "count_ms": median_ms(bare_count)}  # fmt: skip
    engine.dispose()
    return figures


def run(database: str, rows: int, csv_path: Path, small_path: Path, workdir: Path) -> None:
    if database == "sqlite":
        make_url = lambda tag: f"sqlite:///{workdir / f'bench-{tag}.db'}"  # noqa: E731
        cleanup = lambda url: None  # noqa: E731
    else:
        admin = create_engine(POSTGRES)

        def make_url(tag: str) -> str:
            schema = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            return f"{POSTGRES}?options=-csearch_path%3D{schema}"

        def cleanup(url: str) -> None:
            schema = url.rsplit("%3D", 1)[1]
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))

    reference = csv_read_seconds(csv_path)
    small_url = make_url("small")
    _, small_rss, _ = timed_import(small_path, small_url, workdir)
    cleanup(small_url)
    url = make_url("full")
    seconds, rss, summary = timed_import(csv_path, url, workdir)
    assert summary["created"] == rows, summary
    print(f"[{database}] import {rows:,} responses: {seconds:.1f} s, {rows / seconds:,.0f} rows/s, "
          f"peak RSS {rss:.0f} MiB (at {rows // 10:,} rows: {small_rss:.0f} MiB); "
          f"csv.reader alone {reference:.2f} s -> ratio {seconds / reference:.1f}")  # fmt: skip
    again = time.perf_counter()
    _, _, summary2 = timed_import(csv_path, url, workdir)
    print(f"[{database}] re-import of the same file: {time.perf_counter() - again:.1f} s, "
          f"{summary2['created']} created, {summary2['unchanged']:,} unchanged")  # fmt: skip
    timings = nps_timings(url)
    nps_ms = timings["nps_all_ms"]
    print(f"[{database}] NPS over {rows:,}: all time {timings['nps_all_ms']:.1f} ms, one quarter "
          f"+ survey {timings['nps_quarter_survey_ms']:.1f} ms; bare count(*) "
          f"{timings['count_ms']:.1f} ms -> ratio {nps_ms / timings['count_ms']:.1f}")  # fmt: skip
    cleanup(url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="advocado-bench-") as tmp:
        workdir = Path(tmp)
        comments = real_comments()
        csv_path, small_path = workdir / "responses.csv", workdir / "responses-small.csv"
        started = time.perf_counter()
        generate(csv_path, args.rows, comments)
        generate(small_path, args.rows // 10, comments)
        size = csv_path.stat().st_size / 2**20
        print(
            f"generated {args.rows:,} responses ({size:.0f} MiB, "
            f"{len(comments):,} real comments) in {time.perf_counter() - started:.1f} s"
        )
        for database in ["sqlite", "postgresql"] if args.database == "both" else [args.database]:
            run(database, args.rows, csv_path, small_path, workdir)


if __name__ == "__main__":
    main()
