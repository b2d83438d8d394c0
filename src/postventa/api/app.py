"""build_app(): the FastAPI application with its context, routes, error handlers and edge middleware."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from postventa import __version__
from postventa.api import openapi
from postventa.api.context import Context, utc_now
from postventa.api.docs_pages import DOCS_PATHS, install_docs
from postventa.api.edge import EdgedFastAPI
from postventa.api.errors import install_error_handlers
from postventa.api.intake import BodyIntake
from postventa.api.metrics import router as observability_router
from postventa.api.ratelimit import RateLimiter
from postventa.api.routes import accounts, admin, admin_webhooks, messages, orders, webhooks
from postventa.api.security import serves_https
from postventa.config import Settings
from postventa.meli.client import MeliClient
from postventa.store.engine import Database


class Background(Protocol):
    """Work that runs beside the API in this process (the embedded delivery worker), built by the
    composition root (wiring.py): the API only starts it, stops it and wakes it."""

    async def run(self, stop: asyncio.Event) -> None: ...
    def wake_delivery(self) -> None: ...
    def wake_inbound(self) -> None: ...


def build_app(
    settings: Settings,
    *,
    database: Database,
    meli: MeliClient,
    clock: Callable[[], dt.datetime] = utc_now,
    background: Background | None = None,
    on_close: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """The service's HTTP application (wiring.create_app composes it). `background`, when given,
    runs for the app's lifetime and is woken when a message is queued or a notification stored;
    `on_close` runs at shutdown, after it stopped."""
    context = Context(
        settings=settings,
        database=database,
        rate_limiter=RateLimiter.from_settings(settings.rate_limits, settings.redis_url),
        meli=meli,
        clock=clock,
    )
    if background is not None:
        context.on_message_queued = background.wake_delivery
        context.on_notification = background.wake_inbound

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        running = asyncio.create_task(background.run(stop)) if background is not None else None
        try:
            yield
        finally:
            stop.set()
            if running is not None:
                await asyncio.gather(running, return_exceptions=True)
            if on_close is not None:
                await on_close()
            await context.rate_limiter.aclose()

    # The edge (request ids, size caps, security headers, metrics, access log) wraps the whole
    # stack, even Starlette's 500: edge.py.
    app = EdgedFastAPI(
        intake=BodyIntake.from_settings(settings),
        max_query_bytes=settings.max_query_bytes,
        strict_transport=serves_https(settings.public_url),
        # /docs with Swagger UI's files from the package, not a CDN (api/docs_pages.py).
        docs_url=None,
        docs_paths=DOCS_PATHS,
        title="postventa",
        version=__version__,
        summary="Message the buyers of your Mercado Libre orders (Alephee API v2 messages contract).",
        lifespan=lifespan,
        # postventa's observability is its own (/metrics, the JSON logs); FastAPI's native
        # OpenTelemetry would ask the global providers on every request whether it is configured.
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    app.state.context = context
    install_error_handlers(app)
    install_docs(app)
    # The public API's plain routes (api/routing.py), ahead of the docs' routes and the send first:
    # the router tries each route's pattern in turn, and most requests are sends.
    app.router.routes[:0] = [*messages.router.routes, *orders.router.routes, *accounts.router.routes]
    app.include_router(admin.router)
    app.include_router(admin_webhooks.router)
    app.include_router(webhooks.router)
    app.include_router(observability_router)  # /metrics, /readyz
    openapi.install(app)  # the document as this API answers (api/openapi.py)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSONResponse({"Status": "ok"})

    return app
