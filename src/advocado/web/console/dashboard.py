"""The measurement dashboard in the console: the page (filter form + one panel per figure,
each loaded by htmx), each panel as an HTML fragment with its ECharts chart, the drill-down
list behind every figure, and CSV exports of all of them. The figures come from
services.dashboard, the same functions the JSON API and the CSV use.

Each handler parses the request, calls one service, and renders a template."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from advocado.domain.dashboard import Filters, parse_filters
from advocado.domain.records import FieldError, amount_from_major, currency
from advocado.domain.roles import Action, may
from advocado.services import dashboard
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import User
from advocado.web.console import dashboard_activation as activation_web
from advocado.web.console.routes import (
    _csrf_ok,
    _to_login,
    actor_of,
    locale_of,
    permitted,
    render,
    signed_in_user,
    templates,
)
from advocado.web.i18n import translate

router = APIRouter(include_in_schema=False)


def _major(value: object) -> str:
    """Minor units (fen, cents) shown as major: 12345 -> 123.45."""
    if value is None or value == "":
        return "—"
    return f"{int(value) / 100:,.2f}"  # type: ignore[call-overload]


def _ratio(value: object) -> str:
    return "—" if value is None else f"{float(value):.2f}"  # type: ignore[arg-type]


def _percent(value: object) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"  # type: ignore[arg-type]


templates.env.filters["major"] = _major
templates.env.filters["ratio"] = _ratio
templates.env.filters["percent"] = _percent
activation_web.install(templates.env)
# Columns of drill-down lists that hold a customer's external id: linked to their profile.
CUSTOMER_COLUMNS = ("customer", "advocate", "friend")
DRILL_KEYS = (
    "period",
    "survey",
    "category",
    "dimension",
    "value",
    "stage",
    "group",
    "plan",
    "goal",
    *("level", "playbook", "version", "step", "outcome", "reason", "challenge", "site"),
)


def _filters(request: Request) -> tuple[Filters, FieldError | None]:
    try:
        return parse_filters(request.query_params), None
    except FieldError as error:
        return Filters(), error


def _query(f: Filters, **extra: str) -> str:
    return urlencode({**f.as_params(), **extra})


def chart(name: str, found: dashboard.Panel, lang: str) -> dict[str, Any] | None:
    """The ECharts option of a panel (None: the panel is a table only). Each data point
    carries the drill-down query it opens (`drill`), read by static/dashboard.js."""

    def t(key: str) -> str:
        return translate(lang, key)

    rows = found.rows
    if name in activation_web.CHARTS:
        return activation_web.CHARTS[name](found, lang)
    if name == "nps":
        periods = sorted({r["period"] for r in rows})
        surveys = sorted({r["survey"] for r in rows})
        mix: dict[str, dict[str, int]] = {p: {"promoters": 0, "passives": 0, "detractors": 0}
                                          for p in periods}  # fmt: skip
        for r in rows:
            for k in mix[r["period"]]:
                mix[r["period"]][k] += r[k]
        series: list[dict[str, Any]] = []
        for key, category_name in (("detractors", "detractor"), ("passives", "passive"),
                                   ("promoters", "promoter")):  # fmt: skip
            series.append({"name": t(key), "type": "bar", "stack": "mix", "yAxisIndex": 1,
                           "data": [{"value": mix[p][key],
                                     "drill": {"period": p, "category": category_name}}
                                    for p in periods]})  # fmt: skip
        for survey in surveys:
            by = {r["period"]: r for r in rows if r["survey"] == survey}
            series.append({"name": f"NPS · {survey or '—'}", "type": "line",
                           "data": [{"value": by[p]["nps"] if p in by else None,
                                     "drill": {"period": p, "survey": survey}}
                                    for p in periods]})  # fmt: skip
        return {"tooltip": {"trigger": "axis"}, "legend": {"type": "scroll"},
                "xAxis": {"type": "category", "data": periods},
                "yAxis": [{"type": "value", "min": -100, "max": 100, "name": "NPS"},
                          {"type": "value", "name": t("responses")}],
                "series": series}  # fmt: skip
    if name in ("promoters", "referrals", "clv"):
        if name == "promoters":
            labels = [f"{r['dimension']}: {r['value']}" for r in rows]
            values = [r["promoters"] for r in rows]
            drills = [{"dimension": r["dimension"], "value": r["value"]} for r in rows]
        elif name == "referrals":
            labels = [r["stage"] for r in rows]
            values = [r["count"] for r in rows]
            drills = [{"stage": r["stage"]} for r in rows]
        else:
            labels = [r["group"] for r in rows]
            values = [r["value_12m"] or 0 for r in rows]
            drills = [{"group": r["group"]} for r in rows]
        return {"tooltip": {}, "grid": {"containLabel": True},
                "xAxis": {"type": "value"}, "yAxis": {"type": "category", "data": labels,
                                                       "inverse": True},
                "series": [{"type": "bar", "name": t(f"p_{name}"),
                            "data": _points(values, drills)}]}  # fmt: skip
    return None


def _points(values: list[Any], drills: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [{"value": v, "drill": d} for v, d in zip(values, drills, strict=True)]


def _drill_links(name: str, found: dashboard.Panel, f: Filters) -> list[str]:
    """Per row of a panel's table, the drill-down it opens."""
    keys = [k for k in DRILL_KEYS if found.rows and k in found.rows[0]]
    links = []
    for row in found.rows:
        extra = {k: str(row[k]) for k in keys}
        if name == "k_factor":
            extra = {}
        links.append(f"/dashboard/drill/{name}?{_query(f, **extra)}")
    return links


@router.get("/dashboard")
def dashboard_page(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    f, error = _filters(request)
    with read_only(request.app.state.engine) as session:
        choices = dashboard.filter_choices(session)
        cac = dashboard.paid_cac(session)
    context = {"user": user, "page": "dashboard", "f": f, "error": error, "choices": choices,
               "panels": list(dashboard.PANELS), "query": _query(f), "cac": cac,
               "can_set_cac": may(user.role, Action.SET_MARKETING_FIGURES)}  # fmt: skip
    return render(request, "dashboard.html", context, 400 if error else 200)


@router.get("/dashboard/panels/{name}")
def dashboard_panel(request: Request, name: str) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    if name not in dashboard.PANELS:
        return Response("no such figure", 404)
    f, error = _filters(request)
    if error is not None:
        return render(request, "dashboard_error.html", {"error": error}, 400)
    try:
        with read_only(request.app.state.engine) as session:
            found = dashboard.panel(session, name, f)
    except FieldError as problem:
        return render(request, "dashboard_error.html", {"error": problem}, 400)
    context = {"name": name, "panel": found, "links": _drill_links(name, found, f),
               "chart": chart(name, found, locale_of(request)), "query": _query(f),
               "plan_query": _query(f),
               "drill_base": f"/dashboard/drill/{name}?{_query(f)}"}  # fmt: skip
    return render(request, "dashboard_panel.html", context)


def _drill_key(params: Mapping[str, str]) -> dict[str, str]:
    return {k: params[k] for k in DRILL_KEYS if k in params}


def _csv(found: dashboard.Panel, filename: str) -> StreamingResponse:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"',
               "Cache-Control": "no-store"}  # fmt: skip
    return StreamingResponse(dashboard.csv_text(found), headers=headers,
                             media_type="text/csv; charset=utf-8")  # fmt: skip


@router.get("/dashboard/export/{name}.csv")
def dashboard_export(request: Request, name: str) -> Response:
    if signed_in_user(request) is None:
        return _to_login(request)
    if name not in dashboard.PANELS:
        return Response("no such figure", 404)
    try:
        f = parse_filters(request.query_params)
        with read_only(request.app.state.engine) as session:
            found = dashboard.panel(session, name, f)
    except FieldError as error:
        return Response(str(error), 400)
    return _csv(found, f"{name}.csv")


@router.get("/dashboard/drill/{name}.csv")
def drill_export(request: Request, name: str) -> Response:
    if signed_in_user(request) is None:
        return _to_login(request)
    if name not in dashboard.DRILLS:
        return Response("no such figure", 404)
    try:
        f = parse_filters(request.query_params)
        with read_only(request.app.state.engine) as session:
            found = dashboard.drill(session, name, f, _drill_key(request.query_params),
                                    limit=None)  # fmt: skip
    except FieldError as error:
        return Response(str(error), 400)
    return _csv(found, f"{name}-detail.csv")


@router.get("/dashboard/drill/{name}")
def drill_page(request: Request, name: str) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    if name not in dashboard.DRILLS:
        return Response("no such figure", 404)
    key = _drill_key(request.query_params)
    context: dict[str, Any] = {"user": user, "page": "dashboard", "name": name, "key": key,
                               "error": None, "panel": None,
                               "customer_columns": CUSTOMER_COLUMNS}  # fmt: skip
    try:
        f = parse_filters(request.query_params)
        with read_only(request.app.state.engine) as session:
            context["panel"] = dashboard.drill(session, name, f, key, limit=dashboard.DRILL_LIMIT)
    except FieldError as error:
        context["error"] = error
        f = Filters()
    context["csv"] = f"/dashboard/drill/{name}.csv?{_query(f, **key)}"
    context["back"] = f"/dashboard?{_query(f)}"
    return render(request, "dashboard_drill.html", context, 400 if context["error"] else 200)


@router.post("/dashboard/paid-cac")
def set_paid_cac(
    request: Request,
    amount: Annotated[str, Form()] = "",
    currency_code: Annotated[str, Form(alias="currency")] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    user = permitted(request, Action.SET_MARKETING_FIGURES)
    if not isinstance(user, User):
        return user
    if not _csrf_ok(request, csrf):
        return RedirectResponse("/dashboard", status_code=303)
    try:
        code = currency(currency_code)
        minor = amount_from_major(amount, code)
        with unit_of_work(request.app.state.engine) as session:
            dashboard.set_paid_cac(session, amount=minor, currency=code, actor=actor_of(user))
    except FieldError as error:
        return render(request, "dashboard_error.html", {"error": error}, 400)
    return RedirectResponse("/dashboard", status_code=303)
