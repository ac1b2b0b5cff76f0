"""Console pages of customers: search (external id, name, email), one customer's profile, and
the manual ledger correction form on it (Action.CORRECT_LEDGER).

Each handler parses the request, calls one service, and renders a template."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from advocado.domain.roles import Action, may
from advocado.services import customers, ledger
from advocado.store.db import read_only
from advocado.store.models import User
from advocado.web.console.routes import (
    _csrf_ok,
    _to_login,
    actor_of,
    permitted,
    render,
    signed_in_user,
)
from advocado.web.console.segments import highlight

router = APIRouter(include_in_schema=False)


@router.get("/customers")
def customer_search(request: Request, q: str = "") -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    with read_only(request.app.state.engine) as session:
        found = customers.search_customers(session, query=q[:200])
    context = {"user": user, "page": "customers", "q": q, "found": found,
               "limit": customers.SEARCH_LIMIT}  # fmt: skip
    return render(request, "customers.html", context)


def _profile_page(
    request: Request, user: User, external_id: str, extra: dict[str, Any], status: int = 200
) -> Response:
    try:
        with read_only(request.app.state.engine) as session:
            profile = customers.customer_profile(session, external_id=external_id)
    except customers.CustomerNotFound as error:
        context = {"user": user, "page": "customers", "q": external_id, "found": [],
                   "limit": customers.SEARCH_LIMIT, "error": str(error)}  # fmt: skip
        return render(request, "customers.html", context, 404)
    # A fresh key per rendered form: a double-click or a resubmit posts the correction once.
    context = {"user": user, "page": "customers", "p": profile, "highlight": highlight,
               "mine": f"customer:{profile['customer'].id}:",
               "may_correct": may(user.role, Action.CORRECT_LEDGER),
               "correction_key": uuid.uuid4().hex, "correction": {}, **extra}  # fmt: skip
    return render(request, "customer.html", context, status)


@router.get("/customers/{external_id:path}")
def customer_page(request: Request, external_id: str, corrected: str = "") -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    return _profile_page(request, user, external_id, {"corrected": corrected})


@router.post("/customers/{external_id:path}/corrections")
def customer_correction(
    request: Request,
    external_id: str,
    amount: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "points",
    currency: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    key: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    user = permitted(request, Action.CORRECT_LEDGER)
    if not isinstance(user, User):
        return user
    form = {"amount": amount, "unit": unit, "currency": currency, "reason": reason}
    if not _csrf_ok(request, csrf):
        error = {"field": "csrf", "message": "form expired / 表单已过期"}
        return _profile_page(request, user, external_id, {"correction": form, **error}, 400)
    try:
        number = int(amount.strip())  # "+50" and "-50" both parse
    except ValueError:
        error = {
            "field": "amount",
            "message": f"amount: {amount!r} is not a whole number / 应为整数",
        }
        return _profile_page(request, user, external_id, {"correction": form, **error}, 400)
    try:
        done = ledger.correct_balance(
            request.app.state.engine, customer=external_id, amount=number, unit=unit,
            currency=currency or None, reason=reason, actor=actor_of(user), key=key,
        )  # fmt: skip
    except ledger.InsufficientBalance as error:
        found = {"field": "amount", "message": str(error)}
        return _profile_page(request, user, external_id, {"correction": form, **found}, 409)
    except ledger.SpendError as error:
        status = 404 if error.field == "customer" else 400
        found = {"field": error.field, "message": str(error)}
        return _profile_page(request, user, external_id, {"correction": form, **found}, status)
    target = request.url_for("customer_page", external_id=external_id)
    note = "again" if done.duplicate else str(done.entry_id)
    return RedirectResponse(str(target.include_query_params(corrected=note)), status_code=303)
