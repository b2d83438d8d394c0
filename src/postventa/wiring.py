"""The composition root: the database, the Mercado Libre client, the background work (delivery worker
and inbound processor) and the web application, each built here once from the settings.

`serve` (with its embedded worker), `worker` and the tests all get their parts from here, so the
worker is built the same way wherever it runs. The web stack, the worker and the Mercado Libre
client (aiohttp) are imported by the functions that build them: a command that needs none of them
(`postventa --help`, the admin commands) does not pay for importing them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from postventa.config import Settings
from postventa.store.engine import Database
from postventa.store.sealing import load_token_cipher

if TYPE_CHECKING:
    from fastapi import FastAPI

    from postventa.delivery.inbound import InboundProcessor
    from postventa.delivery.webhook_dispatch import WebhookDispatcher
    from postventa.delivery.worker import DeliveryWorker
    from postventa.meli.client import MeliClient
    from postventa.meli.pacing import CallBudget


def utc_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def open_database(settings: Settings) -> Database:
    """The configured database, with the key that seals Mercado Libre credentials."""
    return Database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        token_cipher=load_token_cipher(settings.token_key, settings.token_key_file),
    )


def meli_client(
    settings: Settings, base_url: str | None = None, *, database: Database | None = None
) -> MeliClient:
    """A Mercado Libre client paced and timed as configured. Its call budget is shared by every
    process of the application through Redis (POSTVENTA_REDIS_URL) or else through `database`;
    with neither, it is this process's alone."""
    from postventa.meli.client import MeliClient

    return MeliClient(
        base_url or settings.meli_api_url,
        read_timeout_seconds=settings.meli_timeout_seconds,
        budget=meli_call_budget(settings, database),
    )


def meli_call_budget(settings: Settings, database: Database | None = None) -> CallBudget:
    """Mercado Libre's budget per application and endpoint, in Redis, the database or memory."""
    from postventa.meli.pacing import CallBudget, redis_budget_storage
    from postventa.store.meli_budget import SqlBudgetStorage

    per_minute, cool_down = settings.meli_requests_per_minute, settings.meli_cool_down_seconds
    max_wait = settings.meli_max_wait_seconds
    if settings.redis_url is not None:
        redis, close = redis_budget_storage(settings.redis_url)
        return CallBudget(
            per_minute, per_minute, redis, cool_down_seconds=cool_down, max_wait_seconds=max_wait, close=close
        )
    storage = SqlBudgetStorage(database=database) if database is not None else None
    return CallBudget(per_minute, per_minute, storage, cool_down_seconds=cool_down, max_wait_seconds=max_wait)


@dataclass(frozen=True)
class Background:
    """The work a worker process (or `serve`'s embedded worker) runs beside any API: delivery to
    Mercado Libre, what Mercado Libre tells us, and the webhooks to integrators (a loop of its own:
    a slow endpoint never delays Mercado Libre delivery)."""

    worker: DeliveryWorker
    inbound: InboundProcessor
    # After `stop`, how long the work in flight may take before it is cancelled
    # (POSTVENTA_SHUTDOWN_GRACE_SECONDS).
    grace_seconds: float = 30.0
    webhooks: WebhookDispatcher | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Both loops until `stop` is set. Then nothing more is claimed, what was claimed and not
        started is handed back (due at once, for the next start), and the attempts in flight have
        `grace_seconds` to finish before they are cancelled: a cancelled delivery is reconciled with
        Mercado Libre once its lease runs out, a cancelled notification is handed back."""
        loops = [asyncio.create_task(self.worker.run(stop)), asyncio.create_task(self.inbound.run(stop))]
        if self.webhooks is not None:
            loops.append(asyncio.create_task(self.webhooks.run(stop)))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            ended, _ = await asyncio.wait([*loops, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not stop.is_set():  # a loop ended by itself (a bug): the other is cancelled, this raised
                for loop in ended:
                    loop.result()
            await asyncio.wait(loops, timeout=self.grace_seconds)
        finally:
            stopping.cancel()
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            if self.webhooks is not None:
                await self.webhooks.poster.aclose()

    def wake_delivery(self) -> None:
        """A message was queued: look for it now."""
        self.worker.wake()

    def wake_inbound(self) -> None:
        """A notification was stored: process it now."""
        self.inbound.wake()


def build_background(
    settings: Settings,
    database: Database,
    meli: MeliClient,
    *,
    clock: Callable[[], dt.datetime] = utc_now,
    concurrency: int | None = None,
    grace_seconds: float | None = None,
) -> Background:
    """The delivery worker and the inbound processor as the settings describe them; after a stop,
    what is in flight has `grace_seconds` (by default the whole shutdown grace)."""
    from postventa.delivery.inbound import InboundProcessor
    from postventa.delivery.webhook_dispatch import WebhookDispatcher
    from postventa.delivery.webhook_http import WebhookPoster
    from postventa.delivery.worker import DeliveryWorker

    worker = DeliveryWorker(
        database,
        meli,
        concurrency=concurrency or settings.worker_concurrency,
        lease_seconds=settings.worker_lease_seconds,
        clock=clock,
        retry_policy=settings.retry_policy,
    )
    inbound = InboundProcessor(
        database,
        meli,
        poll_interval_seconds=settings.poll_interval_seconds,
        clock=clock,
        calls_per_minute=settings.notification_calls_per_minute,
        max_pending_per_seller=settings.max_pending_notifications_per_seller,
        retention_days=settings.notification_retention_days,
    )
    webhooks = WebhookDispatcher(
        database,
        WebhookPoster(
            allow_private=settings.webhook_allow_private, max_connections=settings.webhook_concurrency
        ),
        retry_schedule=settings.webhook_retry_waits,
        concurrency=settings.webhook_concurrency,
        per_endpoint=settings.webhook_endpoint_concurrency,
        lease_seconds=settings.webhook_lease_seconds,
        clock=clock,
        worker_id=worker.worker_id,
    )
    grace = settings.shutdown_grace_seconds if grace_seconds is None else grace_seconds
    return Background(worker, inbound, grace_seconds=grace, webhooks=webhooks)


def runs_embedded_worker(settings: Settings, database: Database) -> bool:
    """Whether `serve` runs the background work itself: by default on SQLite (one process owns the
    file), not on PostgreSQL (workers are processes of their own)."""
    return settings.embedded_worker if settings.embedded_worker is not None else database.is_sqlite


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    meli: MeliClient | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> FastAPI:
    """The service. A database or client passed in is the caller's to close; ones made here are closed
    on shutdown. With an embedded worker (the default on SQLite) the app also runs the background work."""
    from postventa.api.app import build_app
    from postventa.api.server import REQUESTS_SHARE_OF_GRACE

    owned_database, owned_meli = database is None, meli is None
    database = database or open_database(settings)
    meli = meli or meli_client(settings, database=database)
    # The server first gives the requests in flight their share of the grace, then stops the app,
    # and with it this work: the two shares make one grace.
    embedded_grace = settings.shutdown_grace_seconds * (1 - REQUESTS_SHARE_OF_GRACE)
    background = (
        build_background(settings, database, meli, clock=clock, grace_seconds=embedded_grace)
        if runs_embedded_worker(settings, database)
        else None
    )

    async def close_owned() -> None:
        if owned_meli:
            await meli.aclose()
        if owned_database:
            await database.dispose()

    app = build_app(
        settings, database=database, meli=meli, clock=clock, background=background, on_close=close_owned
    )
    add_console(app, settings, database, clock, meli, background)
    return app


def add_console(
    app: FastAPI,
    settings: Settings,
    database: Database,
    clock: Callable[[], dt.datetime],
    meli: MeliClient,
    background: Background | None,
) -> None:
    """The operator console (issue 19): its pages, a layer of their own beside the API, and the
    admin API's console users. It sends as the API does: the API's cache of Mercado Libre's caps,
    and the same wake-up of the embedded worker."""
    from postventa.api.routes import admin_users
    from postventa.console.app import install_console

    app.include_router(admin_users.router)
    install_console(
        app,
        settings,
        database,
        clock,
        meli=meli,
        guide=app.state.context.guide,
        on_message_queued=background.wake_delivery if background is not None else None,
    )


def app_from_environment() -> FastAPI:
    """The app of one server process: settings from the environment, logging configured here (a
    spawned process inherits nothing of its parent's configuration)."""
    from postventa.gc_tuning import freeze_startup_objects
    from postventa.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    application = create_app(settings)
    freeze_startup_objects()
    return application
