"""CSV of every console list page: `/export/{list}.csv` with the page's own query parameters
gives the rows that page shows (the same selector, the same filter and page), written by the
one CSV writer (services.exports -> services.dashboard.csv_text). Readers as the page: a list
only some roles may see (audit log, users) is refused the same way.

Each handler parses the request, calls the list's selector, and streams the CSV."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from advocado.domain import messaging as message_rules
from advocado.domain.roles import Action
from advocado.services import (
    audit,
    challenges,
    customers,
    exports,
    messaging,
    plans,
    playbooks,
    referrals,
    segments,
    tasks,
    users,
)
from advocado.store.db import read_only
from advocado.store.models import User
from advocado.web.console.routes import _to_login, permitted, signed_in_user

router = APIRouter(include_in_schema=False)

Params = dict[str, str]
MESSAGES_PAGE = 100  # as web/console/messages.PAGE_SIZE
SEGMENT_PAGE = 50  # as web/console/segments.PAGE_SIZE


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _customers(session: Session, p: Params, user: User) -> list[Any]:
    return customers.search_customers(session, query=p.get("q", "")[:200])


def _profile(section: str) -> Callable[[Session, Params, User], list[Any]]:
    def rows(session: Session, p: Params, user: User) -> list[Any]:
        found = customers.customer_profile(session, external_id=p.get("customer", ""))
        return found[section]

    return rows


def _segments(session: Session, p: Params, user: User) -> list[Any]:
    return segments.list_segments(session)


def _segment_members(session: Session, p: Params, user: User) -> list[Any]:
    from advocado.domain import segments as rules

    view = segments.get_segment(session, slug=p.get("slug", ""))
    found, _ = segments.member_page(session, rules.parse_filters(view.filters),
                                    limit=SEGMENT_PAGE, after=_number(p.get("after")))  # fmt: skip
    return found


def _promoters(session: Session, p: Params, user: User) -> list[Any]:
    tab = p.get("persona", "emotional")
    tab = tab if tab in segments.PERSONA_TABS else "emotional"
    return segments.promoters_by_persona(
        session, tab=tab, limit=SEGMENT_PAGE, after=_number(p.get("after"))
    ).members


def _review(session: Session, p: Params, user: User) -> list[Any]:
    return referrals.review_queue(session)


def _tasks(session: Session, p: Params, user: User) -> list[Any]:
    status = p.get("status", "open")
    status = status if status in tasks.FILTERS else "open"
    return tasks.list_tasks(session, status=status, kind=p.get("kind") or None,
                            user_id=user.id, user_role=user.role, limit=200)  # fmt: skip


def _entries(session: Session, p: Params, user: User) -> list[Any]:
    status = p.get("status", "pending")
    return challenges.list_entries(
        session, slug=p.get("slug", ""),
        status=None if status in ("all", "featured") else status,
        featured=True if status == "featured" else None, limit=200,
    )  # fmt: skip


def _audit(session: Session, p: Params, user: User) -> list[Any]:
    return audit.entries(session, entity=p.get("entity") or None, limit=100,
                         before_id=_number(p.get("before")))  # fmt: skip


def _users(session: Session, p: Params, user: User) -> list[Any]:
    return users.list_users(session)


def _plans(session: Session, p: Params, user: User) -> list[Any]:
    return [plans.plan_view(session, plan=plan) for plan in plans.list_plans(session)]


def _enrolments(session: Session, p: Params, user: User) -> list[Any]:
    status = p.get("status") or None
    return playbooks.enrolments(session, name=p.get("name", ""), status=status, limit=200)


# name -> (selector, the Action a reader needs, or None for every signed-in user)
LISTS: dict[str, tuple[Callable[[Session, Params, User], list[Any]], Action | None]] = {
    "customers": (_customers, None),
    "customer-ledger": (_profile("ledger"), None),
    "customer-coupons": (_profile("coupons"), None),
    "customer-orders": (_profile("orders"), None),
    "customer-responses": (_profile("responses"), None),
    "customer-referrals": (_profile("referrals_made"), None),
    "customer-referred-by": (_profile("referred_by"), None),
    "customer-messages": (_profile("messages"), None),
    "customer-tasks": (_profile("tasks"), None),
    "customer-entries": (_profile("entries"), None),
    "segments": (_segments, None),
    "segment-members": (_segment_members, None),
    "promoters": (_promoters, None),
    "review": (_review, None),
    "tasks": (_tasks, None),
    "challenge-entries": (_entries, None),
    "audit": (_audit, Action.READ_AUDIT),
    "users": (_users, Action.MANAGE_USERS),
    "plans": (_plans, None),
    "enrolments": (_enrolments, None),
}
# The message lists read through the engine (messaging's own transactions).
ENGINE_LISTS = ("messages", "dead-letters")
NOT_FOUND = (
    customers.CustomerNotFound,
    segments.SegmentNotFound,
    challenges.UnknownChallenge,
    playbooks.UnknownPlaybook,
)


def _messages(request: Request, p: Params) -> list[Any]:
    engine = request.app.state.engine
    if request.path_params["name"] == "dead-letters":
        return [row for status in (message_rules.DEAD, message_rules.UNCERTAIN)
                for row in messaging.list_messages(engine, status=status, limit=500)]  # fmt: skip
    status = p.get("status", "")
    return messaging.list_messages(
        engine, status=status if status in message_rules.STATUSES else None,
        template=p.get("template") or None, reason=p.get("reason") or None,
        before_id=_number(p.get("before")), limit=MESSAGES_PAGE,
    )  # fmt: skip


@router.get("/export/{name}.csv")
def export(request: Request, name: str) -> Response:
    if name not in LISTS and name not in ENGINE_LISTS:
        return Response(f"no list {name!r} / 没有该列表", 404)
    action = LISTS[name][1] if name in LISTS else None
    if action is not None:
        user = permitted(request, action)
        if not isinstance(user, User):
            return user
    else:
        found = signed_in_user(request)
        if found is None:
            return _to_login(request)
        user = found
    params = dict(request.query_params)
    try:
        if name in ENGINE_LISTS:
            table = exports.table(name, _messages(request, params))
        else:
            with read_only(request.app.state.engine) as session:
                # flattened inside the transaction: the rows' attributes are still loadable
                table = exports.table(name, LISTS[name][0](session, params, user))
    except NOT_FOUND as error:
        return Response(str(error) or "not found / 未找到", 404)
    filename = name + "".join(f"-{v}" for k, v in sorted(params.items()) if v and k != "lang")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)[:120]
    headers = {"Content-Disposition": f'attachment; filename="{safe}.csv"',
               "Cache-Control": "no-store"}  # fmt: skip
    return StreamingResponse(exports.csv_text(table), headers=headers,
                             media_type="text/csv; charset=utf-8")  # fmt: skip
