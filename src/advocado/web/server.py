"""Serving the app with granian."""

from __future__ import annotations

from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops

APP_FACTORY = "advocado.web.app:create_server_app"


def run_server(*, host: str, port: int, workers: int, backlog: int = 2048) -> None:
    """Serve until interrupted. Each worker builds its own app (and engine) from the factory.

    Settings measured with bench/referrals.py on the redirect path: HTTP/1 only (no h2
    sniffing per connection), no websockets (the app has none), uvloop, access log off, a
    backlog large enough for bursts of new connections. Granian's Rust task implementation
    and its single-threaded runtime were both slower here (see the README's figures)."""
    Granian(
        APP_FACTORY,
        address=host,
        port=port,
        workers=max(1, workers),
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        websockets=False,
        loop=Loops.uvloop,
        backlog=backlog,
        log_access=False,
        factory=True,
    ).serve()
