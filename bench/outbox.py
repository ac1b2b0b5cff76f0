"""What the playbook outbox costs the response import (issue 5): N responses of N known
customers imported through `advocado import responses`, once with this checkout and once
with a baseline checkout's code (before the outbox), in the same run, on fresh databases.

    .venv/bin/python bench/outbox.py --baseline-src /path/to/old/checkout/src \\
        [--rows 100000] [--database sqlite|postgresql|both] [--rounds 3]

Every response here belongs to a customer and was submitted today, so each writes one
`response_submitted` outbox row (the worst case; anonymous responses write none). Prints the
seconds of each and the ratio this/baseline.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = os.environ.get(
    "ADVOCADO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
COMMENTS = ["系统稳定，功能全面", "爱了爱了 yyds", "出貨很快，CP值高", "Love it!", "ok", ""]


def files(folder: Path, rows: int) -> tuple[Path, Path]:
    now = datetime.now(UTC) - timedelta(hours=1)
    customers, responses = folder / "customers.csv", folder / "responses.csv"
    with customers.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["external_id", "email", "marketing_consent"])
        writer.writerows([f"c{i}", f"c{i}@example.com", "yes"] for i in range(rows))
    with responses.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["external_id", "customer_external_id", "score", "comment",
                         "submitted_at"])  # fmt: skip
        writer.writerows(
            [
                f"r{i}",
                f"c{i}",
                i % 11,
                COMMENTS[i % len(COMMENTS)],
                (now - timedelta(seconds=i)).isoformat(),
            ]
            for i in range(rows)
        )
    return customers, responses


def advocado(args: list[str], url: str, src: Path, cwd: Path) -> float:
    env = {**os.environ, "ADVOCADO_DATABASE_URL": url, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "advocado.cli", *args], env=env, cwd=cwd, check=True,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - started


def timed(database: str, src: Path, folder: Path, customers: Path, responses: Path) -> float:
    admin = schema = None
    if database == "sqlite":
        url = f"sqlite:///{folder / (uuid.uuid4().hex + '.db')}"
    else:
        schema = f"outbox_{uuid.uuid4().hex[:10]}"
        admin = create_engine(POSTGRES)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    try:
        advocado(["db", "upgrade"], url, src, folder)
        advocado(["import", "customers", str(customers)], url, src, folder)
        return advocado(["import", "responses", str(responses)], url, src, folder)
    finally:
        if admin is not None:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-src", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    with tempfile.TemporaryDirectory(prefix="advocado-outbox-") as tmp:
        folder = Path(tmp)
        customers, responses = files(folder, args.rows)
        for database in databases:
            befores, afters = [], []
            for _ in range(args.rounds):  # alternating, so a busy moment hits both
                befores.append(timed(database, args.baseline_src, folder, customers, responses))
                afters.append(timed(database, ROOT / "src", folder, customers, responses))
            before, after = statistics.median(befores), statistics.median(afters)
            print(f"{database:10} {args.rows} responses of known customers, median of "
                  f"{args.rounds}: baseline {before:6.1f} s, with the outbox {after:6.1f} s; "
                  f"ratio {after / before:.3f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
