"""create_app(): the FastAPI application with its context, routes, error handlers and edge middleware."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from postventa import __version__
from postventa.api.context import Context, utc_now
from postventa.api.edge import EdgeMiddleware
from postventa.api.errors import install_error_handlers
from postventa.api.ratelimit import RateLimiter, parse_rate_limits
from postventa.api.routes import admin, messages, orders
from postventa.config import Settings
from postventa.store.engine import Database


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> FastAPI:
    """The service. A database passed in is the caller's to dispose; one made here is closed on shutdown."""
    owned = database is None
    context = Context(
        settings=settings,
        database=database or Database(settings.database_url),
        rate_limiter=RateLimiter(parse_rate_limits(settings.rate_limits)),
        clock=clock,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            await context.database.dispose()

    app = FastAPI(
        title="postventa",
        version=__version__,
        summary="Message the buyers of your Mercado Libre orders (Alephee API v2 messages contract).",
        lifespan=lifespan,
    )
    app.state.context = context
    install_error_handlers(app)
    app.include_router(messages.router)
    app.include_router(orders.router)
    app.include_router(admin.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSONResponse({"Status": "ok"})

    app.add_middleware(
        EdgeMiddleware, max_body_bytes=settings.max_body_bytes, max_query_bytes=settings.max_query_bytes
    )
    return app
