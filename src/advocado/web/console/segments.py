"""Console pages: segments (list with live counts, create from a form, members, CSV export,
delete) and promoters by persona with the evidence words highlighted in their comments.

Each handler parses the request, calls one service, and renders a template."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.datastructures import FormData

from advocado.domain import segments as rules
from advocado.domain.records import FieldError
from advocado.domain.roles import Action
from advocado.services import segments
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import User
from advocado.web.console.routes import (
    _csrf_ok,
    _to_login,
    actor_of,
    permitted,
    render,
    signed_in_user,
)

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
_CHOICE_FIELDS = {
    "nps_category": rules.NPS_CATEGORIES,
    "persona": rules.PERSONAS,
    "value_tier": rules.VALUE_TIERS,
    "lifecycle_stage": rules.LIFECYCLE_STAGES,
}
_TEXT_FIELDS = ("score_min", "score_max", "survey", "submitted_from", "submitted_to",
                "influence_min")  # fmt: skip
_FLAG_FIELDS = ("high_influence", "consent")
_TAG_SPLIT = re.compile(r"[;,，、；]")


def highlight(text: str | None, words: Sequence[str] | None) -> list[tuple[str, bool]]:
    """The text cut into (piece, is evidence) parts, so a template can mark the evidence
    words while still escaping every piece. Longest words first; case-insensitive."""
    if not text:
        return []
    wanted = sorted({w for w in (words or []) if isinstance(w, str) and w.strip()},
                    key=len, reverse=True)  # fmt: skip
    if not wanted:
        return [(text, False)]
    pattern = re.compile("|".join(re.escape(word) for word in wanted), re.IGNORECASE)
    parts: list[tuple[str, bool]] = []
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            parts.append((text[position : match.start()], False))
        parts.append((match.group(0), True))
        position = match.end()
    if position < len(text):
        parts.append((text[position:], False))
    return parts


def _filters_from_form(form: FormData) -> dict[str, Any]:
    """The form's fields as the filters object the API takes."""
    raw: dict[str, Any] = {}
    for name in _CHOICE_FIELDS:
        raw[name] = [str(value) for value in form.getlist(name)]
    for name in _TEXT_FIELDS:
        raw[name] = str(form.get(name) or "").strip()
    for name in _FLAG_FIELDS:
        value = str(form.get(name) or "")
        raw[name] = {"yes": True, "no": False}.get(value)
    for name in ("tags_any", "tags_all"):
        raw[name] = [t.strip() for t in _TAG_SPLIT.split(str(form.get(name) or "")) if t.strip()]
    return {key: value for key, value in raw.items() if value not in (None, "", [])}


def _cursor(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _form_context(form: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"form": form or {"name": "", "slug": "", "filters": {}}, "choices": _CHOICE_FIELDS}


@router.get("/segments")
def segment_list(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    with read_only(request.app.state.engine) as session:
        found = segments.list_segments(session)
    context = {"user": user, "page": "segments", "segments": found, "error": None,
               "preview": None, **_form_context()}  # fmt: skip
    return render(request, "segments.html", context)


@router.post("/segments")
async def segment_create(request: Request) -> Response:
    form = await request.form()
    # Counting an unsaved filter changes nothing, so any role may; saving needs the right.
    user = (
        signed_in_user(request)
        if form.get("action") == "preview"
        else permitted(request, Action.EDIT_SEGMENTS)
    )
    if user is None:
        return _to_login(request)
    if not isinstance(user, User):
        return user
    if not _csrf_ok(request, str(form.get("csrf") or "")):
        return RedirectResponse("/segments", status_code=303)
    filters = _filters_from_form(form)
    entered = {"name": str(form.get("name") or ""), "slug": str(form.get("slug") or ""),
               "filters": filters}  # fmt: skip
    engine = request.app.state.engine
    preview, error = None, None
    try:
        if form.get("action") == "preview":
            with read_only(engine) as session:
                preview = segments.count_members(session, rules.parse_filters(filters))
        else:
            with unit_of_work(engine) as session:
                view = segments.create_segment(session, name=entered["name"], filters=filters,
                                               slug=entered["slug"] or None,
                                               actor=actor_of(user))  # fmt: skip
            return RedirectResponse(f"/segments/{view.slug}", status_code=303)
    except FieldError as problem:
        error = problem
    with read_only(engine) as session:
        found = segments.list_segments(session)
    context = {"user": user, "page": "segments", "segments": found, "error": error,
               "preview": preview, **_form_context(entered)}  # fmt: skip
    return render(request, "segments.html", context, 400 if error else 200)


@router.get("/segments/{slug}")
def segment_members(request: Request, slug: str, after: str | None = None) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    try:
        with read_only(request.app.state.engine) as session:
            view = segments.get_segment(session, slug=slug)
            rows, following = segments.member_page(
                session, rules.parse_filters(view.filters), limit=PAGE_SIZE, after=_cursor(after)
            )
    except segments.SegmentNotFound:
        return render(request, "segment.html", {"user": user, "page": "segments",
                                                "segment": None}, 404)  # fmt: skip
    context = {"user": user, "page": "segments", "segment": view, "members": rows,
               "next": following, "highlight": highlight}  # fmt: skip
    return render(request, "segment.html", context)


@router.get("/segments/{slug}/export.csv")
def segment_export(request: Request, slug: str) -> Response:
    if signed_in_user(request) is None:
        return _to_login(request)
    engine = request.app.state.engine
    try:
        with read_only(engine) as session:
            segments.segment_filter(session, slug=slug)
    except segments.SegmentNotFound:
        return Response("no such segment", 404)
    headers = {"Content-Disposition": f'attachment; filename="segment-{slug}.csv"',
               "Cache-Control": "no-store"}  # fmt: skip
    return StreamingResponse(segments.stream_csv(engine, slug=slug), headers=headers,
                             media_type="text/csv; charset=utf-8")  # fmt: skip


@router.post("/segments/{slug}/delete")
async def segment_delete(request: Request, slug: str) -> Response:
    user = permitted(request, Action.EDIT_SEGMENTS)
    if not isinstance(user, User):
        return user
    form = await request.form()
    if _csrf_ok(request, str(form.get("csrf") or "")):
        try:
            with unit_of_work(request.app.state.engine) as session:
                segments.delete_segment(session, slug=slug, actor=actor_of(user))
        except segments.SegmentNotFound:
            pass  # already gone: the list is where the user wanted to end up
    return RedirectResponse("/segments", status_code=303)


@router.get("/promoters")
def promoters(request: Request, persona: str = "emotional", after: str | None = None) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    tab = persona if persona in segments.PERSONA_TABS else "emotional"
    with read_only(request.app.state.engine) as session:
        found = segments.promoters_by_persona(
            session, tab=tab, limit=PAGE_SIZE, after=_cursor(after)
        )
    context = {"user": user, "page": "promoters", "p": found, "tabs": segments.PERSONA_TABS,
               "highlight": highlight}  # fmt: skip
    return render(request, "promoters.html", context)
