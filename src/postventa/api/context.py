"""What every request handler needs: settings, database, rate limiter, clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from postventa.api.ratelimit import RateLimiter
from postventa.config import Settings
from postventa.meli.client import MeliClient
from postventa.services.guide import GuideCapsCache
from postventa.store.engine import Database
from postventa.store.group_commit import Writes

# A send's checks and write, given the transaction to run in (api/routes/messages.py).
SendWork = Callable[[AsyncConnection], Awaitable[Response]]


def utc_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class Context:
    """Shared by all requests of one application."""

    settings: Settings
    database: Database
    rate_limiter: RateLimiter
    meli: MeliClient
    clock: Callable[[], dt.datetime] = field(default=utc_now)
    # Mercado Libre's action-guide caps, asked with a short cache (services/guide.py).
    guide: GuideCapsCache = field(default_factory=GuideCapsCache)
    # Set when a delivery worker / inbound processor runs in this process: wake them at once.
    on_message_queued: Callable[[], None] = field(default=lambda: None)
    on_notification: Callable[[], None] = field(default=lambda: None)
    # Sends share their commits with the others of the moment on SQLite (store/group_commit.py).
    sends: Writes[SendWork, Response] = field(init=False)

    def __post_init__(self) -> None:
        self.sends = self.database.group_commit(_run_send, group_on_postgresql=False)


async def _run_send(connection: AsyncConnection, work: SendWork) -> Response:
    return await work(connection)


def context_of(request: Request) -> Context:
    """The application's context."""
    context: Context = request.app.state.context
    return context
