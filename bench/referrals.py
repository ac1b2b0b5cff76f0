"""Referral engine benchmarks (issue 4). Prints figures with a reference from the same run.

    .venv/bin/python bench/referrals.py [--database sqlite|postgresql] [--events 100000]
                                        [--duration 10] [--workers 1] [--pin]
                                        [--skip-redirect] [--skip-events]

- redirect: wrk, 64 connections, `--duration` s, against /r/{code} served by
  `advocado serve` (granian, clicks recorded), then against nginx returning a static 302 on
  another port (the reference), with the same number of worker processes as advocado
  (`--workers`, default 1). The machine has 2 cores that wrk shares with the server;
  `--pin` puts the server on CPU 0 and wrk on CPU 1 for both, which is the fairer split.
  Goal: ≥ 30 % of nginx's requests/s, p99 < 10 ms. Then the server is stopped cleanly and
  the clicks in the database are compared with the 302s served:
  wrk does not count responses still in flight when it stops (≤ 64), so an exact phase
  follows: a known number of requests, and the click count must grow by exactly that.
- events: N order events, each from a new friend carrying an advocate's code at checkout
  (attribution, fraud checks, qualification, a points reward and its ledger entry), through
  services.referrals.ingest_event, one transaction each, from 4 threads. Reference: the
  same N rows merely claimed (INSERT … ON CONFLICT DO NOTHING of the event row), one
  transaction each.
Only loopback addresses are used. Needs `apt-get install wrk nginx-light` for the redirect.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy import event as sa_event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from advocado.services import programs  # noqa: E402
from advocado.services.referrals import EventIn, ingest_event  # noqa: E402
from advocado.store.db import ensure_schema, make_engine, unit_of_work  # noqa: E402
from advocado.store.models import (  # noqa: E402
    Click,
    LedgerEntry,
    Referral,
    ReferralEvent,
    Reward,
)

POSTGRES = os.environ.get(
    "ADVOCADO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PROGRAM = {
    "slug": "bench",
    "currency": "CNY",
    "starts_at": "2026-01-01",
    "landing_url": "https://shop.example.com/welcome",
    "hold_days": 7,
    "qualify": {"event": "first_order"},
    "fraud": {"velocity_per_hour": 1_000_000, "leaked_unique_clicks_per_day": 10_000_000},
    "rewards": [
        {"id": "pts", "to": "referrer", "type": "points", "amount": 50, "step_percent": 10}
    ],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database(kind: str, workdir: Path) -> tuple[str, object | None]:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}", None
    schema = f"advocado_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    return f"{POSTGRES}?options=-csearch_path%3D{schema}", (admin, schema)


def drop(handle: object | None) -> None:
    if handle is None:
        return
    admin, schema = handle  # type: ignore[misc]
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def pinned(cpus: str | None, command: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus else command


def wrk(url: str, duration: int, cpus: str | None) -> dict[str, float]:
    result = subprocess.run(
        pinned(cpus, ["wrk", "-t2", "-c64", f"-d{duration}s", "--latency", url]),
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p99_ms": float(p99.group(1)) * scale,
        "requests": total,
        "bad": int(errors.group(1)) if errors else 0,
        "socket_errors": sock.group(1) if sock else "none",
    }


def nginx(workdir: Path, port: int, workers: int, cpus: str | None) -> subprocess.Popen[bytes]:
    """The reference: nginx with as many worker processes as advocado gets, on the same CPUs."""
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
worker_processes {workers}; daemon off; pid {workdir}/nginx.pid; error_log {workdir}/nginx.err;
events {{ worker_connections 1024; }}
http {{ access_log off;
  server {{ listen 127.0.0.1:{port} backlog=2048;
    location / {{ return 302 https://shop.example.com/welcome?ref=X&utm_source=advocado; }} }} }}
""")
    process = subprocess.Popen(pinned(cpus, ["nginx", "-c", str(conf), "-p", str(workdir)]))
    wait_http(f"http://127.0.0.1:{port}/r/x")
    return process


def wait_http(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def serve(
    url: str, port: int, workers: int, log: Path, cpus: str | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ADVOCADO_DATABASE_URL": url}
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinned(
                cpus,
                [
                    str(Path(sys.executable).parent / "advocado"),
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
            ),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_http(f"http://127.0.0.1:{port}/healthz")
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=60)


def clicks(url: str) -> int:
    engine = make_engine(url)
    with unit_of_work(engine) as session:
        found = session.scalar(select(func.count()).select_from(Click)) or 0
    engine.dispose()
    return found


async def exact(url: str, n: int) -> int:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(limits=limits, follow_redirects=False, timeout=30) as http:
        gate = asyncio.Semaphore(64)

        async def one(i: int) -> int:
            async with gate:
                response = await http.get(url, headers={"user-agent": f"Mozilla/5.0 b{i}"})
                return response.status_code == 302

        return sum(await asyncio.gather(*(one(i) for i in range(n))))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its descendants (Linux /proc)."""
    total, todo, tick = 0.0, [str(pid)], os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in os.listdir(f"/proc/{current}/task"):
                todo += Path(f"/proc/{current}/task/{task}/children").read_text().split()
        except OSError:  # gone meanwhile
            continue
    return total


def measured(pid: int, url: str, duration: int, cpus: str | None) -> dict[str, float]:
    """wrk's figures plus the server's CPU time per response (µs): unlike requests/s it
    hardly depends on what else the machine runs."""
    load = os.getloadavg()[0]
    before = cpu_seconds(pid)
    result = wrk(url, duration, cpus)
    result["cpu_us"] = (cpu_seconds(pid) - before) / max(1, result["requests"]) * 1e6
    result["load"] = load
    return result


def bench_redirect(
    url: str, workdir: Path, duration: int, workers: int, pin: bool, repeat: int = 1
) -> None:
    # --pin: the server (nginx or advocado) on CPU 0, wrk on CPU 1, so neither steals the
    # other's core; without it the scheduler shares both cores among all of them.
    server_cpus, wrk_cpus = ("0", "1") if pin else (None, None)
    engine = make_engine(url)
    ensure_schema(engine)
    with unit_of_work(engine) as session:
        programs.apply_program(session, PROGRAM)
    with unit_of_work(engine) as session:
        code = programs.code_for(session, program_slug="bench", customer_external_id="adv").code
    engine.dispose()
    where = "server on CPU 0, wrk on CPU 1" if pin else "unpinned, 2 cores shared"
    print(f"redirect ({workers} worker(s) each, {where}), wrk -t2 -c64 -d{duration}s:")
    met = 0
    for run in range(1, repeat + 1):
        nginx_port, app_port = free_port(), free_port()
        reference = nginx(workdir, nginx_port, workers, server_cpus)
        try:
            ref = measured(
                reference.pid, f"http://127.0.0.1:{nginx_port}/r/{code}", duration, wrk_cpus
            )
        finally:
            reference.send_signal(signal.SIGQUIT)
            reference.wait(timeout=30)
        before = clicks(url)
        server = serve(url, app_port, workers, workdir / "server.log", server_cpus)
        ours = measured(server.pid, f"http://127.0.0.1:{app_port}/r/{code}", duration, wrk_cpus)
        time.sleep(1)
        stop(server)
        stored = clicks(url) - before
        both = ours["rps"] >= 0.3 * ref["rps"] and ours["p99_ms"] < 10
        met += both
        print(
            f" run {run}: nginx static 302 {ref['rps']:>9,.0f} req/s  p99 {ref['p99_ms']:6.2f} ms"
            f"  cpu {ref['cpu_us']:5.1f} µs/req  (load average {ref['load']:.1f})"
        )
        print(
            f"        advocado /r/{{code}} {ours['rps']:>9,.0f} req/s  p99 {ours['p99_ms']:6.2f} ms"
            f"  cpu {ours['cpu_us']:5.1f} µs/req  (load average {ours['load']:.1f})  "
            f"non-3xx {ours['bad']}  socket errors {ours['socket_errors']}"
        )
        verdict = "both goals met" if both else "NOT met"
        print(
            f"        ratio {ours['rps'] / ref['rps']:.1%} of nginx (goal ≥ 30 %), p99 "
            f"{'<' if ours['p99_ms'] < 10 else '≥'} 10 ms: {verdict};"
            f" nginx needs {ours['cpu_us'] / ref['cpu_us']:.1f}x less CPU per response"
        )
        print(
            f"        clicks stored after clean shutdown {stored:,}; wrk counted "
            f"{ours['requests']:,} responses (+{stored - ours['requests']} sent while wrk "
            "stopped reading, ≤ 64)"
        )
    if repeat > 1:
        print(f" both goals met in {met} of {repeat} runs")
    before = clicks(url)
    server = serve(url, app_port, workers, workdir / "server2.log")
    served = asyncio.run(exact(f"http://127.0.0.1:{app_port}/r/{code}", 5000))
    stop(server)
    grew = clicks(url) - before
    print(
        f" exact phase: {served:,} 302s served, clicks grew by {grew:,} "
        f"({'equal' if served == grew else 'MISMATCH'})"
    )


def bench_events(url: str, n: int, threads: int = 4) -> None:
    engine = make_engine(url)
    ensure_schema(engine)
    with unit_of_work(engine) as session:
        programs.apply_program(session, PROGRAM)
    advocates = 200
    with unit_of_work(engine) as session:
        codes = [
            programs.code_for(session, program_slug="bench", customer_external_id=f"adv-{i}").code
            for i in range(advocates)
        ]
    at = datetime(2026, 6, 1, tzinfo=UTC)
    events = [
        EventIn(
            event_id=f"order-{i}",
            type="order",
            occurred_at=at,
            customer_external_id=f"friend-{i}",
            referral_code=codes[i % advocates],
            order_external_id=f"O-{i}",
            amount=9900 + i % 5000,
            currency="CNY",
            email=f"friend{i}@example.com",
            ip=f"127.0.{i // 250 % 250}.{i % 250}",
            user_agent="Mozilla/5.0 bench",
        )
        for i in range(n)
    ]

    def run(chunk: list[EventIn]) -> None:
        for event in chunk:
            ingest_event(engine, event)

    chunks = [events[i::threads] for i in range(threads)]
    statements = [0]

    def count(*_: object) -> None:
        statements[0] += 1  # under the GIL, a lost count among threads is rare and only low

    sa_event.listen(engine, "before_cursor_execute", count)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, chunks))
    elapsed = time.perf_counter() - started
    sa_event.remove(engine, "before_cursor_execute", count)
    with unit_of_work(engine) as session:
        rewards = session.scalar(select(func.count()).select_from(Reward))
        entries = session.scalar(select(func.count()).select_from(LedgerEntry))
        referred = session.scalar(select(func.count()).select_from(Referral))
        claimed = session.scalar(select(func.count()).select_from(ReferralEvent))
    # Every event is a new friend's first order with a code: one referral, one reward, one
    # ledger entry each, exactly.
    exact = rewards == entries == referred == claimed == n
    # Reference: the exactly-once claim alone, one transaction per event, same threads.
    lock = threading.Lock()
    counter = iter(range(n))

    def claim(_: int) -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            with unit_of_work(engine) as session:
                session.add(
                    ReferralEvent(
                        event_id=f"ref-{i}",
                        type="order",
                        occurred_at=at,
                        payload={},
                        received_at=at,
                    )
                )

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(claim, range(threads)))
    reference = time.perf_counter() - started
    engine.dispose()
    print(
        f"events: {n:,} order events with attribution, fraud checks and rewards "
        f"({threads} threads): {n / elapsed:,.0f} events/s ({elapsed:.1f} s); "
        f"{rewards:,} rewards, {entries:,} ledger entries"
    )
    print(
        f"  {statements[0] / n:.1f} SQL statements per event (COMMIT not counted); "
        f"check rewards == ledger entries == referrals == events == {n:,}: "
        f"{'ok' if exact else 'MISMATCH'}"
    )
    print(
        f"  reference, the bare event-row insert: {n / reference:,.0f} rows/s "
        f"→ the full path runs at {reference / elapsed:.1%} of that rate"
    )
    if not exact:
        raise SystemExit(f"MISMATCH: {rewards} rewards, {entries} entries, {referred} referrals")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, wrk on CPU 1")
    parser.add_argument("--repeat", type=int, default=1, help="redirect runs (each reported)")
    parser.add_argument("--skip-redirect", action="store_true")
    parser.add_argument("--skip-events", action="store_true")
    args = parser.parse_args()
    print(
        f"database: {args.database}; cores: {os.cpu_count()}; "
        f"load average now {os.getloadavg()[0]:.2f} (the machine may be shared)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if not args.skip_redirect:
            if not (shutil.which("wrk") and shutil.which("nginx")):
                raise SystemExit("needs wrk and nginx: apt-get install -y wrk nginx-light")
            url, handle = database(args.database, workdir)
            try:
                bench_redirect(url, workdir, args.duration, args.workers, args.pin, args.repeat)
            finally:
                drop(handle)
        if not args.skip_events:
            url, handle = database(args.database, workdir)
            try:
                bench_events(url, args.events)
            finally:
                drop(handle)


if __name__ == "__main__":
    main()
