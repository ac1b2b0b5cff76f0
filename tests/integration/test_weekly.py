"""The weekly summary email: the chosen (enabled) users get exactly one each, in their
language, with last week's figures against the week before; two workers racing send each
once; a worker killed mid-send leaves an `uncertain` row that a rerun does not resend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from advocado import clock
from advocado.domain.records import CustomerRecord, FieldError, OrderRecord, ResponseRecord
from advocado.services import weekly
from advocado.services.records import save_customers, save_orders, save_responses
from advocado.services.users import create_user, set_disabled
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import WeeklyReport

# 2026-W47 is Mon 16 - Sun 22 Nov; W46 is 9 - 15 Nov. Sent Monday 23 Nov 09:00 Shanghai.
SEND_AT = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)  # 09:30 in Asia/Shanghai
PASSWORD = "correct horse"


def day(d: int, hour: int = 10) -> datetime:
    return datetime(2026, 11, d, hour, tzinfo=UTC)


def users(engine: Engine, chosen: dict[str, str], others: tuple[str, ...] = ()) -> None:
    with unit_of_work(engine) as session:
        for email, locale in chosen.items():
            create_user(session, email=email, password=PASSWORD, role="analyst")
            weekly.set_preferences(
                session, email=email, weekly_summary=True, locale=locale, actor="test"
            )
        for email in others:
            create_user(session, email=email, password=PASSWORD, role="marketer")
        weekly.set_schedule(session, day="mon", hour=9, timezone="Asia/Shanghai", actor="test")


def figures_data(engine: Engine) -> None:
    """W47: scores 10, 10, 9, 3 (NPS +50.0, 3 promoters); W46: 10, 5 (NPS 0.0); orders."""
    clock.set_now(day(1))
    answers = [("a", 10, day(16)), ("b", 10, day(17)), ("c", 9, day(22, 20)), ("d", 3, day(18)),
               ("e", 10, day(10)), ("f", 5, day(12))]  # fmt: skip
    with unit_of_work(engine) as session:
        save_customers(session, [CustomerRecord(external_id=w, name=w) for w, _, _ in answers])
        save_responses(session, [
            ResponseRecord(external_id=f"r-{w}", score=s, submitted_at=t, customer_external_id=w)
            for w, s, t in answers
        ])  # fmt: skip
        order = OrderRecord(external_id="o1", customer_external_id="a", amount=9900,
                            currency="CNY", placed_at=day(17))  # fmt: skip
        save_orders(session, [order])
    clock.set_now(None)


def sent_to(sink, address: str) -> list:  # type: ignore[no-untyped-def]
    return sink.to(address)


def body(mail, kind: str = "plain") -> str:  # type: ignore[no-untyped-def]
    return mail.get_body(preferencelist=(kind,)).get_content()


def rows(engine: Engine) -> dict[str, str]:
    with read_only(engine) as session:
        return {r.email: r.status for r in weekly.sends(session)}


def test_the_chosen_users_get_one_each_in_their_language(
    engine: Engine, smtp_server, monkeypatch
) -> None:
    users(engine, {"boss@example.com": "en", "wang@example.com": "zh-CN",
                   "chen@example.com": "zh-TW", "gone@example.com": "en"},
          others=("quiet@example.com",))  # fmt: skip
    with unit_of_work(engine) as session:
        set_disabled(session, email="gone@example.com", disabled=True)
    figures_data(engine)
    assert weekly.send_weekly(engine, now=SEND_AT - timedelta(hours=1)).week is None  # 08:30
    run = weekly.send_weekly(engine, now=SEND_AT)
    assert (run.week, run.recipients, run.sent) == ("2026-W47", 3, 3)
    again = weekly.send_weekly(engine, now=SEND_AT + timedelta(hours=5))
    assert (again.sent, again.already) == (0, 3)
    assert weekly.due_week(SEND_AT + timedelta(days=6, hours=14), weekly.schedule_of(engine)) == (
        "2026-W47"
    )  # Sunday night in Shanghai: still last week's report
    assert len(smtp_server.messages) == 3
    assert sent_to(smtp_server, "gone@example.com") == []
    assert sent_to(smtp_server, "quiet@example.com") == []
    (en,) = sent_to(smtp_server, "boss@example.com")
    (cn,) = sent_to(smtp_server, "wang@example.com")
    (tw,) = sent_to(smtp_server, "chen@example.com")
    assert "2026-W47" in en["Subject"] and en["Content-Language"] == "en"
    text = body(en)
    assert "NPS | +50.0 | +0.0 | +50.0" in text
    assert "Responses | 4 | 2 | +2" in text and "Promoters (9-10) | 3 | 1 | +2" in text
    assert "/dashboard?from=2026-11-16&to=2026-11-22" in text
    assert "List-Unsubscribe" not in en  # internal report, not marketing
    assert "每周摘要" in cn["Subject"] and "上周" in body(cn) and "<table" in body(cn, "html")
    assert "每週摘要" in tw["Subject"] and "推薦漏斗" in body(tw)
    assert rows(engine) == dict.fromkeys(
        ["boss@example.com", "wang@example.com", "chen@example.com"], "sent"
    )


def test_cli_preview_week_and_to(engine: Engine, database_url: str, smtp_server, advocado,
                                 tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    users(engine, {"boss@example.com": "zh-CN"}, others=("quiet@example.com",))
    figures_data(engine)
    env_args = {"cwd": tmp_path, "database_url": database_url}
    preview = advocado("report", "weekly", "--week", "2026-W47", "--dry-run", **env_args)
    assert preview.returncode == 0, preview.stderr
    assert "每周摘要 2026-W47" in preview.stdout and smtp_server.messages == []
    assert rows(engine) == {}
    bad = advocado("report", "weekly", "--week", "2026-47", **env_args)
    assert bad.returncode == 2 and "week" in bad.stderr
    one = advocado("report", "weekly", "--week", "2026-W47", "--to", "quiet@example.com",
                   **env_args)  # fmt: skip
    assert one.returncode == 0 and "1 sent" in one.stdout, one.stdout + one.stderr
    assert len(sent_to(smtp_server, "quiet@example.com")) == 1
    twice = advocado("report", "weekly", "--week", "2026-W47", "--to", "quiet@example.com",
                     **env_args)  # fmt: skip
    assert "1 already" in twice.stdout and len(smtp_server.messages) == 1
    with pytest.raises(FieldError):
        weekly.send_weekly(engine, week="2026-W47", to="nobody@example.com")


def test_two_workers_racing_send_each_once(engine: Engine, smtp_server) -> None:
    people = {f"u{n}@example.com": "en" for n in range(6)}
    users(engine, people)
    figures_data(engine)
    smtp_server.delay = 0.05
    engine.pool.dispose()
    barrier = threading.Barrier(2)
    results: list[object] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(weekly.send_weekly(engine, now=SEND_AT))
        except Exception as error:  # noqa: BLE001 - reported below
            results.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(r, weekly.WeeklyRun) for r in results), results
    assert sum(r.sent for r in results) == 6  # type: ignore[union-attr]
    assert sorted(str(m["To"]) for m in smtp_server.messages) == sorted(people)


KILLED = """
import os
from advocado.services.weekly import send_weekly
from advocado.store.db import make_engine
send_weekly(make_engine(os.environ["ADVOCADO_DATABASE_URL"]), week="2026-W47")
"""


def test_sigkill_mid_send_then_rerun_sends_nothing_twice(
    engine: Engine, database_url: str, smtp_server
) -> None:
    people = {f"u{n}@example.com": "en" for n in range(6)}
    users(engine, people)
    figures_data(engine)
    smtp_server.delay = 0.4
    victim = subprocess.Popen([sys.executable, "-c", KILLED], env=dict(os.environ))
    deadline = time.monotonic() + 60
    while smtp_server.started <= 2:  # two in, the third inside DATA
        assert time.monotonic() < deadline and victim.poll() is None, "never got there"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    time.sleep(smtp_server.delay + 0.2)
    smtp_server.delay = 0
    assert sorted(rows(engine).values()) == ["sending", "sent", "sent"]
    # a rerun while the lease holds leaves the row alone; after it lapses the row is uncertain
    rerun = weekly.send_weekly(engine, week="2026-W47", now=clock.now() + timedelta(hours=1))
    assert (rerun.sent, rerun.already) == (3, 3)
    final = rows(engine)
    assert sorted(final.values()) == ["sent"] * 5 + ["uncertain"]
    received = [str(m["To"]) for m in smtp_server.messages]
    assert len(received) == len(set(received))  # nobody twice
    assert {a for a, s in final.items() if s == "sent"} <= set(received)
    with read_only(engine) as session:
        (lost,) = session.scalars(select(WeeklyReport).where(WeeklyReport.status == "uncertain"))
    assert "not resent" in (lost.detail or "")
    count = len(smtp_server.messages)
    weekly.send_weekly(engine, week="2026-W47", now=clock.now() + timedelta(hours=2))
    assert len(smtp_server.messages) == count


def test_schedule_and_preferences_are_checked(engine: Engine) -> None:
    with pytest.raises(FieldError) as bad:
        weekly.parse_schedule("someday", 9, "UTC")
    assert bad.value.field == "day"
    with pytest.raises(FieldError) as bad:
        weekly.parse_schedule("tue", 24, "UTC")
    assert bad.value.field == "hour"
    with pytest.raises(FieldError) as bad:
        weekly.parse_schedule("tue", 8, "Mars/Olympus")
    assert bad.value.field == "timezone"
    plan = weekly.parse_schedule("tue", 8, "Asia/Taipei")
    assert weekly.due_week(datetime(2026, 11, 24, 0, 30, tzinfo=UTC), plan) == "2026-W47"
    assert weekly.due_week(datetime(2026, 11, 23, 23, 30, tzinfo=UTC), plan) is None
    users(engine, {"a@example.com": "en"})
    with unit_of_work(engine) as session, pytest.raises(FieldError) as bad:
        weekly.set_preferences(session, email="a@example.com", weekly_summary=True,
                               locale="fr", actor="t")  # fmt: skip
    assert bad.value.field == "locale"


def test_console_own_choice_admin_for_others_and_the_schedule(engine: Engine, database_url) -> None:  # type: ignore[no-untyped-def]
    import re

    from fastapi.testclient import TestClient
    from test_roles_audit import sign_in

    from advocado.services import audit
    from advocado.store.models import User
    from advocado.web.app import create_app

    with unit_of_work(engine) as session:
        for role in ("admin", "analyst"):
            create_user(session, email=f"{role}@example.com", password=PASSWORD, role=role)
    app = create_app(database_url)
    with TestClient(app, follow_redirects=False) as client:
        token = sign_in(client, "analyst")
        page = client.get("/account?lang=zh-TW")
        assert page.status_code == 200 and "每週摘要郵件" in page.text
        mine = {"csrf": token, "weekly_summary": "on", "locale": "zh-TW"}
        assert client.post("/account/weekly-summary", data=mine).status_code == 303
        bad = client.post("/account/weekly-summary", data={**mine, "locale": "fr"})
        assert bad.status_code == 400 and "locale" in bad.text
        with read_only(engine) as session:
            admin_id = session.scalar(select(User.id).where(User.email == "admin@example.com"))
        others = client.post(f"/users/{admin_id}/weekly-summary", data=mine)
        assert others.status_code == 403  # an analyst sets only their own
        plan = {"csrf": token, "day": "fri", "hour": "17", "timezone": "Asia/Taipei"}
        assert client.post("/users/weekly-schedule", data=plan).status_code == 403

        token = sign_in(client, "admin")
        page = client.get("/users")
        assert 'data-testid="weekly-schedule"' in page.text
        assert re.search(r'action="/users/\d+/weekly-summary"', page.text)
        theirs = {"csrf": token, "weekly_summary": "on", "locale": "zh-CN"}
        assert client.post(f"/users/{admin_id}/weekly-summary", data=theirs).status_code == 303
        assert (
            client.post("/users/weekly-schedule", data={**plan, "csrf": token}).status_code == 303
        )
        wrong = client.post("/users/weekly-schedule", data={**plan, "csrf": token, "hour": "25"})
        assert wrong.status_code == 400 and "hour" in wrong.text
    app.state.engine.dispose()
    with read_only(engine) as session:
        chosen = {u.email: (u.weekly_summary, u.locale) for u in session.scalars(select(User))}
        changes = [(e.actor, e.entity_id, e.action) for e in audit.entries(session)]
    assert chosen == {"admin@example.com": (True, "zh-CN"), "analyst@example.com": (True, "zh-TW")}
    assert weekly.schedule_of(engine) == weekly.Schedule(4, 17, "Asia/Taipei")
    assert ("user:analyst@example.com", "analyst@example.com", "weekly_summary") in changes
    assert ("user:admin@example.com", "admin@example.com", "weekly_summary") in changes
    assert ("user:admin@example.com", weekly.SCHEDULE_SETTING, "update") in changes


def test_the_worker_tick_sends_it_once_and_a_simulation_never(engine: Engine, smtp_server) -> None:
    from advocado.services import playbooks

    users(engine, {"boss@example.com": "en"})
    figures_data(engine)
    playbooks.run_once(engine, now=SEND_AT, deliver=False)  # e.g. `playbook simulate`
    assert smtp_server.messages == []
    first = playbooks.run_once(engine, now=SEND_AT)
    again = playbooks.run_once(engine, now=SEND_AT + timedelta(minutes=1))
    assert (first.extra["weekly_summaries"], again.extra["weekly_summaries"]) == (1, 0)
    assert len(sent_to(smtp_server, "boss@example.com")) == 1
