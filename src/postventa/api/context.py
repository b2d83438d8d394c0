"""What every request handler needs: settings, database, rate limiter, clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from postventa.api.ratelimit import RateLimiter
from postventa.config import Settings
from postventa.store.engine import Database


def utc_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class Context:
    """Shared by all requests of one application."""

    settings: Settings
    database: Database
    rate_limiter: RateLimiter
    clock: Callable[[], dt.datetime] = field(default=utc_now)


def context_of(request: Request) -> Context:
    """The application's context."""
    context: Context = request.app.state.context
    return context
