"""Console pages of customers: search (external id, name, email) and one customer's profile.
Read only.

Each handler parses the request, calls one service, and renders a template."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from advocado.services import customers
from advocado.store.db import read_only
from advocado.web.console.routes import _to_login, render, signed_in_user
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


@router.get("/customers/{external_id:path}")
def customer_page(request: Request, external_id: str) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    try:
        with read_only(request.app.state.engine) as session:
            profile = customers.customer_profile(session, external_id=external_id)
    except customers.CustomerNotFound as error:
        context = {"user": user, "page": "customers", "q": external_id, "found": [],
                   "limit": customers.SEARCH_LIMIT, "error": str(error)}  # fmt: skip
        return render(request, "customers.html", context, 404)
    context = {"user": user, "page": "customers", "p": profile, "highlight": highlight,
               "mine": f"customer:{profile['customer'].id}:"}  # fmt: skip
    return render(request, "customer.html", context)
