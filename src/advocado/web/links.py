"""/r/{code}: the short link, answered before the rest of the app.

Every click pays for this path, so it is plain ASGI placed outermost (only Starlette's error
guard is outside it): no FastAPI validation, no session decoding, no route table scan, and no
database read once the code is cached. Measured on 2 cores with wrk: ~5k req/s as a Starlette
route behind the app's middleware, several times that here (see bench/referrals.py).
The click is queued for the ClickRecorder, which writes batches and flushes on shutdown.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from advocado import clock
from advocado.domain.codes import normalise
from advocado.services.clicks import ClickRecorder, Link, ip_salt, resolve

PREFIX = "/r/"
VISITOR_COOKIE = "adv_vid"
CACHE_SECONDS = 60.0
NOT_FOUND = (
    "This referral link does not exist or has ended. / 该推荐链接不存在或活动已结束。\n".encode()
)
_NOT_FOUND_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(NOT_FOUND)).encode()),
]
_COOKIE_TAIL = b"; Max-Age=31536000; Path=/r/; HttpOnly; SameSite=Lax"


class Links:
    """The code cache, the click recorder, and the ASGI handler of /r/{code}."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.recorder = ClickRecorder(engine, salt=ip_salt(engine))
        self._cache: dict[str, tuple[float, Link | None]] = {}

    async def link(self, code: str) -> Link | None:
        cached = self._cache.get(code)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await run_in_threadpool(resolve, self.engine, code)
        if len(self._cache) > 100_000:  # bound memory against scans of random codes
            self._cache.clear()
        self._cache[code] = (now + CACHE_SECONDS, found)
        return found

    async def handle(self, scope: Scope, send: Send) -> None:
        code = normalise(scope["path"][len(PREFIX) :])
        link = await self.link(code) if code and "/" not in code else None
        if link is None or not link.active(clock.now()):
            await send({"type": "http.response.start", "status": 404,
                        "headers": _NOT_FOUND_HEADERS})  # fmt: skip
            await send({"type": "http.response.body", "body": NOT_FOUND})
            return
        agent = referrer = visitor = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                agent = value[:400].decode("latin-1")
            elif name == b"referer":
                referrer = value[:400].decode("latin-1")
            elif name == b"cookie":
                visitor = _visitor_cookie(value)
        if not visitor:
            visitor = secrets.token_urlsafe(16)
        client = scope.get("client")
        self.recorder.add(
            code_id=link.code_id,
            visitor_id=visitor,
            ip=client[0] if client else None,
            user_agent=agent or "",
            referrer=referrer,
            method=scope["method"],
        )
        if not self.recorder.running:  # no lifespan (e.g. a bare test client): write now
            await run_in_threadpool(self.recorder.flush)
        await send({
            "type": "http.response.start",
            "status": 302,
            "headers": [
                (b"location", f"{link.target}&{VISITOR_COOKIE}={visitor}".encode()),
                (b"cache-control", b"no-store"),
                (b"set-cookie", f"{VISITOR_COOKIE}={visitor}".encode() + _COOKIE_TAIL),
                (b"content-length", b"0"),
            ],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": b""})


def _visitor_cookie(header: bytes) -> str | None:
    for part in header.decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == VISITOR_COOKIE and 0 < len(value) <= 64:
            return value
    return None


class ShortLinks:
    """ASGI middleware: GET/HEAD /r/{code} is answered here, everything else passes on."""

    def __init__(self, app: ASGIApp, links: Links) -> None:
        self.app = app
        self.links = links

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].startswith(PREFIX)
            and scope["method"] in ("GET", "HEAD")
        ):
            await self.links.handle(scope, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI, engine: Engine) -> Links:
    """Answer /r/{code} ahead of the app's other middleware (call after adding them), and
    start the click recorder with the app and write its last batch when the app stops."""
    links = Links(engine)
    app.add_middleware(ShortLinks, links=links)  # added last = runs first
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        links.recorder.start()
        try:
            async with previous(application) as state:
                yield state
        finally:
            await links.recorder.stop()  # the last clicks are written before we exit

    app.router.lifespan_context = lifespan
    app.state.links = links
    return links
