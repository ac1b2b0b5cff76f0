"""Clicks under a segment filter (services.click_rollup's cohort_click_day_counts): the funnel's
clicks and unique clicks and the K-factor's invitations under a segment equal the figures
scanned from the clicks of the codes its members hold now: with an un-rolled tail, with
advocates tagged in and out and not judged yet, after the worker judged them, after a
roll-up, after the segment is edited and deleted; the kept rows equal a rebuild's; and a
roll-up racing the worker's moves and the taggers counts nothing twice or never. On SQLite and
PostgreSQL."""

from __future__ import annotations

import random
import threading
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from test_click_rollup import _add_clicks, _periods, codes  # noqa: F401 - codes: a fixture

from advocado.domain.dashboard import Filters
from advocado.domain.records import CustomerRecord
from advocado.services import click_rollup, cohorts, dashboard, programs, segments
from advocado.services.records import save_customers
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import ClickDayCount, ReferralCode, Segment

SLUGS = ("vip", "gold")


def _tag(engine: Engine, tags: dict[str, tuple[str, ...]]) -> None:
    """Tags written: the customers are dirty until the worker judges them."""
    with unit_of_work(engine) as session:
        save_customers(session, [CustomerRecord(k, name=k, tags=v) for k, v in tags.items()])


def _figures(session: Any, f: Filters) -> tuple[int, int, int]:
    counts = {r["stage"]: r["count"] for r in dashboard.panel(session, "referrals", f).rows}
    k = dashboard.panel(session, "k_factor", f).rows
    invitations = next(r["value"] for r in k if r["metric"] == "invitations")
    return counts["clicks"], counts["unique_clicks"], invitations


def _check_drills(session: Any, f: Filters, clicks: int, unique: int) -> None:
    """The click drill-downs list what the figures count; a page is their first rows, read in
    time order (each click's holder probed) or from the members' codes."""
    full = {}
    for stage, count in (("clicks", clicks), ("unique_clicks", unique)):
        full[stage] = dashboard.drill(session, "referrals", f, {"stage": stage}, limit=None).rows
        assert len(full[stage]) == count
    saved = dashboard.DENSE_CLICKS
    try:
        for dense in (0, 10**9):
            dashboard.DENSE_CLICKS = dense
            for stage, rows in full.items():
                page = dashboard.drill(session, "referrals", f, {"stage": stage}, limit=5)
                assert page.rows == rows[:5], (stage, dense)
    finally:
        dashboard.DENSE_CLICKS = saved


def _check(engine: Engine) -> int:
    """Every segment x period: the cohort's figures (through the dashboard too) equal the scan
    of the codes held by the customers its filter selects now; the kept rows equal a
    rebuild's. Returns the unique clicks found (so a test knows data was there)."""
    found = 0
    with read_only(engine) as session:
        slugs = list(session.scalars(select(Segment.slug)))
        for slug in slugs:
            segment, spec = segments.segment_filter(session, slug=slug)
            members = cohorts.segment_members(session, segment.id, spec)
            assert members is not None
            held = select(ReferralCode.id).where(
                ReferralCode.customer_id.in_(segments.member_ids(session, spec))
            )
            for start, end in _periods():
                scanned = click_rollup.scan_counts(session, start=start, end=end, codes=held)
                counted = click_rollup.cohort_click_counts(
                    session, start=start, end=end, members=members
                )
                assert counted == scanned, (slug, start, end)
                found += scanned[1]
            f = Filters(start=datetime(2026, 6, 12).date(), end=datetime(2026, 6, 16).date(),
                        segment=slug)  # fmt: skip
            scope = dashboard._scope(session, f)
            assert dashboard._segment_sums(scope) is not None  # the cohort's rows answer
            clicks, unique = click_rollup.scan_counts(
                session, start=scope.start, end=scope.end, codes=held
            )
            assert _figures(session, f) == (clicks, unique, unique)
            _check_drills(session, f, clicks, unique)
    with read_only(engine) as session:
        kept = click_rollup.cohort_snapshot(session)
    with unit_of_work(engine) as session:
        click_rollup.rebuild_cohorts(session)
    with read_only(engine) as session:
        assert click_rollup.cohort_snapshot(session) == kept
    return found


def test_segment_click_figures_through_tail_moves_rollups_and_edits(
    engine: Engine,
    codes: list[int],  # noqa: F811 - the fixture
) -> None:
    rng = random.Random(21)
    with unit_of_work(engine) as session:
        segments.create_segment(session, name="Gold", slug="gold", filters={"tags_any": ["gold"]})
    _add_clicks(engine, codes, rng, 80)
    assert _check(engine) > 0  # the live tail alone
    with unit_of_work(engine) as session:
        click_rollup.roll_up_clicks(session, limit=50)
    _check(engine)  # rows + the rest of the tail
    click_rollup.catch_up(engine)
    _check(engine)
    _tag(engine, {"a1": ("vip",), "a2": (), "a4": ("gold",)})  # in, out; not judged yet
    _add_clicks(engine, codes, rng, 40)  # and a tail on their codes
    _check(engine)
    with read_only(engine) as session:  # the dirty window is what is read
        segment, spec = segments.segment_filter(session, slug="vip")
        members = cohorts.segment_members(session, segment.id, spec)
        assert members is not None and members.into and members.out
    cohorts.settle(engine)
    _check(engine)
    click_rollup.catch_up(engine)
    _check(engine)
    with read_only(engine) as session:
        kept = click_rollup.cohort_snapshot(session)
    assert {cohort for cohort, _ in kept} == {"segment:1", "segment:2"}
    with unit_of_work(engine) as session:  # re-saved: its members and rows recomputed
        segments.update_segment(session, slug="vip", name="VIP", filters={"tags_any": ["gold"]})
    _check(engine)
    with unit_of_work(engine) as session:
        segments.delete_segment(session, slug="gold")
    _check(engine)
    with read_only(engine) as session:
        assert {c for c, _ in click_rollup.cohort_snapshot(session)} == {"segment:1"}
    with unit_of_work(engine) as session:  # the full rebuild: the same rows
        click_rollup.rebuild_clicks(session)
    with read_only(engine) as session:
        assert {c for c, _ in click_rollup.cohort_snapshot(session)} == {"segment:1"}
    _check(engine)


def test_a_new_code_of_a_member_counts_its_clicks(
    engine: Engine,
    codes: list[int],  # noqa: F811 - the fixture
) -> None:
    """A code issued to a stored member: nothing rolled up moves then; its clicks count."""
    with unit_of_work(engine) as session:
        code = programs.code_for(session, program_slug="q", customer_external_id="a0")
        new = session.scalar(select(ReferralCode.id).where(ReferralCode.code == code.code))
    _tag(engine, {"a0": ("vip",)})
    cohorts.settle(engine)
    _add_clicks(engine, [new, codes[0]], random.Random(2), 30)
    assert _check(engine) > 0
    click_rollup.catch_up(engine)
    _check(engine)


def test_rollups_racing_the_worker_and_taggers(
    engine: Engine,
    codes: list[int],  # noqa: F811 - the fixture
) -> None:
    """Clicks arrive and are rolled up while advocates are tagged in and out of the segments
    and the worker moves them: each click is counted once in the kept rows (PostgreSQL: the
    roll-up and the moves queue on the watermark row)."""
    rng = random.Random(13)
    with unit_of_work(engine) as session:
        segments.create_segment(session, name="Gold", slug="gold", filters={"tags_any": ["gold"]})
    stop = threading.Event()
    errors: list[BaseException] = []

    def guarded(work: Any) -> Any:
        def run() -> None:
            try:
                work()
            except BaseException as error:  # noqa: BLE001 - reported by the test
                errors.append(error)

        return run

    def click() -> None:
        try:
            for _ in range(12):
                _add_clicks(engine, codes, rng, 15)
        finally:
            stop.set()

    def roll() -> None:
        while not stop.is_set():
            click_rollup.catch_up(engine, limit=11)

    def tag() -> None:
        for n in range(8):
            _tag(engine, {"a1": ("vip",) * (n % 2), "a2": ("gold",) * ((n + 1) % 2),
                          "a3": ("vip", "gold")[n % 2 :]})  # fmt: skip

    def judge() -> None:
        while not stop.is_set():
            cohorts.settle(engine)

    threads = [threading.Thread(target=guarded(w)) for w in (click, roll, roll, tag, judge)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors
    _check(engine)  # the dirty window, and an un-rolled tail maybe
    cohorts.settle(engine)
    click_rollup.catch_up(engine)
    assert _check(engine) > 0
    with read_only(engine) as session:
        assert session.scalar(select(func.sum(ClickDayCount.clicks))) == 180
