"""The huey application behind `advocado worker`.

huey carries one periodic task, `tick`: it polls the database for due work (pending events,
due steps, due messages, other periodic jobs) and runs it, for up to a minute, then the next
tick (every minute, and one at start) takes over. The database stays the source of truth:
huey only says *when* to look, so a lost or duplicated huey task loses or doubles nothing.

Storage: SqliteHuey in a file next to the database by default (`advocado.db` ->
`advocado.huey.db`), RedisHuey when `ADVOCADO_HUEY_URL=redis://…`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey, crontab

from advocado.config import settings

log = logging.getLogger(__name__)
TICK_SECONDS = float(os.environ.get("ADVOCADO_WORKER_TICK_SECONDS", "55"))
POLL_SECONDS = float(os.environ.get("ADVOCADO_WORKER_POLL_SECONDS", "2"))


def huey_file(database_url: str) -> Path:
    """The SqliteHuey file: beside a SQLite database, else in the working directory."""
    if database_url.startswith("sqlite:///") and database_url != "sqlite:///:memory:":
        path = Path(database_url.removeprefix("sqlite:///"))
        return path.with_name(path.stem + ".huey.db")
    return Path("advocado.huey.db")


def make_huey() -> Huey:
    url = os.environ.get("ADVOCADO_HUEY_URL", "")
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("advocado", url=url)
    if url:
        raise ValueError(f"ADVOCADO_HUEY_URL={url!r}: use redis://host:port/db (or leave unset)")
    return SqliteHuey("advocado", filename=str(huey_file(settings().database_url)))


huey = make_huey()


def run_for(seconds: float) -> tuple[int, bool]:
    """Runs due work again and again for `seconds`, pausing POLL_SECONDS when none is due.
    Returns (steps run, whether the last round still found work)."""
    from advocado.services.playbooks import run_once
    from advocado.store.db import default_engine

    engine = default_engine()
    end = time.monotonic() + seconds
    steps, busy = 0, False
    while time.monotonic() < end:
        report = run_once(engine)
        steps += report.steps
        delivered = (report.delivered or {}).get("claimed", 0)
        busy = bool(report.claimed or report.enrolled or delivered)
        if report.steps or delivered:
            log.info("ran %s steps, delivered %s messages", report.steps, delivered)
        if not busy:
            time.sleep(POLL_SECONDS)
    return steps, busy


@huey.task()
def drain() -> int:
    """A tick that carries on at once (a new task) while there is still work."""
    steps, busy = run_for(TICK_SECONDS)
    if busy:
        drain()
    return steps


@huey.periodic_task(crontab(minute="*"))
def tick() -> int:
    """Every minute: the heartbeat, in case a drain chain was lost (huey is at-most-once)."""
    steps, busy = run_for(TICK_SECONDS)
    if busy:
        drain()
    return steps


def serve(workers: int = 1) -> None:
    """Runs the huey consumer (blocks): periodic ticks, and one drain enqueued at once."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    drain()
    consumer = huey.create_consumer(workers=workers, periodic=True, worker_type="thread")
    consumer.run()
