from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from advocado import clock
from advocado.domain.records import CustomerRecord, OrderRecord, ResponseRecord
from advocado.services.overview import console_overview
from advocado.services.records import save_customers, save_orders, save_responses
from advocado.store.db import unit_of_work

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_overview_figures(engine: Engine) -> None:
    clock.set_now(NOW)
    old, recent = NOW - timedelta(days=200), NOW - timedelta(days=10)
    with unit_of_work(engine) as session:
        save_customers(session, [CustomerRecord("c1", name="陈雅婷"), CustomerRecord("c2")])
        save_orders(session, [OrderRecord("o1", "c1", 59900, "CNY", old)])
        # Long ago: 3 detractors. Lately: 2 promoters, 1 passive.
        old_scores = [ResponseRecord(f"old{i}", 3, old + timedelta(minutes=i)) for i in range(3)]
        save_responses(session, [
            *old_scores,
            ResponseRecord("r1", 10, recent, "c1", "爱了", "post-purchase"),
            ResponseRecord("r2", 9, recent + timedelta(hours=1), None, None, "web"),
            ResponseRecord("r3", 7, recent + timedelta(hours=2), "c2", "ok", "post-purchase"),
        ])  # fmt: skip
    with unit_of_work(engine) as session:
        overview = console_overview(session)
    assert (overview.customers, overview.orders, overview.responses) == (2, 1, 6)
    all_time, last_90 = overview.nps_all_time, overview.nps_recent
    assert (all_time.promoters, all_time.passives, all_time.detractors) == (2, 1, 3)
    assert all_time.nps == pytest.approx(-100 / 6)
    assert (last_90.promoters, last_90.passives, last_90.detractors) == (2, 1, 0)
    assert last_90.nps == pytest.approx(200 / 3)
    newest = overview.latest[0]
    assert (newest.score, newest.category, newest.customer_name) == (7, "passive", "c2")
    assert overview.latest[1].customer_name is None  # anonymous
    assert (overview.latest[2].customer_name, overview.latest[2].comment) == ("陈雅婷", "爱了")


def test_overview_shows_only_the_latest_twenty(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        start = NOW - timedelta(days=1)
        save_responses(session, [
            ResponseRecord(f"r{i}", i % 11, start + timedelta(minutes=i)) for i in range(25)
        ])  # fmt: skip
    with unit_of_work(engine) as session:
        overview = console_overview(session, now=NOW)
    assert len(overview.latest) == 20
    assert [r.score for r in overview.latest[:3]] == [24 % 11, 23 % 11, 22 % 11]


def test_empty_database_has_no_nps(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        overview = console_overview(session)
    assert overview.nps_all_time.nps is None and overview.latest == []
