"""The referral figures per segment cohort (services.cohort_referrals): the kept rows equal
the rows `rebuild` computes from the referrals, orders, rewards and the stored members after
every kind of write (every referral scenario, order imports, review decisions, advocates
entering and leaving segments through the worker, a segment saved and edited); and the
figures under a segment, all time and a period, equal the figures computed from the rows,
in the dirty window before the worker runs and after. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import test_referral_aggregates
from sqlalchemy import Engine, func, select
from test_referral_ops import refund
from test_referrals import T0, order, setup, signup

from advocado import clock
from advocado.domain.dashboard import Filters
from advocado.domain.records import CustomerRecord, OrderRecord
from advocado.services import (
    cohort_referrals,
    cohorts,
    dashboard,
    programs,
    records,
    referrals,
    segments,
)
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import CohortDirty, Referral

SEGMENTS = {
    "everyone": {},
    "vip": {"tags_any": ["vip"]},
    "plain": {"consent": True},
}


def _save_segments(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        for slug, filters in SEGMENTS.items():
            segments.create_segment(session, name=slug, slug=slug, filters=filters)


def _figures(engine: Engine, f: Filters) -> dict[str, Any]:
    with read_only(engine) as session:
        return test_referral_aggregates._figures(session, f)


def _check(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Maintained == rebuilt (from the stored members), and the figures under every segment,
    all time and a period, equal the figures from the rows."""
    with unit_of_work(engine) as session:
        kept = cohort_referrals.snapshot(session)
    with unit_of_work(engine) as session:
        cohort_referrals.rebuild(session)
    with unit_of_work(engine) as session:
        rebuilt = cohort_referrals.snapshot(session)
    differs = {
        (name, key): (kept[name].get(key), rebuilt[name].get(key))
        for name in rebuilt
        for key in set(kept[name]) | set(rebuilt[name])
        if kept[name].get(key) != rebuilt[name].get(key)
    }
    assert not differs  # (table, key): (kept, rebuilt)
    with read_only(engine) as session:
        slugs = list(session.scalars(select(segments.Segment.slug)))
    period = (T0.date() - timedelta(days=60), T0.date() + timedelta(days=5))
    for slug in slugs:
        for start, end in ((None, None), period):
            f = Filters(start=start, end=end, segment=slug)
            with read_only(engine) as session:  # the per-cohort rows answer it
                assert dashboard._segment_sums(dashboard._scope(session, f)) is not None
            summed = _figures(engine, f)
            with monkeypatch.context() as patched:
                patched.setattr(dashboard, "_segment_sums", lambda scope: None)
                from_rows = _figures(engine, f)
            assert summed == from_rows, (slug, start)


def _settle_and_check(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(engine, monkeypatch)  # the dirty window
    cohorts.settle(engine)
    with read_only(engine) as session:
        assert session.scalar(select(func.count()).select_from(CohortDirty)) == 0
    _check(engine, monkeypatch)


def _tag(engine: Engine, tags: dict[str, tuple[str, ...]]) -> None:
    with unit_of_work(engine) as session:
        records.save_customers(session, [CustomerRecord(k, tags=v) for k, v in tags.items()])


SCENARIOS: list[Callable[..., None]] = test_referral_aggregates.SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__[5:45])
def test_every_referral_scenario_keeps_the_segment_figures(
    engine: Engine, scenario: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments saved first (empty), the scenario's customers judged by the worker after."""
    _save_segments(engine)
    scenario(engine)
    _settle_and_check(engine, monkeypatch)
    _tag(engine, {"adv-1": ("vip",)})  # an advocate enters vip
    _settle_and_check(engine, monkeypatch)
    with read_only(engine) as session:
        kept = cohort_referrals.snapshot(session)
        made = session.scalar(select(func.count()).select_from(Referral))
    assert bool(kept["cohort_referral_day_counts"]) == bool(made)


def test_writes_after_the_members_are_judged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tally hook with stored members: signups, orders (events and imports: moved to a
    stranger, refunded), refunds, review decisions; advocates moving in and out between;
    a segment edited."""
    test_referral_aggregates.test_order_writes_and_review_decisions_keep_the_aggregates(engine)
    _save_segments(engine)
    _settle_and_check(engine, monkeypatch)
    with unit_of_work(engine) as session:
        session.flush()
        code = programs.code_for(session, program_slug="friends", customer_external_id="adv-2")
    _tag(engine, {"adv-2": ("vip",)})
    cohorts.settle(engine)
    clock.set_now(T0 + timedelta(days=3))
    signup(engine, "h-1", code.code, event_id="h-1", occurred_at=T0 + timedelta(days=3))
    order(engine, "h-1", "oh-1", 21000, occurred_at=T0 + timedelta(days=3, hours=1))
    _check(engine, monkeypatch)
    refund(engine, "h-1", "oh-1", None, 1, occurred_at=T0 + timedelta(days=3, hours=2))
    _check(engine, monkeypatch)
    with unit_of_work(engine) as session:
        records.save_orders(session, [
            OrderRecord("oh-2", "h-1", 5000, "CNY", T0 + timedelta(days=3, hours=3)),
            OrderRecord("oh-3", "h-1", 7000, "CNY", T0 + timedelta(days=3, hours=4)),
        ])  # fmt: skip
    _check(engine, monkeypatch)
    with unit_of_work(engine) as session:
        records.save_customers(session, [CustomerRecord("stranger-9")])
        records.save_orders(session, [
            OrderRecord("oh-3", "stranger-9", 7000, "CNY", T0 + timedelta(days=3, hours=4)),
        ])  # fmt: skip
    _settle_and_check(engine, monkeypatch)
    _tag(engine, {"adv-2": (), "adv-1": ("vip",)})  # one leaves vip, one enters
    _settle_and_check(engine, monkeypatch)
    with read_only(engine) as session:
        held = session.scalars(select(Referral.id).where(Referral.status == "review")).first()
    if held is not None:
        referrals.decide(engine, referral_id=held, approve=False)
        _settle_and_check(engine, monkeypatch)
    with unit_of_work(engine) as session:
        segments.update_segment(session, slug="vip", name="vip", filters={"tags_all": ["vip"]})
        segments.delete_segment(session, slug="plain")
    _settle_and_check(engine, monkeypatch)
    with read_only(engine) as session:
        vip = dashboard.referral_funnel(session, Filters(segment="vip")).as_dict()
    assert vip["rows"][2]["count"] > 0  # adv-1's signups


def test_racing_writers_taggers_and_worker(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Signups and orders of friends of two advocates while the advocates are tagged in and
    out of a segment and the worker moves them: the kept rows still equal the rebuilt ones
    (PostgreSQL: the writers lock the friends' advocates, the worker the customers it moves)."""
    code = setup(engine)
    with unit_of_work(engine) as session:
        code2 = programs.code_for(session, program_slug="friends", customer_external_id="adv-2")
        codes = [code, code2.code]
    _save_segments(engine)
    clock.set_now(T0 + timedelta(days=1))
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(5):
                friend = f"r{worker}-{n}"
                when = T0 + timedelta(hours=worker * 5 + n)
                signup(engine, friend, codes[(worker + n) % 2], occurred_at=when)
                order(engine, friend, f"o-{friend}", 1000 * (n + 1),
                      occurred_at=when + timedelta(minutes=30))  # fmt: skip
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
