"""NPS figures over any period and survey."""

from __future__ import annotations

from datetime import datetime

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
