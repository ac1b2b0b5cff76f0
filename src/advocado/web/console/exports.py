"""CSV of every console list page: `/export/{list}.csv` with the page's own query parameters
gives the whole list that page shows a page of (the same selector and filter, every page,
streamed), written by the one CSV writer (services.exports). Readers as the page: a list only
some roles may see (audit log, users) is refused the same way. A search (customers?q=) gives
its matches, as the page does.

The handler parses the request, walks the list's pages, and streams the CSV."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
Cursor = Any  # where the next page starts (a keyset id or an offset); None: the first page
Page = tuple[list[Any], Cursor]  # the rows, and the cursor of the next page (None: the end)
Pager = Callable[[Session, Params, User, Cursor], Page]
PAGE = 500  # rows read per transaction while an export walks a list


def _whole(rows: Callable[[Session, Params, User], list[Any]]) -> Pager:
    """A list that is short by nature (segments, users, plans): one page."""
    return lambda session, p, user, cursor: (rows(session, p, user), None)


def _by_id(rows: list[Any], key: Callable[[Any], int]) -> Cursor:
    """Keyset paging: the next page starts after the last row's id, if this page was full."""
    return key(rows[-1]) if len(rows) == PAGE else None


def _by_offset(rows: list[Any], cursor: Cursor) -> Cursor:
    return (cursor or 0) + PAGE if len(rows) == PAGE else None


def _customers(session: Session, p: Params, user: User, cursor: Cursor) -> Page:
    query = p.get("q", "")[:200].strip()
    if query:  # a search answers its best matches, as the page shows them
        return customers.search_customers(session, query=query), None
    found = customers.newest_customers(session, limit=PAGE, before_id=cursor)
    return found, _by_id(found, lambda c: c.id)


def _profile(section: str) -> Pager:
    def rows(session: Session, p: Params, user: User, cursor: Cursor) -> Page:
        found = customers.customer_profile(session, external_id=p.get("customer", ""), limit=None)
        return found[section], None

    return rows


def _segment_members(session: Session, p: Params, user: User, cursor: Cursor) -> Page:
    from advocado.domain import segments as rules

    view = segments.get_segment(session, slug=p.get("slug", ""))
    return segments.member_page(
        session, rules.parse_filters(view.filters), limit=PAGE, after=cursor
    )


def _promoters(session: Session, p: Params, user: User, cursor: Cursor) -> Page:
    tab = p.get("persona", "emotional")
    tab = tab if tab in segments.PERSONA_TABS else "emotional"
    return segments.member_page(session, segments.persona_filter(tab), limit=PAGE, after=cursor)


def _tasks(session: Session, p: Params, user: User, cursor: Cursor) -> Page:
    status = p.get("status", "open")
    status = status if status in tasks.FILTERS else "open"
    found = tasks.list_tasks(session, status=status, kind=p.get("kind") or None,
                             user_id=user.id, user_role=user.role, limit=PAGE,
                             offset=cursor or 0)  # fmt: skip
    return found, _by_offset(found, cursor)


def _entries(session: Session, p: Params, user: User, cursor: Cursor) -> Page:
    status = p.get("status", "pending")
    found = challenges.list_entries(
        session, slug=p.get("slug", ""),
        status=None if status in ("all", "featured") else status,
        featured=True if status == "featured" else None, limit=PAGE, offset=cursor or 0,
    )  # fmt: skip
    return found, _by_offset(found, cursor)


def _audit(session: Session, p: Params, user: User, cursor: Cursor) -> Page:
    found = audit.entries(session, entity=p.get("entity") or None, limit=PAGE, before_id=cursor)
    return found, _by_id(found, lambda e: e.id)


def _enrolments(session: Session, p: Params, user: User, cursor: Cursor) -> Page:
    found = playbooks.enrolments(session, name=p.get("name", ""), status=p.get("status") or None,
                                 limit=PAGE, after=cursor)  # fmt: skip
    return found, _by_id(found, lambda e: e.id)


# name -> (the list's pager, the Action a reader needs, or None for every signed-in user)
LISTS: dict[str, tuple[Pager, Action | None]] = {
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
    "segments": (_whole(lambda session, p, user: segments.list_segments(session)), None),
    "segment-members": (_segment_members, None),
    "promoters": (_promoters, None),
    "review": (_whole(lambda session, p, user: referrals.review_queue(session)), None),
    "tasks": (_tasks, None),
    "challenge-entries": (_entries, None),
    "audit": (_audit, Action.READ_AUDIT),
    "users": (_whole(lambda session, p, user: users.list_users(session)), Action.MANAGE_USERS),
    "plans": (
        _whole(
            lambda session, p, user: [
                plans.plan_view(session, plan=plan) for plan in plans.list_plans(session)
            ]
        ),
        None,
    ),  # fmt: skip
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


def _message_pages(request: Request, p: Params) -> Iterator[list[Any]]:
    engine = request.app.state.engine
    if request.path_params["name"] == "dead-letters":
        statuses: list[str | None] = [message_rules.DEAD, message_rules.UNCERTAIN]
    else:
        status = p.get("status", "")
        statuses = [status if status in message_rules.STATUSES else None]
    for status in statuses:
        before = None
        while True:
            found = messaging.list_messages(
                engine, status=status, template=p.get("template") or None,
                reason=p.get("reason") or None, before_id=before, limit=PAGE,
            )  # fmt: skip
            yield found
            before = _by_id(found, lambda m: m["id"])
            if before is None:
                break


def _pages(request: Request, name: str, p: Params, user: User) -> Iterator[list[Any]]:
    """Every page of the list, each read in a transaction of its own (flattened inside it,
    while the rows' attributes can still load), so a long export holds no lock."""
    if name in ENGINE_LISTS:
        yield from _message_pages(request, p)
        return
    cursor: Cursor = None
    while True:
        with read_only(request.app.state.engine) as session:
            found, cursor = LISTS[name][0](session, p, user, cursor)
            yield [exports.flatten(item) for item in found]
        if cursor is None:
            return


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
    # The whole list the page shows one page of: its filters, from its first row on.
    params = {k: v for k, v in request.query_params.items() if k not in ("after", "before")}
    pages = _pages(request, name, params, user)
    try:
        first = next(pages)  # a missing customer/segment is a 404 before anything is sent
    except NOT_FOUND as error:
        return Response(str(error) or "not found / 未找到", 404)
    filename = name + "".join(f"-{v}" for k, v in sorted(params.items()) if v and k != "lang")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)[:120]
    headers = {"Content-Disposition": f'attachment; filename="{safe}.csv"',
               "Cache-Control": "no-store"}  # fmt: skip
    return StreamingResponse(exports.csv_pages(name, first, pages), headers=headers,
                             media_type="text/csv; charset=utf-8")  # fmt: skip
