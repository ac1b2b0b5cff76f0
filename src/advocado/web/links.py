"""/r/{code}: the short link, answered before the rest of the app.

Every click pays for this path, so it is plain ASGI placed outermost (only Starlette's error
guard is outside it): no FastAPI validation, no session decoding, no route table scan, and no
database read once the code is cached. Measured on 2 cores with wrk: ~5k req/s as a Starlette
route behind the app's middleware, several times that here (see bench/referrals.py).
The click is queued for the ClickRecorder, which writes batches and flushes on shutdown.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, func, select
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from advocado import clock
from advocado.domain.codes import normalise
from advocado.services.clicks import ClickRecorder, Link, ip_salt, resolve
from advocado.store.db import read_only
from advocado.store.models import Program, ReferralCode

log = logging.getLogger(__name__)

PREFIX = "/r/"
VISITOR_COOKIE = "adv_vid"
CACHE_SECONDS = 300.0  # an upper bound; a change to programs or codes clears it within ~1 s
VERSION_POLL_SECONDS = 1.0
NOT_FOUND = (
    "This referral link does not exist or has ended. / 该推荐链接不存在或活动已结束。\n".encode()
)
_NOT_FOUND_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(NOT_FOUND)).encode()),
]
_COOKIE_TAIL = b"; Max-Age=31536000; Path=/r/; HttpOnly; SameSite=Lax"


class _Visitors:
    """New visitor ids: the first-click time in milliseconds (12 hex digits, so ids sort by
    time) then 12 random bytes (16 URL-safe characters, 96 bits). Time first keeps the
    clicks' visitor index append-mostly: random ids scattered every batch over the whole
    index and made a click write cost 2-3 times more as the table grew. The random part is
    cut from one os.urandom read per 4,096 ids (a system call per click was ~7 % of the
    redirect's CPU)."""

    _IDS = 4096

    def __init__(self) -> None:
        self._random: list[str] = []

    def new(self, at: datetime) -> str:
        if not self._random:
            raw = base64.urlsafe_b64encode(os.urandom(12 * self._IDS)).decode()
            self._random = [raw[i : i + 16] for i in range(0, len(raw), 16)]
        return f"{int(at.timestamp() * 1000):012x}{self._random.pop()}"


class Links:
    """The code cache, the click recorder, and the ASGI handler of /r/{code}.

    The cache maps a code to its link and the ready-made bytes of its Location header. It is
    cleared when programs or codes change (a version read once a second while the app runs:
    the newest `programs.updated_at` and the highest code id), so an edited landing URL, an
    ended program or a newly made vanity code is seen within about a second, also when the
    change came from another process (the CLI, another worker)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.recorder = ClickRecorder(engine, salt=ip_salt(engine))
        self._cache: dict[str, tuple[float, Link | None, bytes]] = {}
        self._visitors = _Visitors()
        self._version: tuple[Any, ...] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._watching = False
        self.served = False  # set by front_door: this process is a server worker

    def version(self) -> tuple[Any, ...]:
        with read_only(self.engine) as session:
            found = session.execute(
                select(
                    select(func.max(Program.updated_at)).scalar_subquery(),
                    select(func.count(Program.id)).scalar_subquery(),
                    select(func.max(ReferralCode.id)).scalar_subquery(),
                    select(func.count(ReferralCode.id)).scalar_subquery(),
                )
            ).one()
        return tuple(found)

    def check_version(self) -> bool:
        """Clear the cache if programs or codes changed since the last look; whether it did."""
        current = self.version()
        changed = self._version is not None and current != self._version
        if changed:
            self._cache = {}
        self._version = current
        return changed

    async def _watch(self) -> None:
        while self._watching:
            try:
                await asyncio.to_thread(self.check_version)
            except Exception:  # noqa: BLE001 - a failed look: clear to be safe, look again
                self._cache = {}
                log.exception("reading the links version failed; cache cleared")
            await asyncio.sleep(VERSION_POLL_SECONDS)

    async def start(self) -> None:
        self.recorder.start()
        await asyncio.to_thread(self.check_version)
        self._watching = True
        self._watcher = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        self._watching = False
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self.recorder.stop()  # the last clicks are written before we exit

    async def link(self, code: str) -> tuple[Link | None, bytes]:
        cached = self._cache.get(code)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        found = await run_in_threadpool(resolve, self.engine, code)
        if len(self._cache) > 100_000:  # bound memory against scans of random codes
            self._cache = {}
        location = f"{found.target}&{VISITOR_COOKIE}=".encode() if found else b""
        self._cache[code] = (now + CACHE_SECONDS, found, location)
        return found, location

    async def handle(self, scope: Scope, send: Send) -> None:
        code = normalise(scope["path"][len(PREFIX) :])
        link, location = await self.link(code) if code and "/" not in code else (None, b"")
        at = clock.now()
        if link is None or not link.active(at):
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
            visitor = self._visitors.new(at)
        client = scope.get("client")
        self.recorder.add(
            code_id=link.code_id,
            visitor_id=visitor,
            ip=client[0] if client else None,
            user_agent=agent or "",
            referrer=referrer,
            method=scope["method"],
            at=at,
        )
        if not self.recorder.running:  # no lifespan (e.g. a bare test client): write now
            await run_in_threadpool(self.recorder.flush)
        vid = visitor.encode()
        await send({
            "type": "http.response.start",
            "status": 302,
            "headers": [
                (b"location", location + vid),
                (b"cache-control", b"no-store"),
                (b"set-cookie", _COOKIE_HEAD + vid + _COOKIE_TAIL),
                (b"content-length", b"0"),
            ],
        })  # fmt: skip
        await send(_EMPTY_BODY)


_COOKIE_HEAD = f"{VISITOR_COOKIE}=".encode()
_EMPTY_BODY = {"type": "http.response.body", "body": b""}


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
        await links.start()
        try:
            async with previous(application) as state:
                if links.served:
                    # The app's own objects (routes, models, templates: ~160k) live as long
                    # as the process; frozen, a full collection no longer walks them (one
                    # took 120-280 ms, every request waiting, about once per 10 s of wrk).
                    gc.collect()
                    gc.freeze()
                yield state
        finally:
            await links.stop()  # the last clicks are written before we exit

    app.router.lifespan_context = lifespan
    app.state.links = links
    return links


def front_door(app: FastAPI) -> ASGIApp:
    """What the server runs: /r/{code} answered before anything of Starlette's (not even its
    error guard, ~8 % of a redirect's CPU), everything else (and the lifespan, which starts
    and stops the click writer) passed to the app."""
    links: Links = app.state.links
    links.served = True
    return ShortLinks(app, links)
