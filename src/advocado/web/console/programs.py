"""Console page of referral programs: their funnel figures, and applying a program's YAML
(marketers and admins only, checked here on the server whatever the page shows).

Each handler parses the request, calls one service, and renders a template."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from advocado.domain.programs import ProgramError
from advocado.domain.roles import Action, may
from advocado.services import programs, referrals
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
        stats = referrals.program_stats(session)
    return {
        "user": user,
        "page": "programs",
        "stats": stats,
        "error": None,
        "source": "",
        "can_edit": may(user.role, Action.EDIT_PROGRAMS),
        **extra,
    }


@router.get("/programs")
def program_list(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    return render(request, "programs.html", _page(request, user))


@router.post("/programs")
async def program_apply(request: Request) -> Response:
    found = await permitted_form(request, Action.EDIT_PROGRAMS, back="/programs")
    if isinstance(found, Response):
        return found
    user, form = found
    source = str(form.get("source") or "")
    try:
        data = yaml.safe_load(source)
        if not isinstance(data, dict):
            raise ProgramError("file", "expected a mapping at the top / 顶层应为映射")
        with unit_of_work(request.app.state.engine) as session:
            programs.apply_program(session, data, actor=actor_of(user))
    except yaml.YAMLError as error:
        problem = ProgramError("file", str(error))
        return render(
            request, "programs.html", _page(request, user, error=problem, source=source), 400
        )
    except ProgramError as error:
        return render(
            request, "programs.html", _page(request, user, error=error, source=source), 400
        )
    return RedirectResponse("/programs", status_code=303)


@router.get("/referrals/review")
def review_queue(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    with read_only(request.app.state.engine) as session:
        held = referrals.review_queue(session)
    context = {"user": user, "page": "review", "held": held, "error": None,
               "can_decide": may(user.role, Action.REVIEW_REFERRALS)}  # fmt: skip
    return render(request, "review.html", context)


@router.post("/referrals/{referral_id}/decide")
async def review_decide(request: Request, referral_id: int) -> Response:
    found = await permitted_form(request, Action.REVIEW_REFERRALS, back="/referrals/review")
    if isinstance(found, Response):
        return found
    user, form = found
    decision = str(form.get("decision") or "")
    if decision not in ("approve", "reject"):
        return Response("decision: approve or reject / 请选择通过或拒绝", 400)
    try:
        referrals.decide(request.app.state.engine, referral_id=referral_id,
                         approve=decision == "approve", note=str(form.get("note") or "")[:500],
                         actor=actor_of(user))  # fmt: skip
    except referrals.NotInReview as error:
        return Response(str(error), 409)
    return RedirectResponse("/referrals/review", status_code=303)
