"""NPS figures over any period and survey."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from advocado.domain.nps import NpsFigures
from advocado.store.models import Response


def nps_figures(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    survey: str | None = None,
) -> NpsFigures:
    """Counts by score in [start, end) (either open), for one survey or all."""
    query = select(Response.score, func.count()).group_by(Response.score)
    if start is not None:
        query = query.where(Response.submitted_at >= start)
    if end is not None:
        query = query.where(Response.submitted_at < end)
    if survey is not None:
        query = query.where(Response.survey == survey)
    counts = {score: count for score, count in session.execute(query)}
    return NpsFigures.from_score_counts(counts)


def day_bounds(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """Whole UTC days: [first 00:00, the day after last 00:00), so `last` is included."""
    start = datetime.combine(first, time(), UTC) if first else None
    end = datetime.combine(last + timedelta(days=1), time(), UTC) if last else None
    return start, end
