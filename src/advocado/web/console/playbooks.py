"""Console pages: playbooks (list, enable/disable, view and edit the YAML with its errors
shown at their line, apply as a new version) and each playbook's enrolments with their
current step. Each handler parses the request, calls one service, and renders a template."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from advocado.domain.playbooks import localized
from advocado.domain.roles import Action, may
from advocado.services import playbooks
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import User
from advocado.web.console.routes import (
    _csrf_ok,
    _to_login,
    actor_of,
    locale_of,
    permitted,
    permitted_form,
    render,
    signed_in_user,
)

router = APIRouter(include_in_schema=False)
STATUSES = ("active", "completed", "exited", "handed_off", "failed")


@router.get("/playbooks")
def playbook_list(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    engine = request.app.state.engine
    with unit_of_work(engine) as session:
        playbooks.install_default(session)
    with read_only(engine) as session:
        found = playbooks.list_playbooks(session)
    lang = locale_of(request)
    rows = [(view, localized(view.title, lang)) for view in found]
    context = {"user": user, "page": "playbooks", "rows": rows,
               "may_edit": may(user.role, Action.EDIT_PLAYBOOKS)}  # fmt: skip
    return render(request, "playbooks.html", context)


@router.post("/playbooks/{name}/switch")
async def playbook_switch(request: Request, name: str) -> Response:
    found = await permitted_form(request, Action.EDIT_PLAYBOOKS, back="/playbooks")
    if isinstance(found, Response):
        return found
    user, form = found
    try:
        with unit_of_work(request.app.state.engine) as session:
            playbooks.set_enabled(session, name=name, enabled=form.get("enabled") == "yes",
                                  actor=actor_of(user))  # fmt: skip
    except playbooks.UnknownPlaybook:
        return Response("no such playbook", 404)
    return RedirectResponse("/playbooks", status_code=303)


def _detail(request: Request, name: str, status: str | None, source: str | None = None,
            error: object = None, notice: str | None = None,
            code: int = 200) -> Response:  # fmt: skip
    user = signed_in_user(request)
    if user is None:
        return _to_login(request)
    try:
        with read_only(request.app.state.engine) as session:
            view = playbooks.get_playbook(session, name=name)
            rows = playbooks.enrolments(session, name=name, status=status or None, limit=200)
            counts = playbooks.status_counts(session, name=name)
    except playbooks.UnknownPlaybook:
        return render(request, "playbook.html", {"user": user, "page": "playbooks",
                                                 "playbook": None}, 404)  # fmt: skip
    lines = (source if source is not None else view.source).splitlines()
    context = {"user": user, "page": "playbooks", "playbook": view,
               "title": localized(view.title, locale_of(request)), "enrolments": rows,
               "counts": counts, "statuses": STATUSES, "status": status or "",
               "source": source if source is not None else view.source, "lines": lines,
               "error": error, "notice": notice,
               "may_edit": may(user.role, Action.EDIT_PLAYBOOKS)}  # fmt: skip
    return render(request, "playbook.html", context, code)


@router.get("/playbooks/{name}")
def playbook_detail(request: Request, name: str, status: str | None = None) -> Response:
    return _detail(request, name, status if status in STATUSES else None)


@router.post("/playbooks/{name}")
async def playbook_edit(request: Request, name: str) -> Response:
    """Validate (action=validate) or apply (action=apply) the edited YAML (editors only)."""
    user = permitted(request, Action.EDIT_PLAYBOOKS)
    if not isinstance(user, User):
        return user
    form = await request.form()
    source = str(form.get("source") or "").replace("\r\n", "\n")
    if not _csrf_ok(request, str(form.get("csrf") or "")):
        return RedirectResponse(f"/playbooks/{name}", status_code=303)
    file = f"{name}.yaml"
    error = playbooks.validate_source(source, file)
    if error is not None:
        return _detail(request, name, None, source, error, None, 400)
    if form.get("action") != "apply":
        return _detail(request, name, None, source, None, "valid")
    with unit_of_work(request.app.state.engine) as session:
        applied = playbooks.apply_source(session, source=source, file=file, actor=actor_of(user))
    if applied.name != name:
        return RedirectResponse(f"/playbooks/{applied.name}", status_code=303)
    return _detail(request, name, None, None, None, "applied" if applied.changed else "unchanged")
