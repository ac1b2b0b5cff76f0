"""Public message links: /m/{token} (a tracked link in a message: record the click, redirect)
and /u/{token} (one-click unsubscribe: GET shows a confirm page in the customer's language,
POST unsubscribes, also the RFC 8058 `List-Unsubscribe=One-Click` POST a mail client sends).

Plain Starlette routes (like /r/ in web/links.py): no FastAPI validation or session work."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from advocado.channels.config import messaging_config
from advocado.services import messaging
from advocado.services.clicks import BOTS
from advocado.web.console.routes import SECURITY_HEADERS, templates
from advocado.web.i18n import known, translate

NOT_FOUND = "This link does not exist. / 该链接不存在。\n"


async def tracked_link(request: Request) -> Response:
    token = request.path_params["token"]
    if len(token) > 40:
        return PlainTextResponse(NOT_FOUND, 404)
    agent = request.headers.get("user-agent", "")
    # mail security scanners open links before the reader does: they are not clicks
    counts = request.method == "GET" and not BOTS.search(agent)
    action = messaging.record_message_click if counts else messaging.message_link_target
    url = await run_in_threadpool(action, request.app.state.engine, token=token)
    if url is None:
        return PlainTextResponse(NOT_FOUND, 404)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


def _page(request: Request, locale: str, state: str, status_code: int = 200) -> HTMLResponse:
    chosen = known(request.query_params.get("lang")) or locale
    context = {
        "lang": chosen,
        "t": partial(translate, chosen),
        "state": state,
        "sender": messaging_config().sender_identity,
        "action": request.url.path,
    }
    response = templates.TemplateResponse(request, "unsubscribe.html", context, status_code)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


async def unsubscribe(request: Request) -> Response:
    engine = request.app.state.engine
    token = request.path_params["token"]
    if request.method == "POST":
        target = await run_in_threadpool(messaging.unsubscribe, engine, token=token)
        if target is None:
            return _page(request, "en", "invalid", 404)
        return _page(request, target.locale, "done")
    target = await run_in_threadpool(messaging.unsubscribe_target, engine, token=token)
    if target is None:
        return _page(request, "en", "invalid", 404)
    return _page(request, target.locale, "already" if target.already else "ask")


def install(app: FastAPI) -> None:
    app.add_route("/m/{token}", tracked_link, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route("/u/{token}", unsubscribe, methods=["GET", "POST"], include_in_schema=False)
