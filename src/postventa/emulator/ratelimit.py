"""Mercado Libre's rate limit as it counts it: per application (client id) and per endpoint (method
and path with its ids replaced), each with a budget per minute, reads (GET) with one and writes
(POST/PUT/DELETE) with the other (research §2.7, §2.10). Every seller and every process of one
application share the application's budgets. A sliding one-minute window of request instants."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0
ID_SEGMENT_MIN_CHARS = 24  # a path segment this long is an id even without digits (message ids)


class RateLimiter:
    """Counts each application's calls to each endpoint over the last minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, str], deque[float]] = {}

    def allow(self, client_id: str, endpoint: str, per_minute: int) -> bool:
        """Count this call if the application's budget for `endpoint` allows it; False when over."""
        now = self._clock()
        window = self._windows.setdefault((client_id, endpoint), deque())
        while window and window[0] <= now - WINDOW_SECONDS:
            window.popleft()
        if len(window) >= per_minute:
            return False
        window.append(now)
        return True


def request_kind(method: str) -> str:
    """`read` for GET and HEAD, `write` otherwise."""
    return "read" if method.upper() in ("GET", "HEAD") else "write"


def endpoint_key(method: str, path: str) -> str:
    """The endpoint a call counts against: `GET /messages/packs/{id}/sellers/{id}`.

    A path segment is an id when it has a digit or is long (a 32-hex message id), so every pack,
    seller and message of one route shares one budget.
    """
    segments = path.rstrip("/").split("/")
    template = "/".join(
        "{id}" if len(segment) >= ID_SEGMENT_MIN_CHARS or any(c.isdigit() for c in segment) else segment
        for segment in segments
    )
    return f"{method.upper()} {template or '/'}"
