"""Console pages for messaging: the message log (filters, one message's history), dead letters
with retry, templates with previews and the brand's own version, and the script library.

Each handler parses the request, calls one service, and renders a template."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from advocado.domain import messaging as rules
from advocado.services import message_templates, messaging
from advocado.web.console.routes import _csrf_ok, _to_login, locale_of, render, signed_in_user

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100
SUBPAGES = ("messages", "dead", "templates", "scripts")


def _context(user: Any, sub: str, **values: Any) -> dict[str, Any]:
    return {"user": user, "page": "messages", "sub": sub, "subpages": SUBPAGES, **values}


@router.get("/messages")
def message_log(
    request: Request,
    status: str = "",
    template: str = "",
    reason: str = "",
    before: str = "",
) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    chosen = status if status in rules.STATUSES else None
    rows = messaging.list_messages(
        request.app.state.engine, status=chosen, template=template or None,
        reason=reason or None, before_id=int(before) if before.isdigit() else None,
        limit=PAGE_SIZE,
    )  # fmt: skip
    context = _context(
        user, "messages", rows=rows, statuses=rules.STATUSES,
        filters={"status": chosen or "", "template": template, "reason": reason},
        counts=messaging.status_counts(request.app.state.engine),
        explain=rules.explain, locale=locale_of(request),
        older=rows[-1]["id"] if len(rows) == PAGE_SIZE else None,
    )  # fmt: skip
    return render(request, "messages.html", context)


@router.get("/messages/dead")
def dead_letters(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    engine = request.app.state.engine
    rows = [
        row
        for status in (rules.DEAD, rules.UNCERTAIN)
        for row in messaging.list_messages(engine, status=status, limit=500)
    ]
    retried = request.query_params.get("retried")
    context = _context(user, "dead", rows=rows, explain=rules.explain,
                       locale=locale_of(request), retried=retried)  # fmt: skip
    return render(request, "dead_letters.html", context)


@router.post("/messages/{message_id}/retry")
async def retry(request: Request, message_id: int) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    form = await request.form()
    if _csrf_ok(request, str(form.get("csrf") or "")):
        # already queued or sent (a double click): the list shows where it is
        with contextlib.suppress(messaging.MessagingError):
            messaging.retry_message(
                request.app.state.engine, message_id=message_id, actor=user.email
            )
        return RedirectResponse(f"/messages/dead?retried={message_id}", status_code=303)
    return RedirectResponse("/messages/dead", status_code=303)


@router.get("/messages/templates")
def template_list(request: Request, name: str = "", locale: str = "") -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    return _templates_page(request, user, name, locale)


def _templates_page(
    request: Request, user: Any, name: str, locale: str, error: str | None = None,
    saved: bool = False, entered: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    engine = request.app.state.engine
    found = message_templates.list_templates(engine)
    names = sorted({t.name for t in found})
    name = name if name in names else (names[0] if names else "")
    locale = locale if locale in rules.LOCALES else locale_of(request)
    preview = None
    if name:
        try:
            preview = message_templates.preview_template(engine, name=name, locale=locale)
            entered = entered or message_templates.source_of(engine, name=name, locale=locale)
        except messaging.MessagingError as problem:
            error = error or str(problem)
    context = _context(
        user, "templates", templates=found, names=names, name=name, chosen_locale=locale,
        locales=rules.LOCALES, preview=preview, error=error, saved=saved,
        entered=entered or {},
    )  # fmt: skip
    return render(request, "message_templates.html", context, 400 if error else 200)


@router.post("/messages/templates")
async def template_save(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    form = await request.form()
    name, locale = str(form.get("name") or ""), str(form.get("locale") or "")
    if not _csrf_ok(request, str(form.get("csrf") or "")):
        return RedirectResponse("/messages/templates", status_code=303)
    entered = {key: str(form.get(key) or "") for key in ("subject", "text", "html")}
    try:
        message_templates.save_template(
            request.app.state.engine, name=name, locale=locale, subject=entered["subject"],
            text=entered["text"], html=entered["html"] or None,
        )  # fmt: skip
    except messaging.MessagingError as problem:
        return _templates_page(request, user, name, locale, error=str(problem), entered=entered)
    return _templates_page(request, user, name, locale, saved=True)


@router.get("/messages/scripts")
def scripts(request: Request, locale: str = "", code: str = "", share_url: str = "") -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    locale = locale if locale in rules.LOCALES else locale_of(request)
    found = message_templates.list_scripts(
        locale=locale, fill={"code": code, "share_url": share_url}
    )
    context = _context(user, "scripts", scripts=found, chosen_locale=locale,
                       locales=rules.LOCALES, code=code, share_url=share_url)  # fmt: skip
    return render(request, "scripts.html", context)


@router.get("/messages/{message_id}")
def message_page(request: Request, message_id: int) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    found = messaging.message_detail(request.app.state.engine, message_id=message_id)
    context = _context(user, "messages", m=found, explain=rules.explain,
                       locale=locale_of(request))  # fmt: skip
    return render(request, "message.html", context, 200 if found else 404)
