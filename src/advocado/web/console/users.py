"""Console page of users (admins only): list, add with a role, disable or enable. Every
change is audited by services.users in its own transaction.

Each handler parses the request, calls one service, and renders a template."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from advocado.domain.roles import Action, Role
from advocado.services import users
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import User
from advocado.web.console.routes import _csrf_ok, actor_of, permitted, render

router = APIRouter(include_in_schema=False)


def _page(request: Request, user: User, **extra: Any) -> dict[str, Any]:
    with read_only(request.app.state.engine) as session:
        found = users.list_users(session)
    return {"user": user, "page": "users", "users": found, "roles": [r.value for r in Role],
            "error": None, "email": "", **extra}  # fmt: skip


@router.get("/users")
def user_list(request: Request) -> Response:
    user = permitted(request, Action.MANAGE_USERS)
    if not isinstance(user, User):
        return user
    return render(request, "users.html", _page(request, user))


@router.post("/users")
async def user_create(request: Request) -> Response:
    user = permitted(request, Action.MANAGE_USERS)
    if not isinstance(user, User):
        return user
    form = await request.form()
    if not _csrf_ok(request, str(form.get("csrf") or "")):
        return RedirectResponse("/users", status_code=303)
    email = str(form.get("email") or "")
    try:
        with unit_of_work(request.app.state.engine) as session:
            users.create_user(session, email=email, password=str(form.get("password") or ""),
                              role=str(form.get("role") or ""), actor=actor_of(user))  # fmt: skip
    except ValueError as error:
        return render(request, "users.html", _page(request, user, error=str(error),
                                                    email=email), 400)  # fmt: skip
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{user_id}/disabled")
async def user_disable(request: Request, user_id: int) -> Response:
    user = permitted(request, Action.MANAGE_USERS)
    if not isinstance(user, User):
        return user
    form = await request.form()
    if not _csrf_ok(request, str(form.get("csrf") or "")):
        return RedirectResponse("/users", status_code=303)
    with read_only(request.app.state.engine) as session:
        target = session.get(User, user_id)
    if target is None:
        return Response("no such user", 404)
    if target.id == user.id:
        return Response("you cannot disable yourself / 不能停用自己的账号", 400)
    with unit_of_work(request.app.state.engine) as session:
        users.set_disabled(session, email=target.email, disabled=form.get("disabled") == "yes",
                           actor=actor_of(user))  # fmt: skip
    return RedirectResponse("/users", status_code=303)
