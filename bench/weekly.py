"""What the weekly summary costs (issue 6), on a demo database, in one run:

- per worker tick once this week's summaries are out (the steady state, every minute until
  the week ends): `weekly.due_now`, beside a whole `run_once` tick with it switched off;
- gathering one week's figures (this week and the week before, plan) beside computing every
  dashboard panel once for the same week.

    .venv/bin/python bench/weekly.py [--customers 2000] [--rounds 20]

Prints seconds (median) and the ratios to the references measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from advocado import clock
from advocado.domain.dashboard import Filters
from advocado.services import dashboard, playbooks, weekly
from advocado.services.demo import load_demo
from advocado.services.users import create_user
from advocado.store.db import ensure_schema, make_engine, read_only, unit_of_work


def median(action, rounds: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("ADVOCADO_SMTP_URL", "smtp://127.0.0.1:9")  # never reached
    folder = Path(tempfile.mkdtemp())
    engine = make_engine(f"sqlite:///{folder / 'bench.db'}")
    ensure_schema(engine)
    load_demo(engine, customers=args.customers)
    now = clock.now()
    with unit_of_work(engine) as session:
        for n in range(20):
            create_user(session, email=f"u{n}@example.com", password="x" * 12, role="analyst")
            locale = ("en", "zh-CN", "zh-TW")[n % 3]
            weekly.set_preferences(session, email=f"u{n}@example.com", weekly_summary=True,
                                   locale=locale, actor="bench")  # fmt: skip
        plan = weekly.parse_schedule(now.weekday(), 0, "UTC")
        weekly.set_schedule(session, day=plan.weekday, hour=0, timezone="UTC", actor="bench")
    week = weekly.due_week(now, plan)
    assert week is not None
    # the steady state: every user's row for this week exists (sent)
    with unit_of_work(engine) as session:
        from advocado.store.models import User, WeeklyReport

        for user in session.query(User):
            session.add(WeeklyReport(user_id=user.id, week=week, email=user.email, locale="en",
                                     status="sent", attempts=1, created_at=now))  # fmt: skip
    playbooks.run_once(engine, deliver=False)  # install the default playbook, warm up
    os.environ["ADVOCADO_WEEKLY_SUMMARY"] = "0"
    tick = median(lambda: playbooks.run_once(engine, deliver=False), args.rounds)
    os.environ["ADVOCADO_WEEKLY_SUMMARY"] = "1"
    check = median(lambda: weekly.due_now(engine, now=now), args.rounds)
    monday = weekly.week_monday(week)
    f = Filters(start=monday, end=monday + timedelta(days=6))

    def panels() -> None:
        with read_only(engine) as session:
            for name in dashboard.PANELS:
                dashboard.panel(session, name, f)

    def gather() -> None:
        with read_only(engine) as session:
            weekly.figures(session, week)

    every = median(panels, max(3, args.rounds // 4))
    figures = median(gather, max(3, args.rounds // 4))
    print(f"customers {args.customers}, week {week}")
    print(f"worker tick without the summary        {tick * 1000:8.2f} ms  (reference)")
    print(f"summary check per tick (all sent)      {check * 1000:8.2f} ms  "
          f"= {check / tick:.3f} x the tick")  # fmt: skip
    print(f"every dashboard panel once, one week   {every * 1000:8.2f} ms  (reference)")
    print(f"weekly figures (2 weeks + plan)        {figures * 1000:8.2f} ms  "
          f"= {figures / every:.2f} x the panels")  # fmt: skip


if __name__ == "__main__":
    main()
