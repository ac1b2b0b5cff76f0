"""The ASGI application: API under /api/v1, the console at /, /healthz."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from advocado import __version__
from advocado.store.db import ensure_schema, make_engine


def create_app(database_url: str | None = None) -> FastAPI:
    engine = make_engine(database_url)
    ensure_schema(engine)
    app = FastAPI(title="Advocado", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.engine = engine

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """Whether the database answers."""
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
            return JSONResponse({"status": "error", "database": str(error)[:200]}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "version": __version__})

    return app


def engine_of(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.engine
