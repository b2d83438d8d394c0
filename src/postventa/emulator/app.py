"""The Mercado Libre emulator application, in-process (`create_emulator_app`) or served
(`run_emulator`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from postventa.emulator import (
    routes_control,
    routes_control_accounts,
    routes_control_packs,
    routes_feeds,
    routes_guide,
    routes_meli,
    routes_messages,
)
from postventa.emulator.config import EmulatorConfig
from postventa.emulator.edge import Edge
from postventa.emulator.errors import install_error_handlers
from postventa.emulator.runtime import Emulator

__all__ = ["EmulatorConfig", "create_emulator_app", "run_emulator"]


class EmulatorApp(FastAPI):
    """FastAPI with the emulator's edge around everything, including FastAPI's own middleware."""

    edge: Edge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """HTTP calls go through the edge (journal, faults, rate limit); the rest straight in."""
        if scope["type"] == "http":
            await self.edge(scope, receive, send, super().__call__)
        else:
            await super().__call__(scope, receive, send)


def create_emulator_app(config: EmulatorConfig | None = None) -> FastAPI:
    """A fresh emulator with empty state; `app.state.emulator` is its `Emulator`."""
    emulator = Emulator(config or EmulatorConfig())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await emulator.close()

    app = EmulatorApp(
        title="Mercado Libre emulator",
        docs_url="/_emulator/docs",
        redoc_url=None,
        openapi_url="/_emulator/openapi.json",
        lifespan=lifespan,
    )
    app.edge = Edge(emulator)
    app.state.emulator = emulator
    install_error_handlers(app)
    for router in (routes_meli.router, routes_guide.router, routes_messages.router, routes_control.router):
        app.include_router(router)
    for router in (routes_feeds.router, routes_control_accounts.router):
        app.include_router(router)
    app.include_router(routes_control_packs.router)
    return app


def run_emulator(host: str, port: int, notify_url: str | None) -> None:
    """Serve the emulator with uvicorn until interrupted (no access log: the journal records calls)."""
    uvicorn.run(
        create_emulator_app(EmulatorConfig(notify_url=notify_url)),
        host=host,
        port=port,
        access_log=False,
        server_header=False,
    )
