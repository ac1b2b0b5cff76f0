"""REST API v1: program plans and plan vs actual (services.plans, the same figures as the
dashboard's plan panel)."""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations.

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from advocado.services import plans
from advocado.store.db import read_only
from advocado.web.api.routes import PREFIX, _ApiRoute, _json, api_key

router = APIRouter(
    prefix=f"{PREFIX}/plans",
    tags=["Plans"],
    route_class=_ApiRoute,
    dependencies=[Depends(api_key)],
    responses={
        401: {"description": "No valid API key."},
        403: {"description": "The key lacks the scope."},
    },
)


@router.get("", summary="Every program plan with its figures (plan vs actual)")
def list_plans(request: Request) -> Response:
    with read_only(request.app.state.engine) as session:
        found = [plans.plan_view(session, plan=p) for p in plans.list_plans(session)]
    return _json(200, {"plans": found})


@router.get(
    "/{slug}",
    summary="One plan: goals, personas, recruitment, and each actual with percent done",
    responses={404: {"description": "No such plan."}},
)
def show_plan(request: Request, slug: str) -> Response:
    with read_only(request.app.state.engine) as session:
        try:
            found = plans.plan_view(session, plan=plans.plan_by_slug(session, slug))
        except plans.UnknownPlan as error:
            return _json(404, {"detail": str(error)})
    return _json(200, found)
