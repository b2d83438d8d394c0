"""Helpers the commands share: settings, a database for one command, errors as exit codes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.config import Settings
from postventa.domain.errors import PostventaError, RefusalKind
from postventa.gc_tuning import freeze_startup_objects
from postventa.store.engine import Database
from postventa.store.migrate import current_revision, head_revision, upgrade
from postventa.wiring import open_database

if TYPE_CHECKING:  # the marketplace client and the worker are imported by the commands that use them
    from wsgiref.simple_server import WSGIServer

    from postventa.meli.client import MeliClient

T = TypeVar("T")
console = Console()
errors = Console(stderr=True, soft_wrap=True, highlight=False)

EXIT_INVALID = 2
EXIT_NOT_FOUND = 3
EXIT_NOT_READY = 4


def report_error(text: str) -> None:
    """One line on stderr, printed as is (a name with [brackets] is not markup)."""
    errors.print(f"error {text}", markup=False, style="red")


def emit(document: object) -> None:
    """One JSON line on stdout: what scripts read (never wrapped, never styled)."""
    typer.echo(json.dumps(document, ensure_ascii=False))


def now() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


def settings() -> Settings:
    """Settings from the environment."""
    return Settings()


def run_command(command: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a refusal is reported on stderr and exits 2 (invalid) or 3 (not found)."""
    try:
        return asyncio.run(command)
    except PostventaError as error:
        refusal = error.refusal
        report_error(f"{refusal.code}: {refusal.message}")
        raise typer.Exit(EXIT_NOT_FOUND if refusal.kind is RefusalKind.NOT_FOUND else EXIT_INVALID) from None


def in_transaction(work: Callable[[AsyncConnection], Awaitable[T]], *, write: bool = True) -> T:
    """Run one use case in one transaction on the configured database; refusals exit non-zero."""

    async def run() -> T:
        database = open_database(settings())
        try:
            await ensure_schema(database)
            async with database.transaction(write=write) as connection:
                return await work(connection)
        finally:
            await database.dispose()

    return run_command(run())


async def ensure_schema(database: Database) -> None:
    """An embedded SQLite database is migrated on first use; PostgreSQL must be migrated on purpose."""
    if database.is_sqlite:
        await upgrade(database)
        return
    current, head = await current_revision(database), head_revision()
    if current != head:
        report_error(
            f"the database is at revision {current or 'none'}, this version needs {head}: "
            "run `postventa db upgrade` first."
        )
        raise typer.Exit(EXIT_NOT_READY)


def with_marketplace(work: Callable[[Database, MeliClient], Awaitable[T]]) -> T:
    """Run a use case that talks to Mercado Libre; refusals exit non-zero."""

    from postventa.wiring import meli_client

    async def run() -> T:
        current = settings()
        database = open_database(current)
        meli = meli_client(current, database=database)
        try:
            await ensure_schema(database)
            return await work(database, meli)
        finally:
            await meli.aclose()
            await database.dispose()

    return run_command(run())


async def run_worker(
    current: Settings, concurrency: int, metrics_address: tuple[str, int] | None = None
) -> None:
    """The delivery worker and the inbound processor, until SIGINT or SIGTERM; then a graceful stop.

    With a metrics address, this process's Prometheus metrics are served there (host, port) meanwhile.
    """
    from postventa.wiring import build_background, meli_client

    metrics_server = _serve_metrics(*metrics_address) if metrics_address is not None else None
    database = open_database(current)
    meli = meli_client(current, database=database)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await ensure_schema(database)
        background = build_background(current, database, meli, concurrency=concurrency)
        freeze_startup_objects()
        await background.run(stop)
    finally:
        await meli.aclose()
        await database.dispose()
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()


def _serve_metrics(host: str, port: int) -> WSGIServer:
    """prometheus_client's exposition server in a thread; a port that cannot be bound exits 2."""
    from prometheus_client import start_http_server

    # The service's metrics are registered when their module is imported: before the first scrape,
    # not when the worker's modules happen to be.
    import postventa.metrics  # noqa: F401

    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as error:
        report_error(f"cannot serve metrics on {host}:{port}: {error.strerror or error}")
        raise typer.Exit(EXIT_INVALID) from None
    return server
