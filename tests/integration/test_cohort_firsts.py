"""The K-factor under a segment (services.cohort_firsts): the kept copy of advocate_firsts per
segment cohort equals the copy `rebuild` makes from advocate_firsts and the stored members
after every kind of write (codes made, first referrals, rejected referrals, advocates entering
and leaving segments through the worker, a segment saved, edited and deleted, writers racing
the worker); and the K-factor figure and its drill page under a segment, all time and a
period, equal the ones computed from the rows, in the dirty window before the worker runs
and after. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import test_cohort_referrals
from sqlalchemy import Engine, func, select
from test_cohort_referrals import _save_segments, _tag
from test_referrals import T0, setup, signup

from advocado import clock
from advocado.domain.dashboard import Filters
from advocado.services import (
    cohort_firsts,
    cohorts,
    customer_aggregates,
    dashboard,
    programs,
    segments,
)
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import CohortDirty

PERIOD = (T0.date() - timedelta(days=1), T0.date() + timedelta(days=3))


def _k_factor(engine: Engine, f: Filters, limit: int | None = None) -> dict[str, Any]:
    with read_only(engine) as session:
        return {
            "figure": dashboard.k_factor(session, f).as_dict(),
            "page": dashboard.drill_k_factor(session, f, {}, limit).rows,
        }


def _check(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept == rebuilt, and under every segment (all time, a period) the K-factor and its
    drill pages from the copy equal the ones from the rows."""
    with unit_of_work(engine) as session:
        kept = cohort_firsts.snapshot(session)
    with unit_of_work(engine) as session:
        cohort_firsts.rebuild(session)
    with unit_of_work(engine) as session:
        rebuilt = cohort_firsts.snapshot(session)
    assert kept == rebuilt
    with read_only(engine) as session:
        slugs = list(session.scalars(select(segments.Segment.slug)))
    for slug in slugs:
        for start, end in ((None, None), PERIOD):
            f = Filters(start=start, end=end, segment=slug)
            with read_only(engine) as session:  # the copy answers it
                assert dashboard._segment_sums(dashboard._scope(session, f)) is not None
            copied = _k_factor(engine, f)
            with monkeypatch.context() as patched:
                patched.setattr(dashboard, "_segment_sums", lambda scope: None)
                from_rows = _k_factor(engine, f)
            assert copied == from_rows, (slug, start)
            everyone = from_rows["page"]  # the full list; a page is its head
            for limit in (1, 2, dashboard.DRILL_LIMIT):
                assert _k_factor(engine, f, limit)["page"] == everyone[:limit], (slug, limit)


def _settle_and_check(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(engine, monkeypatch)  # the dirty window
    cohorts.settle(engine)
    with read_only(engine) as session:
        assert session.scalar(select(func.count()).select_from(CohortDirty)) == 0
    _check(engine, monkeypatch)


def _code(engine: Engine, advocate: str) -> str:
    with unit_of_work(engine) as session:
        return programs.code_for(
            session, program_slug="friends", customer_external_id=advocate
        ).code


def _advocates(engine: Engine) -> dict[str, str]:
    """Five advocates, codes a day apart, first referrals 1..5 days after: gaps to take a
    median of (and two friends of adv-3)."""
    codes = {"adv-1": setup(engine)}
    for n in range(2, 6):
        clock.set_now(T0 - timedelta(days=n))
        codes[f"adv-{n}"] = _code(engine, f"adv-{n}")
    for n, (advocate, code) in enumerate(sorted(codes.items()), start=1):
        when = T0 + timedelta(hours=6 * n)
        clock.set_now(when)
        signup(engine, f"f-{advocate}", code, occurred_at=when)
    signup(engine, "f-adv-3b", codes["adv-3"], occurred_at=T0 - timedelta(days=1))  # earlier
    return codes


SCENARIOS: list[Callable[..., None]] = test_cohort_referrals.SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS[:6], ids=lambda s: s.__name__[5:45])
def test_referral_scenarios_keep_the_copy(
    engine: Engine, scenario: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments saved first (empty: every advocate dirty into them), judged by the worker
    after; then an advocate enters vip."""
    _save_segments(engine)
    scenario(engine)
    _settle_and_check(engine, monkeypatch)
    _tag(engine, {"adv-1": ("vip",)})
    _settle_and_check(engine, monkeypatch)


def test_codes_referrals_and_moves_keep_the_copy(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codes made and first referrals written while the advocates are stored members, in
    the dirty window (tagged in, out, both), after the worker; a rejected self-referral;
    a segment edited and deleted."""
    _save_segments(engine)
    codes = _advocates(engine)
    _settle_and_check(engine, monkeypatch)
    _tag(engine, {"adv-2": ("vip",), "adv-4": ("vip",), "adv-5": ("vip",)})
    _check(engine, monkeypatch)  # dirty: into vip
    cohorts.settle(engine)
    with read_only(engine) as session:
        vip = dashboard.k_factor(session, Filters(segment="vip")).as_dict()
    assert vip["summary"]["time_to_first"]["advocates"] == 3
    _tag(engine, {"adv-4": (), "adv-1": ("vip",)})  # one leaves, one enters: both dirty
    _check(engine, monkeypatch)
    clock.set_now(T0 + timedelta(days=2))
    signup(engine, "f-adv-5b", codes["adv-5"], occurred_at=T0 - timedelta(days=9))  # earlier
    _check(engine, monkeypatch)
    _code(engine, "adv-6")  # a new code of a dirty customer
    _settle_and_check(engine, monkeypatch)
    clock.set_now(T0 + timedelta(days=2, hours=1))
    _code(engine, "adv-7")  # a code, then its first referral, of stored members (everyone)
    cohorts.settle(engine)
    signup(engine, "f-adv-7", _code(engine, "adv-7"), occurred_at=T0 + timedelta(days=2))
    signup(engine, "adv-7", codes["adv-2"], occurred_at=T0 + timedelta(days=2))  # rejected
    _settle_and_check(engine, monkeypatch)
    with unit_of_work(engine) as session:
        plain = segments.segment_filter(session, slug="plain")[0].id
        segments.update_segment(session, slug="vip", name="vip", filters={"consent": True})
        segments.delete_segment(session, slug="plain")
    _settle_and_check(engine, monkeypatch)
    with read_only(engine) as session:
        kept = cohort_firsts.snapshot(session)
    assert kept and not [k for k in kept if k[0] == cohorts.segment_cohort(plain)]
    _tag(engine, {"adv-2": ()})  # leaves vip: dirty, then every membership judged at once
    with unit_of_work(engine) as session, customer_aggregates.insights_changing(session, None):
        pass  # every customer's insights recomputed
    _check(engine, monkeypatch)


def test_racing_writers_and_worker_keep_the_copy(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codes and first referrals of advocates while they are tagged in and out of a segment
    and the worker moves them: the copy still equals the rebuilt one (PostgreSQL: the
    writers hold the advocate's or its friend's lock, the worker both)."""
    codes = {"adv-1": setup(engine)}
    codes["adv-2"] = _code(engine, "adv-2")
    _save_segments(engine)
    clock.set_now(T0 + timedelta(days=1))
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(5):
                advocate = f"adv-{(worker + n) % 2 + 1}"
                when = T0 - timedelta(hours=worker * 5 + n)  # ever earlier: firsts move
                signup(engine, f"r{worker}-{n}", codes[advocate], occurred_at=when)
                _code(engine, f"new-{worker}-{n}")
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    def tag() -> None:
        try:
            for n in range(6):
                _tag(engine, {"adv-1": ("vip",) * (n % 2), "adv-2": ("vip",) * ((n + 1) % 2)})
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    def judge() -> None:
        try:
            for _ in range(10):
                cohorts.settle(engine)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(2)]
    threads += [threading.Thread(target=tag), threading.Thread(target=judge)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    _settle_and_check(engine, monkeypatch)
