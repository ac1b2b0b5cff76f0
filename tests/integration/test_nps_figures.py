"""NPS read from the daily counts must always equal NPS counted from the responses."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from advocado.domain.nps import NpsFigures
from advocado.domain.records import ResponseRecord
from advocado.services.nps import nps_figures
from advocado.services.records import save_responses
from advocado.store.db import unit_of_work
from advocado.store.models import Response

BASE = datetime(2026, 3, 1, tzinfo=UTC)


def counted_from_rows(session, start=None, end=None, survey=None) -> NpsFigures:  # type: ignore[no-untyped-def]
    query = select(Response.score, func.count()).group_by(Response.score)
    if start:
        query = query.where(Response.submitted_at >= start)
    if end:
        query = query.where(Response.submitted_at < end)
    if survey:
        query = query.where(Response.survey == survey)
    return NpsFigures.from_score_counts({score: n for score, n in session.execute(query)})


def test_daily_counts_follow_creates_and_updates_that_move_a_response(engine) -> None:
    rng = random.Random(5)
    records = {
        f"r{i}": ResponseRecord(
            external_id=f"r{i}",
            score=rng.randrange(11),
            survey=rng.choice(["a", "b", None]),
            submitted_at=BASE + timedelta(minutes=rng.randrange(60 * 24 * 20)),
        )  # fmt: skip
        for i in range(400)
    }
    with unit_of_work(engine) as session:
        save_responses(session, list(records.values()))
    # Later updates change score, survey and day of some responses; some repeat themselves.
    for _ in range(3):
        changed = []
        for key in rng.sample(sorted(records), 120):
            old = records[key]
            records[key] = ResponseRecord(
                external_id=key, score=rng.randrange(11), survey=rng.choice(["a", "b", None]),
                submitted_at=old.submitted_at + timedelta(hours=rng.choice([0, 0, 5, -30])),
                comment="later",
            )  # fmt: skip
            changed.append(records[key])
        with unit_of_work(engine) as session:
            save_responses(session, changed + changed[:10])

    periods = [
        (None, None),
        (BASE + timedelta(days=3), BASE + timedelta(days=9)),  # whole days
        (BASE + timedelta(days=2, hours=7), BASE + timedelta(days=11, hours=15, minutes=3)),
        (BASE + timedelta(days=4, hours=1), BASE + timedelta(days=4, hours=20)),  # within a day
        (BASE + timedelta(days=5, hours=3), None),
        (None, BASE + timedelta(days=6, minutes=1)),
    ]
    with unit_of_work(engine) as session:
        for start, end in periods:
            for survey in (None, "a", "b"):
                expected = counted_from_rows(session, start, end, survey)
                assert nps_figures(session, start=start, end=end, survey=survey) == expected, (
                    start, end, survey,
                )  # fmt: skip
        assert nps_figures(session).responses == 400


def test_nps_by_period_and_survey(engine) -> None:
    scores = [(10, "a", 0), (9, "a", 1), (3, "a", 1), (8, "b", 2), (0, "b", 40)]
    with unit_of_work(engine) as session:
        save_responses(
            session,
            [ResponseRecord(external_id=f"x{i}", score=score, survey=survey,
                            submitted_at=BASE + timedelta(days=day))
             for i, (score, survey, day) in enumerate(scores)],
        )  # fmt: skip
        march_first_days = nps_figures(session, start=BASE, end=BASE + timedelta(days=3))
        assert march_first_days.as_dict() == {
            "promoters": 2, "passives": 1, "detractors": 1, "responses": 4, "nps": 25.0,
        }  # fmt: skip
        assert nps_figures(session, survey="b").as_dict()["nps"] == -50.0
        assert nps_figures(session, start=BASE + timedelta(days=100)).nps is None


def test_racing_writers_of_the_same_responses_keep_counts_exact(engine) -> None:
    """Several API workers or imports saving the same ids at once: each id is created once
    and the daily counts still equal the rows."""
    import threading

    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        batch = [
            ResponseRecord(external_id=f"race{i}", score=rng.randrange(11),
                           submitted_at=BASE + timedelta(hours=rng.randrange(200)))
            for i in range(300)
        ]  # fmt: skip
        try:
            barrier.wait()
            with unit_of_work(engine) as session:
                save_responses(session, batch)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with unit_of_work(engine) as session:
        assert session.scalar(select(func.count()).select_from(Response)) == 300
        assert nps_figures(session) == counted_from_rows(session)
        day = BASE + timedelta(days=3)
        assert nps_figures(session, start=day, end=day + timedelta(days=2)) == counted_from_rows(
            session, day, day + timedelta(days=2)
        )
