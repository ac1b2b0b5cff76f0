"""NPS figures over any period and survey.

Whole UTC days are read from response_day_counts (a year is a few thousand rows, whatever the
number of responses); the partial days at either end of a period that does not start or end
at midnight UTC are counted from the responses themselves.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from advocado.domain.nps import NpsFigures
from advocado.store.models import Response, ResponseDayCount


def nps_figures(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    survey: str | None = None,
) -> NpsFigures:
    """Figures for responses submitted in [start, end) (either end open), one survey or all."""
    counts: Counter[int] = Counter()
    first_day = _next_midnight(start) if start else None
    end_day = end.astimezone(UTC).date() if end else None  # whole days end before this one
    if first_day is not None and end_day is not None and first_day >= end_day:
        counts.update(_raw_counts(session, start, end, survey))  # under a day: no whole day
        return NpsFigures.from_score_counts(counts)
    counts.update(_day_counts(session, first_day, end_day, survey))
    if start is not None and first_day is not None:
        edge = datetime.combine(first_day, time(), UTC)
        if start < edge:
            counts.update(_raw_counts(session, start, edge, survey))
    if end is not None and end_day is not None:
        edge = datetime.combine(end_day, time(), UTC)
        if edge < end:
            counts.update(_raw_counts(session, edge, end, survey))
    return NpsFigures.from_score_counts(counts)


def day_bounds(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """Whole UTC days from `first` to `last`, both included: [first 00:00, day after last 00:00).
    How `advocado nps --from/--to` and the API's ?from=&to= read a period."""
    start = datetime.combine(first, time(), UTC) if first else None
    end = datetime.combine(last + timedelta(days=1), time(), UTC) if last else None
    return start, end


def _next_midnight(moment: datetime) -> date:
    moment = moment.astimezone(UTC)
    day = moment.date()
    return day if moment == datetime.combine(day, time(), UTC) else day + timedelta(days=1)


def _day_counts(
    session: Session, first: date | None, end: date | None, survey: str | None
) -> dict[int, int]:
    table = ResponseDayCount
    query = select(table.score, func.sum(table.responses)).group_by(table.score)
    return _scores(session, query, table.day, first, end, table.survey, survey)


def _raw_counts(
    session: Session, start: datetime | None, end: datetime | None, survey: str | None
) -> dict[int, int]:
    query = select(Response.score, func.count()).group_by(Response.score)
    return _scores(session, query, Response.submitted_at, start, end, Response.survey, survey)


def _scores(session, query, when, start, end, survey_column, survey) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """Counts by score from `query`, within [start, end) on `when`, for one survey or all."""
    if start is not None:
        query = query.where(when >= start)
    if end is not None:
        query = query.where(when < end)
    if survey is not None:
        query = query.where(survey_column == survey)
    return {score: int(n) for score, n in session.execute(query)}
