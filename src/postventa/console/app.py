"""The console's routes and files, added to the application by the composition root (wiring.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response

from postventa.config import Settings
from postventa.console import auth, conversation, failed, pages
from postventa.console.context import HTMX_FILE, PACKAGE_DIRECTORY, SCRIPT_FILE, ConsoleContext
from postventa.console.throttle import SignInThrottle
from postventa.meli.client import MeliClient
from postventa.services.guide import GuideCapsCache
from postventa.store.engine import Database

# The files a page loads, read once: they change only with the package (the name carries htmx's version).
STATIC_FILES = {
    HTMX_FILE: "text/javascript; charset=utf-8",
    SCRIPT_FILE: "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
STATIC_MAX_AGE_SECONDS = 3600


def install_console(
    app: FastAPI,
    settings: Settings,
    database: Database,
    clock: Callable[[], dt.datetime],
    *,
    meli: MeliClient,
    guide: GuideCapsCache,
    on_message_queued: Callable[[], None] | None = None,
) -> None:
    """Add the console's pages and static files to `app`. `guide` is the API's cache of Mercado
    Libre's caps and `on_message_queued` the API's hook that wakes the delivery worker: the console
    sends as the API does. Failed sign-ins are counted in the API's Redis when there is one
    (POSTVENTA_REDIS_URL), so that every process counts the same; its connections close with the app."""
    throttle = SignInThrottle.from_settings(settings.redis_url)
    context = ConsoleContext(
        settings=settings, database=database, clock=clock, meli=meli, guide=guide, throttle=throttle
    )
    if on_message_queued is not None:
        context.on_message_queued = on_message_queued
    app.state.console = context

    @asynccontextmanager
    async def close_at_shutdown(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await throttle.aclose()

    # An included router's lifespan runs inside the application's (FastAPI merges them).
    app.include_router(APIRouter(lifespan=close_at_shutdown))
    app.include_router(auth.build_router(context))
    app.include_router(pages.build_router(context))
    app.include_router(conversation.build_router(context))
    app.include_router(failed.build_router(context))
    contents = {name: (PACKAGE_DIRECTORY / "static" / name).read_bytes() for name in STATIC_FILES}

    @app.get("/console/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in contents:
            return Response(status_code=404)
        return Response(
            contents[name],
            media_type=STATIC_FILES[name],
            headers={"cache-control": f"public, max-age={STATIC_MAX_AGE_SECONDS}"},
        )
