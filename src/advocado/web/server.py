"""Serving the app with granian."""

from __future__ import annotations

from granian import Granian
from granian.constants import Interfaces

APP_FACTORY = "advocado.web.app:create_app"


def run_server(*, host: str, port: int, workers: int) -> None:
    """Serve until interrupted. Each worker builds its own app (and engine) from the factory."""
    Granian(
        APP_FACTORY,
        address=host,
        port=port,
        workers=max(1, workers),
        interface=Interfaces.ASGI,
        factory=True,
    ).serve()
