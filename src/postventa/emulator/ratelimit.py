"""Mercado Libre's rate limit: per application, reads (GET) and writes (POST/PUT/DELETE) each share
a budget per minute (research §2.7). A sliding one-minute window of request instants."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class RateLimiter:
    """Counts each application's reads and writes over the last minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, str], deque[float]] = {}

    def allow(self, client_id: str, kind: str, per_minute: int) -> bool:
        """Count this request if the application's budget of `kind` allows it; False when over."""
        now = self._clock()
        window = self._windows.setdefault((client_id, kind), deque())
        while window and window[0] <= now - WINDOW_SECONDS:
            window.popleft()
        if len(window) >= per_minute:
            return False
        window.append(now)
        return True


def request_kind(method: str) -> str:
    """`read` for GET and HEAD, `write` otherwise."""
    return "read" if method.upper() in ("GET", "HEAD") else "write"
