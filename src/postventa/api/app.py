"""create_app(): the FastAPI application with its context, routes, error handlers and edge middleware."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from postventa import __version__
from postventa.api import openapi
from postventa.api.context import Context, utc_now
from postventa.api.edge import EdgedFastAPI
from postventa.api.errors import install_error_handlers
from postventa.api.metrics import router as observability_router
from postventa.api.ratelimit import RateLimiter
from postventa.api.routes import admin, messages, orders, webhooks
from postventa.api.security import serves_https
from postventa.config import Settings
from postventa.delivery.inbound import InboundProcessor
from postventa.delivery.worker import DeliveryWorker
from postventa.meli.client import MeliClient
from postventa.store.engine import Database
from postventa.wiring import meli_client, open_database


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    meli: MeliClient | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> FastAPI:
    """The service. A database or client passed in is the caller's to close; ones made here are closed
    on shutdown. With an embedded worker (the default on SQLite) the lifespan also runs the delivery
    worker and the inbound processor in this process.
    """
    owned_database, owned_meli = database is None, meli is None
    context = Context(
        settings=settings,
        database=database or open_database(settings),
        rate_limiter=RateLimiter.from_settings(settings.rate_limits, settings.redis_url),
        meli=meli or meli_client(settings),
        clock=clock,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = _start_background(context, stop) if _runs_worker(settings, context.database) else []
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            if owned_meli:
                await context.meli.aclose()
            if owned_database:
                await context.database.dispose()
            await context.rate_limiter.aclose()

    # The edge (request ids, size caps, security headers, metrics, access log) wraps the whole
    # stack, even Starlette's 500: edge.py.
    app = EdgedFastAPI(
        max_body_bytes=settings.max_body_bytes,
        max_query_bytes=settings.max_query_bytes,
        strict_transport=serves_https(settings.public_url),
        title="postventa",
        version=__version__,
        summary="Message the buyers of your Mercado Libre orders (Alephee API v2 messages contract).",
        lifespan=lifespan,
        # postventa's observability is its own (/metrics, the JSON logs). FastAPI's native
        # OpenTelemetry asked the global providers on every request whether it was configured: 2.6%
        # of a send's CPU (docs/performance.md).
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    app.state.context = context
    install_error_handlers(app)
    app.include_router(messages.router)
    app.include_router(orders.router)
    app.include_router(admin.router)
    app.include_router(webhooks.router)
    app.include_router(observability_router)  # /metrics, /readyz
    openapi.install(app)  # the document as this API answers (api/openapi.py)
    app.hot_routes = [messages.send_route()]  # called straight from the edge (api/routing.py)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSONResponse({"Status": "ok"})

    return app


def _runs_worker(settings: Settings, database: Database) -> bool:
    return settings.embedded_worker if settings.embedded_worker is not None else database.is_sqlite


def _start_background(context: Context, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    settings = context.settings
    worker = DeliveryWorker(
        context.database,
        context.meli,
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.worker_lease_seconds,
        clock=context.clock,
        retry_policy=settings.retry_policy,
    )
    inbound = InboundProcessor(
        context.database,
        context.meli,
        poll_interval_seconds=settings.poll_interval_seconds,
        clock=context.clock,
    )
    context.on_message_queued = worker.wake
    context.on_notification = inbound.wake
    return [asyncio.create_task(worker.run(stop)), asyncio.create_task(inbound.run(stop))]
