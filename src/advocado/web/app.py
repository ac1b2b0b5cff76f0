"""The ASGI application: API under /api/v1, the console at /, /healthz.

Only /healthz, /login, /static/, /r/, /m/, /u/ and /c/ (challenge entry pages, by token) are
public; the API checks its own keys; everything else (the console, /docs, /openapi.json) needs a
signed-in console user (see web/access.py)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp
from swagger_ui_bundle import swagger_ui_path

from advocado import __version__
from advocado.domain.throttle import LoginThrottle
from advocado.services.installation import session_secret_key
from advocado.store.db import ensure_schema, make_engine
from advocado.web import links
from advocado.web import messages as message_links
from advocado.web.access import RequireLogin
from advocado.web.api.dashboard import router as dashboard_api_router
from advocado.web.api.lexicon import router as lexicon_api_router
from advocado.web.api.messages import router as messages_api_router
from advocado.web.api.plans import router as plans_api_router
from advocado.web.api.playbooks import router as playbooks_api_router
from advocado.web.api.referrals import router as referrals_api_router
from advocado.web.api.referrals import webhooks as referral_webhooks
from advocado.web.api.routes import router as api_router
from advocado.web.api.segments import router as segments_api_router
from advocado.web.api.ugc import router as ugc_api_router
from advocado.web.console import customers as console_customers
from advocado.web.console import dashboard as console_dashboard
from advocado.web.console import exports as console_exports
from advocado.web.console import messages as console_messages
from advocado.web.console import plans as console_plans
from advocado.web.console import playbooks as console_playbooks
from advocado.web.console import programs as console_programs
from advocado.web.console import routes as console
from advocado.web.console import segments as console_segments
from advocado.web.console import users as console_users
from advocado.web.console import work as console_work
from advocado.web.portal import challenges as portal_challenges

SESSION_MAX_AGE = 7 * 24 * 3600


def create_app(database_url: str | None = None) -> FastAPI:
    engine = make_engine(database_url)
    ensure_schema(engine)
    # The default /docs and /openapi.json would be public: console.routes serves them gated.
    app = FastAPI(
        title="Advocado", version=__version__, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.engine = engine
    app.state.login_throttle = LoginThrottle()
    # Added last = runs first: the session is decoded before the gate reads it.
    app.add_middleware(RequireLogin)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret_key(engine),
        session_cookie="advocado_session",
        max_age=SESSION_MAX_AGE,
        same_site="lax",
    )
    # Swagger UI from its PyPI bundle, so /docs works on a machine with no internet.
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")
    app.mount("/static", StaticFiles(directory=console.STATIC), name="static")
    app.include_router(api_router)
    app.include_router(lexicon_api_router)
    app.include_router(referrals_api_router)
    app.include_router(referral_webhooks)
    links.install(app, engine)  # /r/{code}, and the click writer's final flush on shutdown
    app.include_router(console.router)
    app.include_router(segments_api_router)
    app.include_router(playbooks_api_router)
    app.include_router(console_segments.router)
    app.include_router(console_playbooks.router)
    app.include_router(messages_api_router)
    app.include_router(console_messages.router)
    message_links.install(app)  # /m/{token} tracked links, /u/{token} unsubscribe
    app.include_router(ugc_api_router)
    app.include_router(console_work.router)
    app.include_router(portal_challenges.router)
    app.include_router(console_programs.router)
    app.include_router(console_dashboard.router)
    app.include_router(console_users.router)
    app.include_router(dashboard_api_router)
    app.include_router(plans_api_router)
    app.include_router(console_plans.router)
    app.include_router(console_customers.router)
    app.include_router(console_exports.router)

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


def create_server_app(database_url: str | None = None) -> ASGIApp:
    """The app as served: /r/{code} answered at the front door (see web/links.front_door)."""
    return links.front_door(create_app(database_url))
