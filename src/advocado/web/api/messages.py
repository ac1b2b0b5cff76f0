"""REST API v1: the message log, dead letters and retry, bounce reports, the suppression list,
message templates (brand overrides, previews) and the advocate's script library.

GET needs the read scope; POST, PUT and DELETE need write. These writes are idempotent by
nature (a retry of a queued message, a second bounce report or suppression changes nothing),
so they take no Idempotency-Key."""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations.

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from advocado.domain import messaging as rules
from advocado.services import message_templates, messaging
from advocado.web.api import schemas
from advocado.web.api.routes import PREFIX, _ApiRoute, _json, api_key

router = APIRouter(
    prefix=PREFIX,
    tags=["Messages"],
    route_class=_ApiRoute,
    dependencies=[Depends(api_key)],
    responses={
        401: {"description": "No valid API key."},
        403: {"description": "The key lacks the scope."},
        422: {"model": schemas.ValidationProblem, "description": "Invalid input; nothing saved."},
    },
)


def _problem(error: messaging.MessagingError) -> Response:
    if isinstance(error, messaging.MessageNotFound):
        return _json(404, {"detail": str(error)})
    return _json(422, {"detail": [{"field": error.field, "reason": str(error),
                                   "loc": [error.field]}]})  # fmt: skip


LIST_NOTE = (
    "Filter by status (" + ", ".join(rules.STATUSES) + "), template, customer id or reason "
    "code (e.g. `no_consent`); page with `before` = the previous page's `next_before`."
)


@router.get("/messages", summary="The message log, newest first", description=LIST_NOTE)
def list_messages(
    request: Request,
    status: str | None = None,
    template: str | None = None,
    customer_id: int | None = None,
    reason: str | None = Query(None, description="A reason code such as frequency_cap."),
    before: int | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    try:
        items = messaging.list_messages(
            request.app.state.engine, status=status, template=template,
            customer_id=customer_id, reason=reason, before_id=before, limit=limit,
        )  # fmt: skip
    except messaging.MessagingError as error:
        return _problem(error)
    following = items[-1]["id"] if len(items) == limit else None
    return _json(200, {"items": items, "next_before": following})


@router.get("/messages/funnel", summary="Per template: asked, skipped, delivered, clicked, "
            "bounced, dead, uncertain")  # fmt: skip
def funnel(request: Request, since: AwareDatetime | None = None) -> Response:
    return _json(200, messaging.funnel(request.app.state.engine, since=since))


@router.get("/messages/{message_id}", summary="One message with its status history and links")
def get_message(request: Request, message_id: int) -> Response:
    found = messaging.message_detail(request.app.state.engine, message_id=message_id)
    if found is None:
        return _json(404, {"detail": f"message {message_id}: no such message"})
    return _json(200, found)


@router.post("/messages/{message_id}/retry", summary="Queue a dead, uncertain or bounced "
             "message again (an uncertain one may then arrive twice: your call)")  # fmt: skip
def retry(request: Request, message_id: int, key: Any = Depends(api_key)) -> Response:
    try:
        status = messaging.retry_message(
            request.app.state.engine, message_id=message_id, actor=f"api key {key.prefix}"
        )
    except messaging.MessagingError as error:
        return _problem(error)
    return _json(200, {"id": message_id, "status": status})


class BounceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detail: str = Field("", max_length=500, description="The bounce as reported, e.g. `550 5.1.1`.")


@router.post("/messages/{message_id}/bounce", summary="Report an asynchronous bounce: the "
             "message is marked bounced and its address suppressed")  # fmt: skip
def bounce(request: Request, message_id: int, body: BounceIn) -> Response:
    try:
        status = messaging.record_bounce(
            request.app.state.engine, message_id=message_id, detail=body.detail
        )
    except messaging.MessagingError as error:
        return _problem(error)
    return _json(200, {"id": message_id, "status": status})


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="email | phone | customer (numeric customer id)")
    value: str = Field(min_length=1, max_length=320)
    reason: str = Field("", max_length=500)


@router.get("/suppressions", summary="The suppression list, newest first")
def suppressions(request: Request) -> Response:
    return _json(200, {"items": messaging.list_suppressions(request.app.state.engine)})


@router.post("/suppressions", status_code=201, summary="Never send marketing to this address "
             "or customer (200 when it was already listed)")  # fmt: skip
def suppress(request: Request, body: SuppressionIn) -> Response:
    try:
        added = messaging.add_suppression(
            request.app.state.engine, kind=body.kind, value=body.value, reason=body.reason
        )
    except messaging.MessagingError as error:
        return _problem(error)
    return _json(201 if added else 200, {"kind": body.kind, "added": added})


@router.get("/message-templates", summary="Every template per locale: shipped or your version")
def templates_list(request: Request) -> Response:
    found = message_templates.list_templates(request.app.state.engine)
    return _json(200, {"items": [t.__dict__ for t in found]})


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=300)
    text: str = Field(min_length=1, description="Jinja2 (sandboxed); the plain-text part.")
    html: str | None = Field(None, description="Jinja2, autoescaped; may "
                             "`{% extends \"_layout.html\" %}`.")  # fmt: skip


@router.put("/message-templates/{name}/{locale}", summary="Save your version of a template")
def template_save(request: Request, name: str, locale: str, body: TemplateIn) -> Response:
    try:
        info = message_templates.save_template(
            request.app.state.engine, name=name, locale=locale,
            subject=body.subject, text=body.text, html=body.html,
        )  # fmt: skip
    except messaging.MessagingError as error:
        return _problem(error)
    return _json(200, info.__dict__)


@router.delete("/message-templates/{name}/{locale}", summary="Drop your version (the shipped "
               "one applies again)")  # fmt: skip
def template_delete(request: Request, name: str, locale: str) -> Response:
    gone = message_templates.delete_template(request.app.state.engine, name=name, locale=locale)
    return _json(200 if gone else 404, {"deleted": gone})


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    context: dict[str, Any] = Field(default_factory=dict, description="Overrides the samples.")


@router.post("/message-templates/{name}/{locale}/preview",
             summary="Render a template with sample data (plus your context)")  # fmt: skip
async def template_preview(request: Request, name: str, locale: str, body: PreviewIn) -> Response:
    try:
        shown = await run_in_threadpool(
            message_templates.preview_template, request.app.state.engine,
            name=name, locale=locale, context=body.context,
        )  # fmt: skip
    except messaging.MessagingError as error:
        return _problem(error)
    return _json(200, shown)


@router.get("/scripts", summary="The advocate's script library (seed 004)",
            description="Styles: benefit, emotional, scenario; formats: moments (a WeChat "
            "moments post), private (a private message). Pass code, share_url, brand, "
            "friend_offer, problem to fill them in.")  # fmt: skip
def scripts(
    request: Request,
    locale: str = "en",
    style: str | None = None,
    format: str | None = None,
    code: str | None = None,
    share_url: str | None = None,
    brand: str | None = None,
    friend_offer: str | None = None,
    problem: str | None = None,
) -> Response:
    fill = {"code": code, "share_url": share_url, "brand": brand, "friend_offer": friend_offer,
            "problem": problem}  # fmt: skip
    try:
        found = message_templates.list_scripts(
            locale=locale, style=style, format=format, fill={k: v for k, v in fill.items() if v}
        )
    except messaging.MessagingError as error:
        return _problem(error)
    return _json(200, {"items": found})
