"""The dashboard's click aggregates (services.click_rollup): after random clicks (bots, repeat
visitors, several codes, programs and days, late clicks stamped earlier than ones already
rolled up), figures read from aggregates + the live tail equal the figures scanned from the
clicks, at every stage of incremental roll-ups; incremental roll-ups leave the same tables as
a rebuild; racing roll-ups (threads) count nothing twice; the drill-down lists exactly the
visits the figure counts. On SQLite and PostgreSQL."""

import random
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from ugc_support import PASSWORD, add_user

from advocado import clock
from advocado.domain.dashboard import Filters
from advocado.domain.records import CustomerRecord
from advocado.services import click_rollup, dashboard, programs, segments
from advocado.services.playbooks import run_once
from advocado.services.records import save_customers
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import (
    Click,
    ClickDayCount,
    ClickProgramDay,
    ClickVisitor,
    Customer,
    Program,
    ReferralCode,
)
from advocado.web.app import create_app

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
PEOPLE = [f"a{i}" for i in range(6)]


def _program(slug: str) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": slug.upper(),
        "currency": "CNY",
        "starts_at": "2026-01-01",
        "landing_url": "https://shop.example.com/",
        "rewards": [{"id": "t", "to": "referrer", "type": "points", "label": "p", "amount": 1}],
    }


@pytest.fixture
def codes(engine: Engine) -> Iterator[list[int]]:
    """Six advocates; a0..a3 have a code in program p, a2..a5 in program q (8 codes)."""
    clock.set_now(NOW - timedelta(days=60))
    with unit_of_work(engine) as session:
        save_customers(
            session,
            [
                CustomerRecord(external_id=p, name=p, tags=("vip",) if p in ("a2", "a3") else ())
                for p in PEOPLE
            ],
        )
        segments.create_segment(session, name="VIP", slug="vip", filters={"tags_any": ["vip"]})
        programs.apply_program(session, _program("p"))
        programs.apply_program(session, _program("q"))
    with unit_of_work(engine) as session:
        for who in PEOPLE[:4]:
            programs.code_for(session, program_slug="p", customer_external_id=who)
        for who in PEOPLE[2:]:
            programs.code_for(session, program_slug="q", customer_external_id=who)
        found = list(session.scalars(select(ReferralCode.id).order_by(ReferralCode.id)))
    clock.set_now(NOW)
    yield found


def _add_clicks(engine: Engine, codes: list[int], rng: random.Random, n: int) -> None:
    """n clicks over 10 days of June, visitors reused across codes, about 1 in 6 a bot;
    times in random order, so late clicks are often earlier than rolled-up ones."""
    rows = []
    for _ in range(n):
        visitor = f"v{rng.randint(1, 25)}"
        rows.append(
            Click(
                code_id=rng.choice(codes),
                clicked_at=datetime(2026, 6, 10, tzinfo=UTC)
                + timedelta(seconds=rng.randint(0, 10 * 86400 - 1)),
                visitor_id=visitor,
                ip_hash=None,
                fingerprint=visitor,
                user_agent="ua",
                referrer=None,
                is_bot=rng.random() < 0.17,
            )
        )
    with unit_of_work(engine) as session:
        session.add_all(rows)


def _periods() -> list[tuple[datetime | None, datetime | None]]:
    day = datetime(2026, 6, 10, tzinfo=UTC)
    return [
        (None, None),
        (day + timedelta(days=2), day + timedelta(days=5)),
        (day + timedelta(days=4), None),
        (None, day + timedelta(days=1)),
        (day + timedelta(days=3), day + timedelta(days=4)),
    ]


def _scopes(session: Any) -> list[tuple[int | None, Any, bool]]:
    p, q = session.scalars(select(Program.id).order_by(Program.id)).all()
    a2_a3 = select(ReferralCode.id).join(Customer).where(Customer.external_id.in_(["a2", "a3"]))
    in_q = select(ReferralCode.id).where(ReferralCode.program_id == q)
    return [(None, None, True), (p, select(ReferralCode.id).where(ReferralCode.program_id == p),
            True), (q, in_q, True), (None, a2_a3, False), (q, in_q.where(ReferralCode.id.in_(
            a2_a3)), False)]  # fmt: skip


def _check_figures(engine: Engine) -> int:
    """Every period x scope: aggregates + tail == scan, and the drill lists what is counted.
    Returns how many unique clicks the whole range has (so tests know data was there)."""
    total = 0
    with read_only(engine) as session:
        for program_id, codes, by_program in _scopes(session):
            for start, end in _periods():
                found = click_rollup.click_counts(
                    session,
                    start=start,
                    end=end,
                    program_id=program_id,
                    codes=codes,
                    by_program=by_program,
                )
                scanned = click_rollup.scan_counts(session, start=start, end=end, codes=codes)
                assert found == scanned, (program_id, by_program, start, end)
                base = select(Click.id.label("click_id"), Click.clicked_at).select_from(Click)
                listed = click_rollup.first_visits(
                    session, base, start=start, end=end, codes=codes, limit=None
                )
                assert len(listed) == found[1]
                assert [r.click_id for r in listed] == _first_visit_ids(session, start, end, codes)
                for walk_time in (False, True):
                    short = click_rollup.first_visits(
                        session, base, start=start, end=end, codes=codes, limit=3,
                        walk_time=walk_time,
                    )  # fmt: skip
                    assert [r.click_id for r in short] == [r.click_id for r in listed[:3]]
                if program_id is None and codes is None and start is None and end is None:
                    total = found[1]
    return total


def _first_visit_ids(session: Any, start: Any, end: Any, codes: Any) -> list[int]:
    """By hand in Python: each (code, visitor)'s first human click, those in the period."""
    query = select(Click.id, Click.code_id, Click.fingerprint, Click.clicked_at).where(
        Click.is_bot.is_(False)
    )
    if codes is not None:
        query = query.where(Click.code_id.in_(codes))
    first: dict[tuple[int, str], tuple[datetime, int]] = {}
    for click_id, code_id, print_, at in session.execute(query):
        key = (code_id, print_)
        first[key] = min(first.get(key, (at, click_id)), (at, click_id))
    inside = [
        v
        for v in first.values()
        if (start is None or v[0] >= start) and (end is None or v[0] < end)
    ]
    return [click_id for _, click_id in sorted(inside)]


def _tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with read_only(engine) as session:
        return {
            "days": sorted(
                tuple(r)
                for r in session.execute(
                    select(
                        ClickDayCount.code_id,
                        ClickDayCount.day,
                        ClickDayCount.clicks,
                        ClickDayCount.human_clicks,
                        ClickDayCount.new_visitors,
                    )
                )
            ),
            "programs": sorted(
                tuple(r)
                for r in session.execute(
                    select(
                        ClickProgramDay.program_id,
                        ClickProgramDay.day,
                        ClickProgramDay.clicks,
                        ClickProgramDay.human_clicks,
                        ClickProgramDay.new_visitors,
                    )
                )
            ),
            "visitors": sorted(
                tuple(r)
                for r in session.execute(
                    select(
                        ClickVisitor.code_id,
                        ClickVisitor.fingerprint,
                        ClickVisitor.first_at,
                        ClickVisitor.first_click_id,
                    )
                )
            ),
        }


def test_incremental_rollups_equal_rebuild_and_scan(engine: Engine, codes: list[int]) -> None:
    rng = random.Random(11)
    assert _check_figures(engine) == 0  # nothing yet, nothing rolled up
    for _ in range(4):
        _add_clicks(engine, codes, rng, 60)
        assert _check_figures(engine) > 0  # the live tail alone
        with unit_of_work(engine) as session:
            done = click_rollup.roll_up_clicks(session, limit=25)  # part of the tail
        assert done.high - done.low == 25
        _check_figures(engine)  # aggregates + the rest of the tail
        click_rollup.catch_up(engine, limit=40)  # several steps
        _check_figures(engine)  # aggregates alone
    incremental = _tables(engine)
    assert sum(r[2] for r in incremental["days"]) == 240
    with unit_of_work(engine) as session:
        rebuilt = click_rollup.rebuild_clicks(session)
    assert rebuilt.high == 240 and rebuilt.clicks == 240
    assert _tables(engine) == incremental
    _check_figures(engine)


def test_late_click_earlier_than_the_rolled_up_first_visit(
    engine: Engine, codes: list[int]
) -> None:
    """A visitor's first visit moves to an earlier day when an earlier click arrives late: the
    later day loses a new visitor, the earlier day gains one, before and after the roll-up."""

    def click(at: datetime, bot: bool = False) -> None:
        with unit_of_work(engine) as session:
            session.add(
                Click(code_id=codes[0], clicked_at=at, visitor_id="v", fingerprint="v",
                      user_agent="ua", is_bot=bot)
            )  # fmt: skip

    june = [datetime(2026, 6, d, 10, tzinfo=UTC) for d in range(1, 31)]
    click(june[14])
    click_rollup.catch_up(engine)
    figures = {}
    for stage in ("tail", "rolled"):
        click(june[9], bot=True)  # a bot's earlier click changes nothing
        click(june[11] if stage == "tail" else june[4])
        _check_figures(engine)
        with read_only(engine) as session:
            figures[stage] = [
                click_rollup.click_counts(session, start=june[d].replace(hour=0),
                                          end=june[d + 1].replace(hour=0), program_id=None,
                                          codes=None, by_program=True)
                for d in (4, 11, 14)
            ]  # fmt: skip
        click_rollup.catch_up(engine)
        _check_figures(engine)
    assert figures["tail"] == [(0, 0), (1, 1), (1, 0)]
    assert figures["rolled"] == [(1, 1), (1, 0), (1, 0)]


def test_racing_rollups_count_each_click_once(engine: Engine, codes: list[int]) -> None:
    """Four threads roll up while another keeps adding clicks; then the aggregates equal a
    rebuild's and the figures equal the scan."""
    rng = random.Random(5)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(15):
                _add_clicks(engine, codes, rng, 20)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            stop.set()

    def roller() -> None:
        try:
            while not stop.is_set():
                click_rollup.catch_up(engine, limit=7)
            click_rollup.catch_up(engine, limit=7)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=roller) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    _check_figures(engine)
    incremental = _tables(engine)
    assert sum(r[2] for r in incremental["days"]) == 300
    click_rollup.rebuild(engine)
    assert _tables(engine) == incremental


def test_the_dashboard_reads_the_aggregates_and_the_worker_rolls_up(
    engine: Engine, codes: list[int]
) -> None:
    """Through the dashboard's funnel and drill-down: the same figures before and after the
    worker's periodic run folded the clicks in, and with clicks above the watermark again."""
    rng = random.Random(3)
    _add_clicks(engine, codes, rng, 80)
    june = Filters(start=datetime(2026, 6, 12).date(), end=datetime(2026, 6, 16).date())
    in_q = Filters(start=june.start, end=june.end, program="q")

    def funnel(f: Filters = june) -> tuple[int, int, int, list[Any]]:
        with read_only(engine) as session:
            counts = {r["stage"]: r["count"] for r in dashboard.panel(session, "referrals", f).rows}
            k = dashboard.panel(session, "k_factor", f).rows
            drill = dashboard.drill(session, "referrals", f, {"stage": "unique_clicks"},
                                    limit=None)  # fmt: skip
            clicks = dashboard.drill(session, "referrals", f, {"stage": "clicks"}, limit=None)
            for dense in (0, 10**9):  # a page: read in time order, or the codes' clicks sorted
                dashboard.DENSE_CLICKS = dense
                page = dashboard.drill(session, "referrals", f, {"stage": "clicks"}, limit=5)
                assert page.rows == clicks.rows[:5]
                page = dashboard.drill(session, "referrals", f, {"stage": "unique_clicks"},
                                       limit=5)  # fmt: skip
                assert page.rows == drill.rows[:5]
            dashboard.DENSE_CLICKS = 20_000
        invitations = next(r["value"] for r in k if r["metric"] == "invitations")
        assert counts["clicks"] == len(clicks.rows)
        return counts["clicks"], counts["unique_clicks"], invitations, drill.rows

    before = funnel()
    assert before[1] == before[2] == len(before[3]) > 0
    only_q = funnel(in_q)
    assert 0 < only_q[0] < before[0] and 0 < only_q[1] < before[1]
    report = run_once(engine, deliver=False)
    assert report.extra["clicks_rolled_up"] == 80
    assert funnel() == before
    assert funnel(in_q) == only_q
    vip = Filters(start=june.start, end=june.end, segment="vip")  # a2, a3: codes in p and q
    with read_only(engine) as session:
        scope = dashboard._scope(session, vip)
        codes_a2_a3 = (
            select(ReferralCode.id).join(Customer).where(Customer.external_id.in_(["a2", "a3"]))
        )
        scanned = click_rollup.scan_counts(
            session, start=scope.start, end=scope.end, codes=codes_a2_a3
        )
    assert funnel(vip)[:2] == scanned and 0 < scanned[1] < before[1]
    _add_clicks(engine, codes, rng, 30)
    again = funnel()
    assert again[1] == again[2] == len(again[3]) >= before[1]
    assert run_once(engine, deliver=False).extra["clicks_rolled_up"] == 30
    assert funnel() == again


def test_cli_rollup_and_rebuild(advocado: Any, database_url: str, engine: Engine,
                                codes: list[int], tmp_path: Any) -> None:  # fmt: skip
    _add_clicks(engine, codes, random.Random(9), 50)
    rolled = advocado("dashboard", "rollup", cwd=tmp_path, database_url=database_url)
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled up 50 clicks" in rolled.stdout
    incremental = _tables(engine)
    rebuilt = advocado("dashboard", "rebuild", cwd=tmp_path, database_url=database_url)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt from 50 clicks" in rebuilt.stdout
    assert _tables(engine) == incremental


def test_the_console_funnel_says_what_unique_means_and_its_drill_lists_first_visits(
    engine: Engine, codes: list[int], database_url: str
) -> None:
    """In the three languages, and the drill page's rows are the figure's first visits."""
    _add_clicks(engine, codes, random.Random(4), 40)
    click_rollup.catch_up(engine, limit=15)
    _add_clicks(engine, codes, random.Random(5), 10)  # and a live tail
    add_user(engine, "analyst@example.com", "analyst")
    app = create_app(database_url)
    with TestClient(app, follow_redirects=False) as http:
        token = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)
        assert token
        form = {"email": "analyst@example.com", "password": PASSWORD, "csrf": token.group(1)}
        assert http.post("/login", data=form).status_code == 303
        for lang, words in (("en", "first human click"), ("zh-CN", "首次"), ("zh-TW", "首次")):
            panel = http.get(f"/dashboard/panels/referrals?lang={lang}")
            assert panel.status_code == 200 and words in panel.text, lang
        exported = http.get("/dashboard/drill/referrals.csv?stage=unique_clicks").text
    app.state.engine.dispose()
    with read_only(engine) as session:
        unique = click_rollup.scan_counts(session, start=None, end=None, codes=None)[1]
    assert exported.count("\n") == unique + 1  # the header, then one row per first visit
