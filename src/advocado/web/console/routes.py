"""The console: sign in and out, the overview page, and the API docs for signed-in users.

Each handler parses the request, calls one service, and renders a template."""

from __future__ import annotations

import hmac
import math
import secrets
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from advocado import clock
from advocado.domain.roles import Action, may, refusal
from advocado.domain.throttle import LoginThrottle
from advocado.services import audit
from advocado.services.overview import console_overview
from advocado.services.users import active_user, verify_login
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import User
from advocado.web.access import SESSION_USER, login_url, safe_next
from advocado.web.i18n import LOCALE_NAMES, LOCALES, known, negotiate, translate

WEB = Path(__file__).resolve().parent.parent
STATIC = WEB / "static"
templates = Jinja2Templates(directory=WEB / "templates")
router = APIRouter(include_in_schema=False)

SESSION_CSRF = "csrf"
SESSION_EMAIL = "email"
LANG_COOKIE = "lang"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _nps(value: float | None, empty: str) -> str:
    return empty if value is None else f"{value:+.1f}"


def _when(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M}"


templates.env.filters["nps"] = _nps
templates.env.filters["when"] = _when


def csrf_token(request: Request) -> str:
    token = request.session.get(SESSION_CSRF)
    if not token:
        token = request.session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def _csrf_ok(request: Request, sent: str) -> bool:
    expected = request.session.get(SESSION_CSRF)
    return bool(expected and sent) and hmac.compare_digest(expected, sent)


def locale_of(request: Request) -> str:
    return negotiate(
        query=request.query_params.get("lang"),
        cookie=request.cookies.get(LANG_COOKIE),
        accept_language=request.headers.get("accept-language"),
    )


def render(
    request: Request, name: str, context: dict[str, object], status_code: int = 200
) -> HTMLResponse:
    lang = locale_of(request)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    languages = [
        (code, LOCALE_NAMES[code], f"{request.url.path}?{urlencode([*params, ('lang', code)])}")
        for code in LOCALES
    ]
    page = {
        "lang": lang,
        "t": partial(translate, lang),
        "languages": languages,
        "csrf_token": csrf_token(request),
        **context,
    }
    response = templates.TemplateResponse(request, name, page, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    chosen = known(request.query_params.get("lang"))
    if chosen:
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 24 * 3600, samesite="lax")
    return response


def signed_in_user(request: Request) -> User | None:
    """The enabled user behind this session; a session of a deleted/disabled user is ended."""
    user_id = request.session.get(SESSION_USER)
    if not isinstance(user_id, int):
        return None
    with read_only(request.app.state.engine) as session:
        user = active_user(session, user_id=user_id)
    if user is None:
        request.session.clear()
    return user


def permitted(request: Request, action: Action) -> User | Response:
    """The one check every console handler that changes something (and every page that only
    exists to change something) makes: the signed-in user if their role may do `action`
    (domain.roles.PERMISSIONS), else the response to send: sign in (303), or 403 with why.
    Server-side: a hidden button is no protection against a direct POST."""
    user = signed_in_user(request)
    if user is None:
        if request.method in ("GET", "HEAD"):
            return _to_login(request)
        return JSONResponse({"detail": "Sign in first."}, status_code=401)
    if not may(user.role, action):
        reason = refusal(user.role, action)
        if request.headers.get("accept", "").startswith("application/json"):
            return JSONResponse({"detail": reason}, status_code=403)
        page = {"user": user, "page": "", "reason": reason}
        return render(request, "forbidden.html", page, status_code=403)
    return user


async def permitted_form(
    request: Request, action: Action, *, back: str
) -> tuple[User, FormData] | Response:
    """permitted(), then the posted form with its CSRF token checked: (user, form), or the
    response to send (sign in, 403, or back to `back` with nothing changed when the token is
    missing or wrong). The one check every console form handler makes."""
    user = permitted(request, action)
    if not isinstance(user, User):
        return user
    form = await request.form()
    if not _csrf_ok(request, str(form.get("csrf") or "")):
        return RedirectResponse(back, status_code=303)
    return user, form


def actor_of(user: User) -> str:
    """How the audit log names a console user."""
    return audit.user_actor(user.email)


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(login_url(target), status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    if signed_in_user(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "email": "", "error": None})


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    t = partial(translate, locale_of(request))
    form = {"next": safe_next(next), "email": email}
    if not _csrf_ok(request, csrf):
        request.session.pop(SESSION_CSRF, None)
        return render(request, "login.html", {**form, "error": t("form_expired")}, 400)
    throttle: LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else "?"
    key = f"{email.strip().lower()}|{client}"
    wait = throttle.retry_after(key, clock.now())
    if wait is not None:
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        error = t("login_throttled", minutes=minutes)
        return render(request, "login.html", {**form, "error": error}, 429)
    with unit_of_work(request.app.state.engine) as session:
        user = verify_login(session, email=email, password=password)
    if user is None:
        throttle.record_failure(key, clock.now())
        return render(request, "login.html", {**form, "error": t("login_failed")}, 400)
    throttle.reset(key)
    request.session.clear()
    request.session[SESSION_USER] = user.id
    request.session[SESSION_EMAIL] = user.email
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    if not _csrf_ok(request, csrf):
        return RedirectResponse("/", status_code=303)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def overview(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    with read_only(request.app.state.engine) as session:
        figures = console_overview(session)
    return render(request, "overview.html", {"user": user, "o": figures, "page": "overview"})


@router.get("/audit")
def audit_log(request: Request, entity: str | None = None, before: str | None = None) -> Response:
    user = permitted(request, Action.READ_AUDIT)
    if not isinstance(user, User):
        return user
    before_id = int(before) if before and before.isdigit() else None
    with read_only(request.app.state.engine) as session:
        found = audit.entries(session, entity=entity or None, limit=100, before_id=before_id)
    following = found[-1].id if len(found) == 100 else None
    context = {"user": user, "page": "audit", "entries": found, "entity": entity or "",
               "next": following}  # fmt: skip
    return render(request, "audit.html", context)


@router.get("/openapi.json")
def openapi(request: Request) -> Response:
    if signed_in_user(request) is None:
        return _to_login(request)
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def docs(request: Request) -> Response:
    if signed_in_user(request) is None:
        return _to_login(request)
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Advocado API",
        swagger_js_url="/static/swagger/swagger-ui-bundle.js",
        swagger_css_url="/static/swagger/swagger-ui.css",
        swagger_favicon_url="/static/swagger/favicon-32x32.png",
    )
