"""Console page of program plans: each plan with its figures (plan vs actual), and applying
a plan's YAML (marketers and admins only, checked here on the server whatever the page shows;
every change audited).

Each handler parses the request, calls one service, and renders a template."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from advocado.domain.plans import PlanError
from advocado.domain.roles import Action, may
from advocado.services import plans
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import User
from advocado.web.console.routes import (
    _to_login,
    actor_of,
    permitted_form,
    render,
    signed_in_user,
)

router = APIRouter(include_in_schema=False)


def _page(request: Request, user: User, **extra: Any) -> dict[str, Any]:
    with read_only(request.app.state.engine) as session:
        found = [plans.plan_view(session, plan=p) for p in plans.list_plans(session)]
    return {"user": user, "page": "plans", "plans": found, "error": None, "source": "",
            "can_edit": may(user.role, Action.EDIT_PLANS), **extra}  # fmt: skip


@router.get("/plans")
def plan_list(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    return render(request, "plans.html", _page(request, user))


@router.post("/plans")
async def plan_apply(request: Request) -> Response:
    found = await permitted_form(request, Action.EDIT_PLANS, back="/plans")
    if isinstance(found, Response):
        return found
    user, form = found
    source = str(form.get("source") or "")
    try:
        data = plans.read_plan_text(source, source="line")
        with unit_of_work(request.app.state.engine) as session:
            plans.apply_plan(session, data=data, actor=actor_of(user))
    except PlanError as error:
        return render(request, "plans.html", _page(request, user, error=error, source=source), 400)
    return RedirectResponse("/plans", status_code=303)
