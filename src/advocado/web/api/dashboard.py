"""REST API v1: the dashboard's figures and the lists behind them, as JSON or CSV: the same
service functions as the console's pages and exports (services.dashboard).

Every figure takes the dashboard's filter: from, to (whole UTC days, both included),
segment, program (slugs) and bucket (week or month). A bad one is a 422 naming it."""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations.

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from advocado.domain.dashboard import parse_filters
from advocado.services import dashboard
from advocado.store.db import read_only
from advocado.web.api import schemas
from advocado.web.api.routes import PREFIX, _ApiRoute, _json, api_key

FIGURES = tuple(dashboard.PANELS)
DRILL_KEYS = (
    "period",
    "survey",
    "category",
    "dimension",
    "value",
    "stage",
    "group",
    "plan",
    "goal",
    *("level", "playbook", "version", "step", "outcome", "reason", "challenge", "site"),
)

router = APIRouter(
    prefix=f"{PREFIX}/dashboard",
    tags=["Dashboard"],
    route_class=_ApiRoute,
    dependencies=[Depends(api_key)],
    responses={
        401: {"description": "No valid API key."},
        403: {"description": "The key lacks the scope."},
        404: {"description": "No such figure."},
        422: {"model": schemas.ValidationProblem, "description": "Invalid filter."},
    },
)


def _common(
    from_: str | None = Query(None, alias="from", description="First day, YYYY-MM-DD (UTC)."),
    to: str | None = Query(None, description="Last day, included."),
    segment: str | None = Query(None, description="A saved segment's slug."),
    program: str | None = Query(None, description="A referral program's slug."),
    bucket: Literal["week", "month"] = Query("week"),
    format: Literal["json", "csv"] = Query("json", description="csv: the rows as CSV."),
) -> str:
    return format


def _answer(found: dashboard.Panel, format: str, filename: str) -> Response:
    if format == "csv":
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        return StreamingResponse(dashboard.csv_text(found), headers=headers,
                                 media_type="text/csv; charset=utf-8")  # fmt: skip
    return _json(200, found.as_dict())


@router.get("", summary="The figures the dashboard offers")
def figures() -> Response:
    return _json(200, {"figures": list(FIGURES)})


@router.get("/{figure}", summary="One figure: rows and headline figures")
def figure(request: Request, figure: str, format: str = Depends(_common)) -> Response:
    if figure not in dashboard.PANELS:
        return _json(404, {"detail": f"no figure {figure!r}; one of {', '.join(FIGURES)}"})
    f = parse_filters(request.query_params)
    with read_only(request.app.state.engine) as session:
        found = dashboard.panel(session, figure, f)
    return _answer(found, format, f"{figure}.csv")


@router.get("/{figure}/drill", summary="The customers or events behind a figure")
def drill(
    request: Request,
    figure: str,
    format: str = Depends(_common),
    limit: int | None = Query(None, ge=1, le=100_000, description="At most this many rows."),
) -> Response:
    if figure not in dashboard.DRILLS:
        return _json(404, {"detail": f"no figure {figure!r}; one of {', '.join(FIGURES)}"})
    f = parse_filters(request.query_params)
    key = {k: request.query_params[k] for k in DRILL_KEYS if k in request.query_params}
    with read_only(request.app.state.engine) as session:
        found = dashboard.drill(session, figure, f, key, limit=limit)
    return _answer(found, format, f"{figure}-detail.csv")
