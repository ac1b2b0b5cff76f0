"""ClickRecorder on the real database: every field of a click stored as recorded (the batch
goes to the database as one JSON text), and no click lost while clicks arrive during writes."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Engine, func, select

from advocado.services import programs
from advocado.services.clicks import ClickRecorder, fingerprint, hash_ip, ip_salt
from advocado.store.db import unit_of_work
from advocado.store.models import Click

PROGRAM = {
    "slug": "friends",
    "currency": "CNY",
    "starts_at": "2026-01-01",
    "landing_url": "https://shop.example.com/",
    "qualify": {"event": "first_order"},
    "rewards": [{"id": "pts", "to": "referrer", "type": "points", "amount": 50}],
}


def code_id(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        programs.apply_program(session, PROGRAM)
        session.flush()
        return programs.code_for(session, program_slug="friends", customer_external_id="a").id


def test_every_field_is_stored_as_recorded(engine: Engine) -> None:
    code = code_id(engine)
    salt = ip_salt(engine)
    recorder = ClickRecorder(engine, salt=salt)
    east8 = timezone(timedelta(hours=8))
    clicks = [
        # (at, visitor, ip, user agent, referrer, method): what the redirect hands over
        (datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC), "v1", "203.0.113.7",
         "Mozilla/5.0 (iPhone) 微信", "https://weibo.com/x?a=1&b=\"q\"\\", "GET"),
        (datetime(2026, 3, 2, 17, 0, 1, tzinfo=east8), "v1", "203.0.113.7",
         "Mozilla/5.0 (iPhone) 微信", None, "GET"),  # 09:00:01 UTC, no microseconds
        (datetime(2026, 3, 2, 9, 0, 2, 5, tzinfo=UTC), "v2", None, "", "", "GET"),
        (datetime(2026, 3, 2, 9, 0, 3, tzinfo=UTC), "v3", "2001:db8::1", "Googlebot/2.1",
         None, "GET"),
        (datetime(2026, 3, 2, 9, 0, 4, tzinfo=UTC), "v4", "198.51.100.1", "Mozilla/5.0 ÿé",
         "android-app://com.tencent.mm/", "HEAD"),
    ]  # fmt: skip
    for at, visitor, ip, agent, referrer, method in clicks:
        recorder.add(code_id=code, visitor_id=visitor, ip=ip, user_agent=agent,
                     referrer=referrer, method=method, at=at)  # fmt: skip
    assert recorder.flush() == len(clicks)
    with unit_of_work(engine) as session:
        stored = session.scalars(select(Click).order_by(Click.id)).all()
        got = [
            (c.code_id, c.clicked_at, c.visitor_id, c.ip_hash, c.fingerprint, c.user_agent,
             c.referrer, c.is_bot)
            for c in stored
        ]  # fmt: skip
    expected = []
    for at, visitor, ip, agent, referrer, method in clicks:
        ip_hash = hash_ip(ip, salt) if ip else None
        bot = method == "HEAD" or agent in ("", "Googlebot/2.1")
        expected.append((code, at.astimezone(UTC), visitor, ip_hash,
                         fingerprint(ip_hash, agent), agent or None, referrer, bot))  # fmt: skip
    assert got == expected
    assert got[1][1] == datetime(2026, 3, 2, 9, 0, 1, tzinfo=UTC)
    assert recorder.pending() == 0 and recorder.flush() == 0


def test_no_click_is_lost_while_clicks_arrive_during_writes(engine: Engine) -> None:
    """The redirect appends while the writer thread swaps the queue out and writes it: with
    the GIL switching every microsecond, 20,000 clicks from two threads, flushed all along,
    are 20,000 rows."""
    code = code_id(engine)
    recorder = ClickRecorder(engine, salt=ip_salt(engine))
    per_thread, done = 10_000, threading.Event()
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def click(name: str) -> None:
        for i in range(per_thread):
            recorder.add(code_id=code, visitor_id=f"{name}{i}", ip="203.0.113.7",
                         user_agent="Mozilla/5.0", referrer=None, method="GET", at=at)  # fmt: skip

    written = 0

    def write() -> None:
        nonlocal written
        while not done.is_set():
            written += recorder.flush()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        writer = threading.Thread(target=write)
        writer.start()
        clickers = [threading.Thread(target=click, args=(n,)) for n in "ab"]
        for thread in clickers:
            thread.start()
        for thread in clickers:
            thread.join()
        done.set()
        writer.join()
    finally:
        sys.setswitchinterval(interval)
    written += recorder.flush()
    with unit_of_work(engine) as session:
        rows = session.scalar(select(func.count()).select_from(Click))
        visitors = session.scalar(select(func.count(func.distinct(Click.visitor_id))))
    assert written == rows == visitors == 2 * per_thread
