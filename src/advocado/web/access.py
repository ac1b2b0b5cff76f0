"""Default deny: every path needs a signed-in console user, except the few that are public.

The API under /api/v1 checks its own keys (and answers 401 itself); everything else that is not
listed here as public (pages, /docs, /openapi.json, unknown paths) needs a session. Routes that
show data also reload the user (see console.routes.current_user), so a disabled account loses
access at once; this gate is the backstop for whatever a route forgets."""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PATHS = frozenset({"/healthz", "/login"})
PUBLIC_PREFIXES = (
    "/static/",
    "/r/",
    "/m/",
    "/u/",
    "/c/",
)  # /m/ /u/: message links, /c/: challenge entry pages
API_PREFIX = "/api/v1"
SESSION_USER = "uid"


def is_public(path: str) -> bool:
    return (
        path in PUBLIC_PATHS
        or path.startswith(PUBLIC_PREFIXES)
        or path == API_PREFIX
        or path.startswith(API_PREFIX + "/")
    )


def login_url(next_path: str) -> str:
    return "/login" if next_path in ("", "/") else f"/login?next={quote(next_path, safe='')}"


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


class RequireLogin:
    """ASGI middleware; must sit inside SessionMiddleware (it reads scope["session"])."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope.get("session", {}).get(SESSION_USER):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["method"] in ("GET", "HEAD"):
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope["path"] + (f"?{query}" if query else "")
            response = RedirectResponse(login_url(target), status_code=303)
        else:
            response = JSONResponse({"detail": "Sign in first."}, status_code=401)
        await response(scope, receive, send)
