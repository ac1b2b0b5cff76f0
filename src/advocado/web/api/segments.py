"""REST API v1: saved, dynamic segments of customers, their members and a CSV export.

Filters are described in advocado.domain.segments; an invalid one is a 422 naming it, e.g.
`filters.score_min`. Same keys and scopes as the rest of the API (GET read; POST, PUT and
DELETE write)."""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations.

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from advocado.domain import segments as rules
from advocado.domain.records import FieldError
from advocado.services import audit, segments
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import ApiKey
from advocado.web.api import schemas
from advocado.web.api.routes import PREFIX, _ApiRoute, _cursor, _json, _write, api_key

FILTERS_NOTE = (
    "Filters, all optional and all must hold: nps_category, score_min, score_max, persona, "
    "survey, submitted_from, submitted_to (response filters: judged on each customer's latest "
    "response in that survey and period), high_influence, influence_min, value_tier, "
    "lifecycle_stage, tags_any, tags_all, consent."
)

router = APIRouter(
    prefix=f"{PREFIX}/segments",
    tags=["Segments"],
    route_class=_ApiRoute,
    dependencies=[Depends(api_key)],
    responses={
        401: {"description": "No valid API key."},
        403: {"description": "The key lacks the scope."},
        404: {"description": "No such segment."},
        422: {"model": schemas.ValidationProblem, "description": "Invalid input; nothing saved."},
    },
)


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Shown in the console, e.g. 'Emotional promoters, Q1'.")
    slug: str | None = Field(
        None, description="URL name (a-z, 0-9, '-'); made from the name when left out."
    )
    filters: dict[str, Any] = Field(default_factory=dict, description=FILTERS_NOTE)


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    filters: dict[str, Any] = Field(default_factory=dict, description=FILTERS_NOTE)


class SegmentOut(BaseModel):
    slug: str
    name: str
    filters: dict[str, Any]
    members: int = Field(description="Live count of customers in the segment.")
    created_at: str
    updated_at: str


class SegmentList(BaseModel):
    items: list[SegmentOut]


class MemberPage(BaseModel):
    items: list[dict[str, Any]]
    next: str | None


class PreviewOut(BaseModel):
    filters: dict[str, Any]
    members: int


def _member(row: dict[str, Any]) -> dict[str, Any]:
    shown = {key: value for key, value in row.items() if key not in ("id", "response_id")}
    if shown["response_submitted_at"] is not None:
        shown["response_submitted_at"] = shown["response_submitted_at"].isoformat()
    return shown


def _conflict(error: segments.SegmentExists) -> Response:
    return _json(409, {"detail": [{"field": "slug", "reason": error.reason}]})


def _missing(error: segments.SegmentNotFound) -> Response:
    return _json(404, {"detail": str(error)})


@router.get("", response_model=SegmentList, summary="All saved segments with live counts")
def list_segments(request: Request) -> Response:
    with read_only(request.app.state.engine) as session:
        found = segments.list_segments(session)
    return _json(200, {"items": [view.as_dict() for view in found]})


PREVIEW_NOTE = (
    '`filters` is the filters object as JSON, e.g. `{"nps_category": ["promoter"], '
    '"persona": ["emotional"]}`. ' + FILTERS_NOTE
)


@router.get("/preview", response_model=PreviewOut, summary="Count an unsaved filter",
            description=PREVIEW_NOTE)  # fmt: skip
def preview(
    request: Request, filters: str = Query("{}", description="The filters as JSON.")
) -> Response:
    try:
        raw = json.loads(filters)
    except json.JSONDecodeError as error:
        raise FieldError("filters", f"invalid JSON: {error}") from None
    spec = rules.parse_filters(raw)
    with read_only(request.app.state.engine) as session:
        members = segments.count_members(session, spec)
    return _json(200, {"filters": spec.as_dict(), "members": members})


@router.post("", response_model=SegmentOut, status_code=201, summary="Save a segment",
             responses={409: {"description": "The slug is taken."}})  # fmt: skip
def create_segment(request: Request, body: SegmentIn, key: ApiKey = Depends(api_key)) -> Response:
    payload = body.model_dump()

    def action(session: Session) -> tuple[int, Any]:
        view = segments.create_segment(
            session,
            name=body.name,
            filters=body.filters,
            slug=body.slug,
            actor=audit.api_actor(key.prefix),
        )
        return 201, view.as_dict()

    try:
        return _write(request, key, payload, action)
    except segments.SegmentExists as error:
        return _conflict(error)


@router.get("/{slug}", response_model=SegmentOut, summary="One segment with its live count")
def get_segment(request: Request, slug: str) -> Response:
    try:
        with read_only(request.app.state.engine) as session:
            view = segments.get_segment(session, slug=slug)
    except segments.SegmentNotFound as error:
        return _missing(error)
    return _json(200, view.as_dict())


@router.put("/{slug}", response_model=SegmentOut, summary="Change a segment's name and filters")
def update_segment(
    request: Request, slug: str, body: SegmentUpdate, key: ApiKey = Depends(api_key)
) -> Response:
    def action(session: Session) -> tuple[int, Any]:
        view = segments.update_segment(
            session,
            slug=slug,
            name=body.name,
            filters=body.filters,
            actor=audit.api_actor(key.prefix),
        )
        return 200, view.as_dict()

    try:
        return _write(request, key, body.model_dump(), action)
    except segments.SegmentNotFound as error:
        return _missing(error)


@router.delete("/{slug}", status_code=204, summary="Delete a segment (not its customers)")
def delete_segment(request: Request, slug: str, key: ApiKey = Depends(api_key)) -> Response:
    try:
        with unit_of_work(request.app.state.engine) as session:
            segments.delete_segment(session, slug=slug, actor=audit.api_actor(key.prefix))
    except segments.SegmentNotFound as error:
        return _missing(error)
    return Response(status_code=204)


@router.get("/{slug}/members", response_model=MemberPage, summary="Members, page by page",
            description="In customer order; pass `next` as `after` for the following page. "
            "Each member carries their labels and their latest response in scope.")  # fmt: skip
def members(
    request: Request,
    slug: str,
    limit: int = Query(100, ge=1, le=1000),
    after: str | None = Query(None, description="The `next` of the previous page."),
) -> Response:
    try:
        with read_only(request.app.state.engine) as session:
            _, spec = segments.segment_filter(session, slug=slug)
            rows, following = segments.member_page(session, spec, limit=limit, after=_cursor(after))
    except segments.SegmentNotFound as error:
        return _missing(error)
    items = [_member(row) for row in rows]
    return _json(200, {"items": items, "next": None if following is None else str(following)})


@router.get("/{slug}/export.csv", summary="All members as CSV (UTF-8 with BOM)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})  # fmt: skip
def export(request: Request, slug: str) -> Response:
    engine = request.app.state.engine
    try:
        with read_only(engine) as session:
            segments.segment_filter(session, slug=slug)
    except segments.SegmentNotFound as error:
        return _missing(error)
    headers = {"Content-Disposition": f'attachment; filename="segment-{slug}.csv"'}
    return StreamingResponse(
        segments.stream_csv(engine, slug=slug), headers=headers,
        media_type="text/csv; charset=utf-8",
    )  # fmt: skip
