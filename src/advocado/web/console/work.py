"""Console pages for community managers: the task queue (list with filters, detail with the
customer's context and the outcome form) and UGC challenges (list, entries review).

Role checks are made here on the server for every change (domain/roles.py: analysts read only).
Each handler parses the request, calls one service, and renders a template."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from advocado import clock
from advocado.domain.challenges import ChallengeError, ReviewError
from advocado.domain.roles import Action, may
from advocado.domain.tasks import TaskError, TaskKind
from advocado.services import challenges, tasks
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import User
from advocado.web.console.routes import (
    _csrf_ok,
    _to_login,
    locale_of,
    permitted,
    permitted_form,
    render,
    signed_in_user,
)
from advocado.web.console.segments import highlight

router = APIRouter(include_in_schema=False)
ENTRY_FILTERS = ("pending", "approved", "rejected", "featured", "all")


# --- tasks -----------------------------------------------------------------------------------


@router.get("/tasks")
def task_list(request: Request, status: str = "open", kind: str = "") -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    if status not in tasks.FILTERS:
        status = "open"
    with read_only(request.app.state.engine) as session:
        rows = tasks.list_tasks(session, status=status, kind=kind or None, user_id=user.id,
                                user_role=user.role, limit=200)  # fmt: skip
        counts = tasks.count_tasks(session)
    context = {"user": user, "page": "tasks", "rows": rows, "status": status, "kind": kind,
               "filters": tasks.FILTERS, "kinds": [k.value for k in TaskKind],
               "counts": counts}  # fmt: skip
    return render(request, "tasks.html", context)


def _task_page(
    request: Request, user: User, task_id: int, error: str | None = None, status_code: int = 200
) -> Response:
    with read_only(request.app.state.engine) as session:
        try:
            task = tasks.task_detail(session, task_id=task_id)
        except tasks.TaskNotFound:
            task = None
    if task is None:
        return render(request, "task.html", {"user": user, "page": "tasks", "task": None}, 404)
    context = {"user": user, "page": "tasks", "task": task, "error": error,
               "can_work": may(user.role, Action.EDIT_TASKS),
               "highlight": highlight}  # fmt: skip
    return render(request, "task.html", context, status_code)


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: int) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    return _task_page(request, user, task_id)


@router.post("/tasks/{task_id}/outcome")
async def task_outcome(request: Request, task_id: int) -> Response:
    found = await permitted_form(request, Action.EDIT_TASKS, back=f"/tasks/{task_id}")
    if isinstance(found, Response):
        return found
    user, form = found
    try:
        with unit_of_work(request.app.state.engine) as session:
            tasks.record_outcome(session, task_id=task_id, outcome=str(form.get("outcome") or ""),
                                 note=str(form.get("note") or ""), by=user.email)  # fmt: skip
    except tasks.TaskNotFound:
        return _task_page(request, user, task_id)
    except TaskError as problem:
        return _task_page(request, user, task_id, f"{problem.field}: {problem.reason}", 409)
    return RedirectResponse(f"/tasks/{task_id}", status_code=303)


@router.post("/tasks/{task_id}/assign")
async def task_assign(request: Request, task_id: int) -> Response:
    """Take the task ("assign to me"), or give it back to the role (empty `to`)."""
    user = permitted(request, Action.EDIT_TASKS)
    if not isinstance(user, User):
        return user
    form = await request.form()
    if _csrf_ok(request, str(form.get("csrf") or "")):
        target = user.id if form.get("to") == "me" else None
        try:
            with unit_of_work(request.app.state.engine) as session:
                tasks.assign_task(session, task_id=task_id, user_id=target)
        except tasks.TaskNotFound:
            return _task_page(request, user, task_id)
    return RedirectResponse(f"/tasks/{task_id}", status_code=303)


# --- challenges ------------------------------------------------------------------------------


@router.get("/challenges")
def challenge_list(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    with read_only(request.app.state.engine) as session:
        found = challenges.list_challenges(session, locale=locale_of(request))
    return render(request, "challenges.html", {"user": user, "page": "challenges",
                                               "challenges": found})  # fmt: skip


def _entries_page(
    request: Request, user: User, slug: str, status: str, error: str | None, code: int = 200
) -> Response:
    if status not in ENTRY_FILTERS:
        status = "pending"
    with read_only(request.app.state.engine) as session:
        try:
            challenge = challenges.challenge_by_slug(session, slug)
        except challenges.UnknownChallenge:
            context = {"user": user, "page": "challenges", "challenge": None}
            return render(request, "challenge.html", context, 404)
        view = challenges.challenge_view(challenge, locale_of(request), clock.now())
        entries = challenges.list_entries(
            session, slug=slug,
            status=None if status in ("all", "featured") else status,
            featured=True if status == "featured" else None, limit=200,
        )  # fmt: skip
    context = {"user": user, "page": "challenges", "challenge": view, "entries": entries,
               "status": status, "filters": ENTRY_FILTERS, "error": error,
               "can_review": may(user.role, Action.EDIT_CHALLENGES)}  # fmt: skip
    return render(request, "challenge.html", context, code)


@router.get("/challenges/{slug}")
def challenge_page(request: Request, slug: str, status: str = "pending") -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    return _entries_page(request, user, slug, status, None)


@router.post("/challenges/{slug}/entries/{entry_id}/review")
async def entry_review(request: Request, slug: str, entry_id: int) -> Response:
    user = permitted(request, Action.EDIT_CHALLENGES)
    if not isinstance(user, User):
        return user
    form = await request.form()
    back = str(form.get("back") or "pending")
    target = f"/challenges/{slug}?{urlencode({'status': back})}"
    if not _csrf_ok(request, str(form.get("csrf") or "")):
        return RedirectResponse(target, status_code=303)
    try:
        with unit_of_work(request.app.state.engine) as session:
            challenges.review_entry(
                session,
                entry_id=entry_id,
                action=str(form.get("action")),
                reason=str(form.get("reason") or ""),
                reviewer=user.email,
            )
    except challenges.EntryNotFound as problem:
        return _entries_page(request, user, slug, back, str(problem), 404)
    except (ReviewError, ChallengeError) as problem:
        return _entries_page(request, user, slug, back, f"{problem.field}: {problem.reason}", 422)
    return RedirectResponse(target, status_code=303)


@router.get("/challenges/entries/{entry_id}/image")
def entry_image(request: Request, entry_id: int) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    with read_only(request.app.state.engine) as session:
        found = challenges.entry_image(session, entry_id=entry_id, public=False)
    if found is None:
        return Response(status_code=404)
    data, kind = found
    headers: dict[str, Any] = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private"}
    return Response(data, media_type=kind, headers=headers)
