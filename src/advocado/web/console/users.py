"""Console page of users (admins only): list, add with a role, disable or enable, who gets
the weekly summary email and when it goes out; and "my account" (every user: one's own
weekly summary choice). Every change is audited by the service in its own transaction.

Each handler parses the request, calls one service, and renders a template."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from advocado.channels.weekly_email import LOCALES
from advocado.domain.records import FieldError
from advocado.domain.roles import Action, Role
from advocado.services import users, weekly
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import User
from advocado.web.console.routes import (
    _csrf_ok,
    _to_login,
    actor_of,
    permitted,
    permitted_form,
    render,
    signed_in_user,
)

router = APIRouter(include_in_schema=False)


def _page(request: Request, user: User, **extra: Any) -> dict[str, Any]:
    with read_only(request.app.state.engine) as session:
        found = users.list_users(session)
        plan = weekly.schedule(session)
    return {"user": user, "page": "users", "users": found, "roles": [r.value for r in Role],
            "error": None, "email": "", "schedule": plan, "days": weekly.DAYS,
            "locales": LOCALES, **extra}  # fmt: skip


@router.get("/users")
def user_list(request: Request) -> Response:
    user = permitted(request, Action.MANAGE_USERS)
    if not isinstance(user, User):
        return user
    return render(request, "users.html", _page(request, user))


@router.post("/users")
async def user_create(request: Request) -> Response:
    found = await permitted_form(request, Action.MANAGE_USERS, back="/users")
    if isinstance(found, Response):
        return found
    user, form = found
    email = str(form.get("email") or "")
    try:
        with unit_of_work(request.app.state.engine) as session:
            users.create_user(session, email=email, password=str(form.get("password") or ""),
                              role=str(form.get("role") or ""), actor=actor_of(user))  # fmt: skip
    except ValueError as error:
        return render(request, "users.html", _page(request, user, error=str(error),
                                                    email=email), 400)  # fmt: skip
    return RedirectResponse("/users", status_code=303)


def _target(request: Request, user_id: int) -> User | None:
    """The user a handler acts on (the path's id)."""
    with read_only(request.app.state.engine) as session:
        return session.get(User, user_id)


@router.post("/users/{user_id}/disabled")
async def user_disable(request: Request, user_id: int) -> Response:
    found = await permitted_form(request, Action.MANAGE_USERS, back="/users")
    if isinstance(found, Response):
        return found
    user, form = found
    target = _target(request, user_id)
    if target is None:
        return Response("no such user / 没有该用户", 404)
    if target.id == user.id:
        return Response("you cannot disable yourself / 不能停用自己的账号", 400)
    with unit_of_work(request.app.state.engine) as session:
        users.set_disabled(session, email=target.email, disabled=form.get("disabled") == "yes",
                           actor=actor_of(user))  # fmt: skip
    return RedirectResponse("/users", status_code=303)


# --- the weekly summary email: one's own choice (/account), others' and the schedule (admin) --


def _weekly_context(request: Request, user: User) -> dict[str, Any]:
    with read_only(request.app.state.engine) as session:
        plan = weekly.schedule(session)
    return {"schedule": plan, "days": weekly.DAYS, "locales": LOCALES}


@router.get("/account")
def account(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    context = {"user": user, "page": "account", "error": None, **_weekly_context(request, user)}
    return render(request, "account.html", context)


def _set_weekly(request: Request, user: User, email: str, on: bool, locale: str) -> str | None:
    try:
        with unit_of_work(request.app.state.engine) as session:
            weekly.set_preferences(session, email=email, weekly_summary=on, locale=locale,
                                   actor=actor_of(user))  # fmt: skip
    except FieldError as error:
        return str(error)
    return None


@router.post("/account/weekly-summary")
async def account_weekly(request: Request) -> Response:
    """One's own preference (like signing out, open to every role: it changes nothing of the
    brand's), audited."""
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    form = await request.form()
    if not _csrf_ok(request, str(form.get("csrf") or "")):
        return RedirectResponse("/account", status_code=303)
    error = _set_weekly(request, user, user.email, form.get("weekly_summary") == "on",
                        str(form.get("locale") or ""))  # fmt: skip
    if error:
        context = {"user": user, "page": "account", "error": error,
                   **_weekly_context(request, user)}  # fmt: skip
        return render(request, "account.html", context, 400)
    return RedirectResponse("/account", status_code=303)


@router.post("/users/{user_id}/weekly-summary")
async def user_weekly(request: Request, user_id: int) -> Response:
    found = await permitted_form(request, Action.MANAGE_USERS, back="/users")
    if isinstance(found, Response):
        return found
    user, form = found
    target = _target(request, user_id)
    if target is None:
        return Response("no such user / 没有该用户", 404)
    error = _set_weekly(request, user, target.email, form.get("weekly_summary") == "on",
                        str(form.get("locale") or ""))  # fmt: skip
    if error:
        return render(request, "users.html", _page(request, user, error=error), 400)
    return RedirectResponse("/users", status_code=303)


@router.post("/users/weekly-schedule")
async def weekly_schedule(request: Request) -> Response:
    found = await permitted_form(request, Action.MANAGE_SETTINGS, back="/users")
    if isinstance(found, Response):
        return found
    user, form = found
    try:
        with unit_of_work(request.app.state.engine) as session:
            weekly.set_schedule(session, day=str(form.get("day") or ""),
                                hour=str(form.get("hour") or ""),
                                timezone=str(form.get("timezone") or ""),
                                actor=actor_of(user))  # fmt: skip
    except FieldError as error:
        return render(request, "users.html", _page(request, user, error=str(error)), 400)
    return RedirectResponse("/users", status_code=303)
