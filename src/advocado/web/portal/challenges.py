"""/c/{token}: an invited customer sends their challenge entry (link and/or photo, story),
without logging in: the unguessable token in the link is who they are. /c/featured/{slug}:
the approved, featured entries. Texts are in the customer's language (their locale, or ?lang=).

CSRF: the form carries a key derived from the token with the installation's secret, and a
cross-site Origin is refused; the token alone is already secret to any other site, and the
Referrer-Policy (same-origin) keeps it from leaking to the sites an entry links to.
Each handler parses the request, calls one service, and renders."""

from __future__ import annotations

import hashlib
import hmac
from functools import partial
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from advocado import clock
from advocado.domain.challenges import EntryProblem, EntryRefused
from advocado.services import challenges
from advocado.services.installation import session_secret_key
from advocado.store.db import read_only, unit_of_work
from advocado.web.console.routes import SECURITY_HEADERS, templates
from advocado.web.i18n import LOCALE_NAMES, LOCALES, from_accept_language, known, translate

router = APIRouter(include_in_schema=False)
FORM_OVERHEAD = 64 * 1024  # a request may be this much larger than the image it carries
STATUS = {
    EntryProblem.BAD_TOKEN: 404,
    EntryProblem.NOT_STARTED: 409,
    EntryProblem.ENDED: 410,
    EntryProblem.IMAGE_TOO_LARGE: 413,
    EntryProblem.IMAGE_TYPE: 415,
    EntryProblem.ALREADY_REVIEWED: 409,
    EntryProblem.FORM_EXPIRED: 403,
}


def _secret(request: Request) -> str:
    state = request.app.state
    if getattr(state, "portal_secret", None) is None:
        state.portal_secret = session_secret_key(state.engine)
    return str(state.portal_secret)


def form_key(secret: str, token: str) -> str:
    return hmac.new(
        secret.encode(), f"challenge-entry:{token}".encode(), hashlib.sha256
    ).hexdigest()


def _same_origin(request: Request) -> bool:
    """False only for a request that says it comes from another site. (A browser may send no
    Origin, or "null"; the form key is what proves the form is ours.)"""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return True
    return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)


def _page(
    request: Request, name: str, context: dict[str, Any], lang: str, status_code: int = 200
) -> HTMLResponse:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    languages = [
        (code, LOCALE_NAMES[code], f"{request.url.path}?{urlencode([*params, ('lang', code)])}")
        for code in LOCALES
    ]
    page = {"lang": lang, "t": partial(translate, lang), "languages": languages, "user": None,
            "csrf_token": "", **context}  # fmt: skip
    response = templates.TemplateResponse(request, name, page, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    # same-origin (from SECURITY_HEADERS): the token in the URL never goes to another site.
    return response


def _lang(request: Request, customer_locale: str | None) -> str:
    return known(request.query_params.get("lang")) or known(customer_locale) or "en"


def _refused(
    request: Request,
    token: str,
    problem: EntryRefused,
    mb: float = 0,
    entered: dict[str, str] | None = None,
) -> Response:
    """The entry page again with the reason, in the customer's language, with what they
    typed kept; or a plain page for a bad token."""
    with read_only(request.app.state.engine) as session:
        lang = _lang(request, challenges.customer_locale(session, token=token))
        page = None
        if problem.problem is not EntryProblem.BAD_TOKEN:
            page = challenges.invitation_page(session, token=token, locale=lang)
    message = translate(lang, f"entry_{problem.problem.value}", mb=f"{mb:g}")
    context = {"p": page, "error": message, "error_field": problem.field, "saved": False,
               "form_key": form_key(_secret(request), token) if page else "",
               "entered": entered or {}}  # fmt: skip
    return _page(request, "challenge_entry.html", context, lang, STATUS.get(problem.problem, 422))


@router.get("/c/featured/{slug}")
def featured(request: Request, slug: str) -> Response:
    lang = known(request.query_params.get("lang")) or from_accept_language(
        request.headers.get("accept-language")
    ) or "en"  # fmt: skip
    with read_only(request.app.state.engine) as session:
        try:
            found = challenges.featured_entries(session, slug=slug)
        except challenges.UnknownChallenge:
            return _page(request, "challenge_featured.html", {"challenge": None}, lang, 404)
        view = challenges.challenge_view(found["challenge"], lang, clock.now())
    context = {"challenge": view, "entries": found["entries"]}
    return _page(request, "challenge_featured.html", context, lang)


@router.get("/c/image/{entry_id}")
def public_image(request: Request, entry_id: int) -> Response:
    with read_only(request.app.state.engine) as session:
        found = challenges.entry_image(session, entry_id=entry_id, public=True)
    if found is None:
        return Response(status_code=404)
    data, kind = found
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=300"}
    return Response(data, media_type=kind, headers=headers)


@router.get("/c/{token}")
def entry_form(request: Request, token: str) -> Response:
    engine = request.app.state.engine
    try:
        with read_only(engine) as session:
            lang = _lang(request, challenges.customer_locale(session, token=token))
            page = challenges.invitation_page(session, token=token, locale=lang)
    except EntryRefused as problem:
        return _refused(request, token, problem)
    context = {"p": page, "error": None, "error_field": None, "entered": {},
               "form_key": form_key(_secret(request), token),
               "saved": request.query_params.get("saved") == "1"}  # fmt: skip
    return _page(request, "challenge_entry.html", context, lang)


@router.post("/c/{token}")
async def entry_submit(request: Request, token: str) -> Response:
    engine = request.app.state.engine
    with read_only(engine) as session:
        limit = challenges.image_limit(session, token=token)
    if limit is None:
        return _refused(request, token, EntryRefused(EntryProblem.BAD_TOKEN, "token"))
    mb = limit / (1024 * 1024)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + FORM_OVERHEAD:
        # Refused before reading the body: a huge upload costs us nothing.
        problem = EntryRefused(EntryProblem.IMAGE_TOO_LARGE, "image", f"{length} bytes")
        return _refused(request, token, problem, mb)
    if not _same_origin(request):
        return _refused(request, token, EntryRefused(EntryProblem.FORM_EXPIRED, "origin"))
    async with request.form(max_files=1, max_fields=10) as form:
        sent_key = str(form.get("form_key") or "")
        if not hmac.compare_digest(sent_key, form_key(_secret(request), token)):
            return _refused(request, token, EntryRefused(EntryProblem.FORM_EXPIRED, "form_key"))
        upload = form.get("image")
        image = None
        if isinstance(upload, UploadFile) and upload.filename:
            image = await upload.read(limit + 1)
        link, text = str(form.get("link") or ""), str(form.get("text") or "")
    try:
        with unit_of_work(engine) as session:
            challenges.submit_entry(session, token=token, link=link, text=text, image=image)
    except EntryRefused as problem:
        return _refused(request, token, problem, mb, {"link": link, "text": text})
    query = {"saved": "1"}
    if request.query_params.get("lang"):
        query["lang"] = str(request.query_params["lang"])
    return RedirectResponse(f"/c/{token}?{urlencode(query)}", status_code=303)
