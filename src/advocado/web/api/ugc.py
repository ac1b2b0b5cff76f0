"""REST API v1: the human task queue (list, get, record the outcome) and UGC challenges
(list, create or update, entries, review, featured, invitations).

Same keys and scopes as the rest of the API (GET read; POST, PUT and PATCH write). The API
key's name is recorded as who reviewed an entry or recorded an outcome ("api:<name>")."""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations.

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain.challenges import ChallengeError, ReviewError
from advocado.domain.records import FieldError
from advocado.domain.tasks import TaskError
from advocado.services import challenges, tasks
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import ApiKey, Customer
from advocado.web.api import schemas
from advocado.web.api.routes import PREFIX, _ApiRoute, _json, _write, api_key

router = APIRouter(
    prefix=PREFIX,
    tags=["Tasks and challenges"],
    route_class=_ApiRoute,
    dependencies=[Depends(api_key)],
    responses={
        401: {"description": "No valid API key."},
        403: {"description": "The key lacks the scope."},
        404: {"description": "Not found."},
        422: {"model": schemas.ValidationProblem, "description": "Invalid input; nothing saved."},
    },
)


def _missing(error: Exception) -> Response:
    return _json(404, {"detail": str(error)})


def _invalid(field: str, reason: str) -> FieldError:
    return FieldError(field, reason)


# --- tasks -----------------------------------------------------------------------------------


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["accepted", "declined", "no_answer"]
    note: str | None = Field(None, max_length=2000)


@router.get("/tasks", summary="Tasks: overdue first, then open by due date, then done")
def list_tasks(
    request: Request,
    status: Literal["open", "overdue", "done", "all"] = Query("open"),
    kind: str | None = Query(None, description="e.g. ambassador_invite, detractor_follow_up"),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> Response:
    with read_only(request.app.state.engine) as session:
        rows = tasks.list_tasks(session, status=status, kind=kind, limit=limit, offset=offset)
        counts = tasks.count_tasks(session)
    return _json(200, {"items": [r.as_dict() for r in rows], "counts": counts})


@router.get("/tasks/{task_id}", summary="One task with its customer's context and script")
def get_task(request: Request, task_id: int) -> Response:
    try:
        with read_only(request.app.state.engine) as session:
            return _json(200, tasks.task_detail(session, task_id=task_id))
    except tasks.TaskNotFound as error:
        return _missing(error)


@router.patch(
    "/tasks/{task_id}",
    summary="Record the outcome (once; the same outcome again is accepted, another is 409)",
    responses={409: {"description": "Another outcome was recorded already."}},
)
def record_outcome(
    request: Request, task_id: int, body: OutcomeIn, key: ApiKey = Depends(api_key)
) -> Response:
    try:
        with unit_of_work(request.app.state.engine) as session:
            tasks.record_outcome(session, task_id=task_id, outcome=body.outcome, note=body.note,
                                 by=f"api:{key.name}")  # fmt: skip
        with read_only(request.app.state.engine) as session:
            return _json(200, tasks.task_detail(session, task_id=task_id))
    except tasks.TaskNotFound as error:
        return _missing(error)
    except tasks.OutcomeAlreadyRecorded as error:
        return _json(409, {"detail": [{"field": error.field, "reason": error.reason}]})
    except TaskError as error:
        raise _invalid(error.field, error.reason) from None


# --- challenges ------------------------------------------------------------------------------


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["approve", "reject", "feature", "unfeature"]
    reason: str | None = Field(None, max_length=500, description="Required to reject.")


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_external_id: str = Field(min_length=1, max_length=200)
    cause_key: str = Field(min_length=1, max_length=250,
                           description="Your id for this invitation: the same key twice is "
                           "one invitation.")  # fmt: skip


@router.get("/challenges", summary="All challenges with entry counts")
def list_challenges(request: Request, locale: str = Query("en")) -> Response:
    with read_only(request.app.state.engine) as session:
        return _json(200, {"items": challenges.list_challenges(session, locale=locale)})


@router.post(
    "/challenges",
    summary="Create or update a challenge (the YAML file's fields, as JSON)",
    responses={200: {"description": "Updated."}, 201: {"description": "Created."}},
)
def apply_challenge(
    request: Request, body: dict[str, Any], key: ApiKey = Depends(api_key)
) -> Response:
    def action(session: Session) -> tuple[int, Any]:
        applied = challenges.apply_challenge(session, body)
        view = challenges.challenge_view(
            challenges.challenge_by_slug(session, applied.slug), "en", clock.now()
        )
        return (201 if applied.created else 200), view

    try:
        return _write(request, key, body, action)
    except ChallengeError as error:
        raise _invalid(error.field, error.reason) from None


@router.get("/challenges/{slug}", summary="One challenge")
def get_challenge(request: Request, slug: str, locale: str = Query("en")) -> Response:
    try:
        with read_only(request.app.state.engine) as session:
            found = challenges.challenge_by_slug(session, slug)
            return _json(200, challenges.challenge_view(found, locale, clock.now()))
    except challenges.UnknownChallenge as error:
        return _missing(error)


@router.get("/challenges/{slug}/entries", summary="A challenge's entries, newest first")
def list_entries(
    request: Request,
    slug: str,
    status: Literal["pending", "approved", "rejected"] | None = Query(None),
    featured: bool | None = Query(None),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> Response:
    try:
        with read_only(request.app.state.engine) as session:
            items = challenges.list_entries(
                session, slug=slug, status=status, featured=featured, limit=limit, offset=offset
            )
    except challenges.UnknownChallenge as error:
        return _missing(error)
    return _json(200, {"items": items})


@router.get("/challenges/{slug}/featured", summary="Approved, featured entries (public view)")
def featured(request: Request, slug: str) -> Response:
    try:
        with read_only(request.app.state.engine) as session:
            found = challenges.featured_entries(session, slug=slug)
    except challenges.UnknownChallenge as error:
        return _missing(error)
    return _json(200, {"slug": slug, "items": found["entries"]})


@router.post("/challenges/{slug}/invitations", summary="Invite a customer (once per cause)")
def invite(
    request: Request, slug: str, body: InvitationIn, key: ApiKey = Depends(api_key)
) -> Response:
    def action(session: Session) -> tuple[int, Any]:
        customer_id = session.scalar(
            select(Customer.id).where(Customer.external_id == body.customer_external_id)
        )
        if customer_id is None:
            raise FieldError("customer_external_id", f"no customer {body.customer_external_id!r}")
        found = challenges.invite(session, challenge=slug, customer_id=customer_id,
                                  cause_key=body.cause_key)  # fmt: skip
        return 200, {"challenge_id": found.challenge_id, "customer_id": found.customer_id,
                     "token": found.token, "url_path": found.url_path}  # fmt: skip

    try:
        return _write(request, key, body.model_dump(), action)
    except challenges.UnknownChallenge as error:
        return _missing(error)
    except challenges.ChallengeNotRunning as error:
        return _json(409, {"detail": [{"field": "challenge", "reason": str(error)}]})


@router.patch("/entries/{entry_id}", summary="Review an entry: approve, reject, feature")
def review_entry(
    request: Request, entry_id: int, body: ReviewIn, key: ApiKey = Depends(api_key)
) -> Response:
    try:
        with unit_of_work(request.app.state.engine) as session:
            entry = challenges.review_entry(
                session,
                entry_id=entry_id,
                action=body.action,
                reason=body.reason,
                reviewer=f"api:{key.name}",
            )
            view = challenges.entry_view(entry)
    except challenges.EntryNotFound as error:
        return _missing(error)
    except ReviewError as error:
        raise _invalid(error.field, error.reason) from None
    return _json(200, view)


@router.get("/entries/{entry_id}/image", summary="An entry's photo (as uploaded)")
def entry_image(request: Request, entry_id: int) -> Response:
    with read_only(request.app.state.engine) as session:
        found = challenges.entry_image(session, entry_id=entry_id, public=False)
    if found is None:
        return _json(404, {"detail": f"no image for entry {entry_id}"})
    data, kind = found
    return Response(data, media_type=kind, headers={"X-Content-Type-Options": "nosniff"})
