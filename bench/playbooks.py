"""Playbook worker benchmark (issue 5): N enrolments whose step falls due at once, run by
`advocado worker` processes (huey consumers), on SQLite (SqliteHuey) and on PostgreSQL + Redis
(RedisHuey), with 1 and 2 worker processes. Prints steps/s, and each as a ratio to a reference
measured in the same run on the same database: a bare loop of single-row INSERTs of the same
rows in one transaction (rows/s).

    .venv/bin/python bench/playbooks.py [--enrolments 100000] [--database sqlite|postgresql|both]
                                        [--workers 1,2]

Each enrolment runs two steps (add_tag, then exit: tag the customer, end the enrolment), so
steps = 2 N. The time runs from starting the worker processes (their start-up included) until
no enrolment is active.
"""

from __future__ import annotations

import argparse
import os
import signal
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
REDIS = os.environ.get("ADVOCADO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
FLOW = """\
name: bench
triggers: [manual]
steps:
  - id: tag
    add_tag: bench
  - id: done
    exit: bench done
"""


def prepare(url: str, n: int) -> float:
    """A migrated database with N customers and N due enrolments in the bench playbook.
    Returns the reference: single-row INSERTs per second of the same enrolment rows."""
    sys.path.insert(0, str(ROOT / "src"))
    from advocado.services.playbooks import apply_source, install_default, set_enabled
    from advocado.store.db import ensure_schema, make_engine, unit_of_work
    from advocado.store.models import Enrolment

    engine = make_engine(url)
    ensure_schema(engine)
    now = datetime.now(UTC) - timedelta(seconds=1)
    with unit_of_work(engine) as session:
        install_default(session)
        set_enabled(session, name="activation-funnel", enabled=False)
        apply_source(session, source=FLOW, file="bench.yaml")
    with engine.begin() as connection:
        version_row = connection.execute(
            text("SELECT v.id, v.playbook_id FROM playbook_versions v JOIN playbooks p "
                 "ON p.id = v.playbook_id WHERE p.name = 'bench'")
        ).one()  # fmt: skip
        connection.execute(
            text("INSERT INTO customers (external_id, name, email, locale, timezone, "
                 "marketing_consent, tags, attributes, created_at, updated_at) VALUES "
                 "(:e, :e, :m, 'en', 'UTC', false, '[]', '{}', :t, :t)"),
            [{"e": f"b{i}", "m": f"b{i}@example.com", "t": now} for i in range(n)],
        )  # fmt: skip
        ids = [row[0] for row in connection.execute(text("SELECT id FROM customers ORDER BY id"))]
    rows = [
        {"playbook_id": version_row.playbook_id, "version_id": version_row.id,
         "customer_id": cid, "cause": "bench", "status": "active", "step": "tag",
         "due_at": now, "attempts": 0, "context": {}, "created_at": now, "updated_at": now}
        for cid in ids
    ]  # fmt: skip
    table = Enrolment.__table__
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)
    # the reference: the same rows, one INSERT statement each, into a scratch copy
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE bench_reference AS SELECT * FROM enrolments "
                                "WHERE 1 = 0"))  # fmt: skip
    scratch = text(
        "INSERT INTO bench_reference (id, playbook_id, version_id, customer_id, cause, status, "
        "step, due_at, attempts, context, created_at, updated_at) VALUES (:id, :playbook_id, "
        ":version_id, :customer_id, :cause, :status, :step, :due_at, :attempts, '{}', "
        ":created_at, :updated_at)"
    )
    started = time.perf_counter()
    with engine.begin() as connection:
        for number, row in enumerate(rows):
            connection.execute(scratch, {**row, "id": number + 1, "context": None})
    reference = len(rows) / (time.perf_counter() - started)
    engine.dispose()
    return reference


def run_workers(url: str, workers: int, huey_url: str | None, workdir: Path, n: int) -> float:
    """Starts the worker processes, waits until no enrolment is active; seconds taken."""
    env = {**os.environ, "ADVOCADO_DATABASE_URL": url, "ADVOCADO_WORKER_POLL_SECONDS": "0.2",
           "PYTHONPATH": str(ROOT / "src")}  # fmt: skip
    env.pop("ADVOCADO_HUEY_URL", None)
    if huey_url:
        env["ADVOCADO_HUEY_URL"] = huey_url
    engine = create_engine(url)
    started = time.perf_counter()
    processes = [
        subprocess.Popen([sys.executable, "-m", "advocado.cli", "worker"], env=env, cwd=workdir,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]  # fmt: skip
    try:
        while True:
            with engine.connect() as connection:
                left = connection.execute(
                    text("SELECT count(*) FROM enrolments WHERE status = 'active'")
                ).scalar_one()
            if left == 0:
                break
            if any(p.poll() is not None for p in processes):
                raise SystemExit("a worker process died")
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        with engine.connect() as connection:
            done = connection.execute(text("SELECT count(*) FROM enrolment_steps")).scalar_one()
        assert done == 2 * n, f"{done} steps logged, expected {2 * n}"
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        engine.dispose()
    return seconds


def one(database: str, workers: int, n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="advocado-pb-bench-") as tmp:
        workdir = Path(tmp)
        schema = None
        if database == "sqlite":
            url, huey_url = f"sqlite:///{workdir / 'bench.db'}", None
        else:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(POSTGRES)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
            huey_url = REDIS
            import redis

            redis.Redis.from_url(REDIS).flushdb()
        try:
            reference = prepare(url, n)
            seconds = run_workers(url, workers, huey_url, workdir, n)
        finally:
            if schema:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
        steps = 2 * n / seconds
        queue = "SqliteHuey" if database == "sqlite" else "RedisHuey"
        print(f"{database:10} {queue:10} workers={workers}  {n} enrolments, {2 * n} steps in "
              f"{seconds:6.1f} s = {steps:7.0f} steps/s; reference single-row INSERT "
              f"{reference:7.0f} rows/s; ratio {steps / reference:.3f}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enrolments", type=int, default=100_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for database in databases:
        for workers in (int(w) for w in args.workers.split(",")):
            one(database, workers, args.enrolments)


if __name__ == "__main__":
    main()
