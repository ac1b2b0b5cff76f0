"""What the console's first page shows: NPS, counts, and the latest responses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain.nps import NpsCategory, NpsFigures, category
from advocado.services.nps import nps_figures
from advocado.store.models import Customer, Order, Response

RECENT_DAYS = 90
LATEST = 20


@dataclass(frozen=True)
class LatestResponse:
    submitted_at: datetime
    customer_name: str | None  # None: anonymous
    score: int
    category: NpsCategory
    survey: str | None
    comment: str | None


@dataclass(frozen=True)
class Overview:
    nps_all_time: NpsFigures
    nps_recent: NpsFigures
    recent_days: int
    customers: int
    orders: int
    responses: int
    latest: list[LatestResponse]


def console_overview(session: Session, *, now: datetime | None = None) -> Overview:
    now = now or clock.now()
    latest_rows = session.execute(
        select(
            Response.submitted_at,
            Customer.name,
            Customer.external_id,
            Response.score,
            Response.survey,
            Response.comment,
        )
        .outerjoin(Customer, Customer.id == Response.customer_id)
        .order_by(Response.submitted_at.desc(), Response.id.desc())
        .limit(LATEST)
    )
    latest = [
        LatestResponse(
            submitted_at=row.submitted_at,
            # A known customer without a name is shown by their id, never as "anonymous".
            customer_name=(row.name or row.external_id) if row.external_id else None,
            score=row.score,
            category=category(row.score),
            survey=row.survey,
            comment=row.comment,
        )
        for row in latest_rows
    ]
    return Overview(
        nps_all_time=nps_figures(session),
        nps_recent=nps_figures(session, start=now - timedelta(days=RECENT_DAYS)),
        recent_days=RECENT_DAYS,
        customers=session.scalar(select(func.count()).select_from(Customer)) or 0,
        orders=session.scalar(select(func.count()).select_from(Order)) or 0,
        responses=session.scalar(select(func.count()).select_from(Response)) or 0,
        latest=latest,
    )
