"""The sandbox's ASGI application: HubSpot's endpoints plus the ``/_sandbox`` admin API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import errors, sending
from .config import SandboxConfig
from .middleware import SandboxMiddleware
from .portal import Portal
from .routes import DATED_ROUTERS, ROUTERS
from .routing import DropConnection

log = logging.getLogger(__name__)


def create_app(config: SandboxConfig) -> FastAPI:
    """Build the app for one portal; seeds it on start-up when it is empty and a seed was asked for."""
    portal = Portal(config)
    portal.background_jobs.append(sending.background)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if config.seed_contacts and not portal.db.scalar("SELECT COUNT(*) FROM contacts"):
            from .seeding import seed_portal

            summary = seed_portal(portal, contacts=config.seed_contacts, seed=config.seed)
            log.info("seeded portal %s: %s", config.portal_id, summary["profiles"])
        yield
        portal.db.close()

    app = FastAPI(
        title="HubSpot sandbox",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
    )
    app.state.portal = portal
    for router in (*ROUTERS, *DATED_ROUTERS):
        app.include_router(router)
    _install_error_handlers(app)
    app.add_middleware(
        SandboxMiddleware,
        record_path=config.record_path,
        call_log_path=config.call_log_path,
        latency_seconds=config.response_latency_seconds,
    )
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.HubSpotError)
    async def hubspot_error(_: Request, exc: errors.HubSpotError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(DropConnection)
    async def drop(_: Request, __: DropConnection) -> Response:
        return Response(b'{"status":"pending"}', media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query"))
        err = errors.validation_error(f"Invalid input: {first.get('msg', 'bad request')}", field=where or None)
        return JSONResponse(err.body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        category = "OBJECT_NOT_FOUND" if exc.status_code == 404 else "VALIDATION_ERROR"
        message = "Resource not found" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse(errors.HubSpotError(exc.status_code, category, message).body(), exc.status_code)

    @app.exception_handler(OverflowError)
    async def out_of_range(_: Request, exc: OverflowError) -> JSONResponse:
        # A number in the request that SQLite can't store (beyond 64 bits): HubSpot can't parse it as a long either.
        err = errors.validation_error(f"Invalid input: a number is out of range ({exc}).")
        return JSONResponse(err.body(), status_code=400)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("sandbox bug: %s", exc)
        return JSONResponse(errors.server_error(500).body(), status_code=500)
