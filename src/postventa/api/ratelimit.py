"""Check 4: requests per API key and endpoint class in a one-minute window, with Alephee's headers.

The limit is per key, shared by all its accounts (as Alephee counts). Counters live in memory,
which is right for one process; several processes will share them through Redis (hardening issue).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

SEND = "send"
READ = "read"


@dataclass(frozen=True)
class RateLimitState:
    """Where a key stands after a request."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int  # -1 when allowed

    def headers(self) -> dict[str, str]:
        """x-ratelimit-* as Alephee sends them, and Retry-After on a refusal."""
        headers = {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_seconds),
            "x-ratelimit-retryafter": str(self.retry_after_seconds),
        }
        if not self.allowed:
            headers["retry-after"] = str(self.retry_after_seconds)
        return headers


def parse_rate_limits(text: str) -> dict[str, RateLimitItem]:
    """ "send=120/minute,read=1200/minute" → a limit per endpoint class."""
    limits: dict[str, RateLimitItem] = {}
    for part in text.split(","):
        name, _, rule = part.partition("=")
        if not name.strip() or not rule.strip():
            raise ValueError(f"rate limit '{part}' is not NAME=N/PERIOD")
        limits[name.strip().lower()] = parse(rule.strip())
    missing = {SEND, READ} - limits.keys()
    if missing:
        raise ValueError(f"rate limits must name {', '.join(sorted(missing))}")
    return limits


class RateLimiter:
    """Counts each key's requests per endpoint class."""

    def __init__(self, limits: dict[str, RateLimitItem], storage: Storage | None = None) -> None:
        self.limits = limits
        self.strategy = MovingWindowRateLimiter(storage or MemoryStorage())

    async def hit(self, api_key_id: int, endpoint_class: str) -> RateLimitState:
        """Count one request; a refused one is not counted and must do nothing else."""
        item = self.limits[endpoint_class]
        allowed = await self.strategy.hit(item, str(api_key_id))
        return await self._state(item, str(api_key_id), allowed)

    async def peek(self, api_key_id: int, endpoint_class: str) -> RateLimitState:
        """Where the key stands, without counting (for a request refused before check 4)."""
        item = self.limits[endpoint_class]
        stats = await self.strategy.get_window_stats(item, str(api_key_id))
        return await self._state(item, str(api_key_id), stats.remaining > 0)

    async def _state(self, item: RateLimitItem, identifier: str, allowed: bool) -> RateLimitState:
        stats = await self.strategy.get_window_stats(item, identifier)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return RateLimitState(
            allowed=allowed,
            limit=item.amount,
            remaining=stats.remaining,
            reset_seconds=reset,
            retry_after_seconds=-1 if allowed else max(1, reset),
        )
