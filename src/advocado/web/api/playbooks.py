"""REST API v1: playbooks (the automations) as data, their enrolments, manual enrolment, and
activities (onboarding completed, usage milestone, business review, renewal) that playbooks
react to. A playbook is the same document as its YAML file (advocado.domain.playbooks); an
invalid one is a 422 naming the field (and the line, when sent as YAML text)."""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations.

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain.playbooks import ACTIVITY_TRIGGERS, PlaybookError
from advocado.domain.records import FieldError
from advocado.services import audit, playbooks
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import ApiKey, Customer
from advocado.web.api import schemas
from advocado.web.api.routes import PREFIX, _ApiRoute, _json, _write, api_key

router = APIRouter(
    prefix=PREFIX,
    tags=["Playbooks"],
    route_class=_ApiRoute,
    dependencies=[Depends(api_key)],
    responses={
        401: {"description": "No valid API key."},
        403: {"description": "The key lacks the scope."},
        404: {"description": "No such playbook or customer."},
        422: {"model": schemas.ValidationProblem, "description": "Invalid input; nothing saved."},
    },
)

PLAYBOOK_NOTE = (
    "The playbook as JSON (the same fields as its YAML file: name, title, triggers, "
    'conditions, steps, vars), or `{"source": "<YAML text>"}` to send the YAML itself '
    "(errors then name its line)."
)


def _invalid(error: PlaybookError) -> Response:
    problem = {"field": error.field, "reason": error.reason, "line": error.line,
               "loc": [error.field], "msg": str(error), "type": "value_error"}  # fmt: skip
    return _json(422, {"detail": [problem]})


def _missing(error: LookupError) -> Response:
    return _json(404, {"detail": str(error).strip("'\"")})


@router.get("/playbooks", summary="All playbooks: enabled, version, enrolments")
def list_playbooks(request: Request) -> Response:
    engine = request.app.state.engine
    with unit_of_work(engine) as session:
        playbooks.install_default(session)
    with read_only(engine) as session:
        found = playbooks.list_playbooks(session)
    return _json(200, {"items": [view.as_dict() for view in found]})


@router.get("/playbooks/{name}", summary="One playbook with its current YAML")
def get_playbook(request: Request, name: str) -> Response:
    try:
        with read_only(request.app.state.engine) as session:
            view = playbooks.get_playbook(session, name=name)
    except playbooks.UnknownPlaybook as error:
        return _missing(error)
    return _json(200, view.as_dict())


@router.post("/playbooks", status_code=201, summary="Create or update (a new version)",
             description=PLAYBOOK_NOTE)  # fmt: skip
def apply_playbook(
    request: Request, body: dict[str, Any] = Body(..., description=PLAYBOOK_NOTE),
    key: ApiKey = Depends(api_key),
) -> Response:  # fmt: skip
    def action(session: Session) -> tuple[int, Any]:
        source = body.get("source")
        if isinstance(source, str) and len(body) == 1:
            applied = playbooks.apply_source(
                session, source=source, file="source", actor=audit.api_actor(key.prefix)
            )
        else:
            applied = playbooks.apply_data(session, data=body, actor=audit.api_actor(key.prefix))
        return (201 if applied.created else 200), {
            "name": applied.name, "version": applied.version, "created": applied.created,
            "changed": applied.changed}  # fmt: skip

    try:
        return _write(request, key, body, action)
    except PlaybookError as error:
        return _invalid(error)


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(description="The playbook's YAML text.")


@router.post("/playbooks/validate", summary="Check a YAML text without saving it")
def validate(body: SourceIn) -> Response:
    error = playbooks.validate_source(body.source, "source")
    return _json(200, {"valid": error is None, "error": error.as_dict() if error else None})


def _switch(request: Request, key: ApiKey, name: str, enabled: bool) -> Response:
    try:
        with unit_of_work(request.app.state.engine) as session:
            view = playbooks.set_enabled(
                session, name=name, enabled=enabled, actor=audit.api_actor(key.prefix)
            )
    except playbooks.UnknownPlaybook as error:
        return _missing(error)
    return _json(200, view.as_dict())


@router.post("/playbooks/{name}/enable", summary="Enrol on its triggers again")
def enable(request: Request, name: str, key: ApiKey = Depends(api_key)) -> Response:
    return _switch(request, key, name, True)


@router.post("/playbooks/{name}/disable", summary="Enrol no one new (running ones finish)")
def disable(request: Request, name: str, key: ApiKey = Depends(api_key)) -> Response:
    return _switch(request, key, name, False)


class EnrolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customers: list[str] = Field(min_length=1, max_length=1000,
                                 description="Customer external ids.")  # fmt: skip
    key: str | None = Field(None, max_length=150,
                            description="The same key again enrols no one twice.")  # fmt: skip


@router.post("/playbooks/{name}/enrolments", summary="Enrol customers by hand")
def enrol(request: Request, name: str, body: EnrolIn, key: ApiKey = Depends(api_key)) -> Response:
    def action(session: Session) -> tuple[int, Any]:
        made = playbooks.enrol_manually(session, name=name, customer_external_ids=body.customers,
                                        key=body.key)  # fmt: skip
        return 200, {"enrolled": made}

    try:
        return _write(request, key, body.model_dump(), action)
    except LookupError as error:
        return _missing(error)


@router.get("/playbooks/{name}/enrolments", summary="Enrolments with their current step")
def list_enrolments(
    request: Request, name: str,
    status: str | None = Query(None, description="active, completed, exited, handed_off, "
                                                 "failed (the dead-letter list)"),
    limit: int = Query(100, ge=1, le=1000), after: int | None = Query(None),
) -> Response:  # fmt: skip
    try:
        with read_only(request.app.state.engine) as session:
            rows = playbooks.enrolments(session, name=name, status=status, limit=limit,
                                        after=after)  # fmt: skip
    except playbooks.UnknownPlaybook as error:
        return _missing(error)
    items = [row.as_dict() for row in rows]
    following = str(rows[-1].id) if len(rows) == limit else None
    return _json(200, {"items": items, "next": following})


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(
        min_length=1,
        max_length=150,
        description="Your id of the activity: the same id twice is one activity.",
    )
    type: str = Field(description="onboarding_completed, usage_milestone, business_review "
                                  "or renewal.")  # fmt: skip
    customer_external_id: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="e.g. {\"milestone\": "
                                                                   "\"100 orders\"}")  # fmt: skip


@router.post("/activities", status_code=202, summary="Record an activity playbooks react to")
def record_activity(request: Request, body: ActivityIn, key: ApiKey = Depends(api_key)) -> Response:
    if body.type not in ACTIVITY_TRIGGERS:
        raise FieldError("type", f"{body.type!r} is not one of {', '.join(ACTIVITY_TRIGGERS)}")

    def action(session: Session) -> tuple[int, Any]:
        customer_id = session.scalar(
            select(Customer.id).where(Customer.external_id == body.customer_external_id)
        )
        if customer_id is None:
            raise FieldError("customer_external_id", f"no customer {body.customer_external_id!r}")
        moment: datetime = body.occurred_at or clock.now()
        subject = f"activity:{body.type}:{body.id}"
        playbooks.record_event(session, kind=body.type, customer_id=customer_id,
                               subject=subject, payload=body.data, occurred_at=moment)  # fmt: skip
        return 202, {"recorded": subject}

    return _write(request, key, body.model_dump(mode="json"), action)
