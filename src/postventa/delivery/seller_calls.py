"""The Mercado Libre calls one seller's notifications may cause: `calls_per_minute` in any minute,
and no more than its share of them in any one second (domain/notifications.calls_per_second).

Anyone may post notifications naming a seller, so without this a flood of forged ones would spend
the application's shared budget of reads (meli/pacing.py), which delivery and the poll need too.
A moving window (the `limits` library), kept in this process's memory: with several worker
processes each allows the seller as much (documented in docs/operations.md). A notification whose
seller has no call left is not attempted; the processor hands it back, due, and skips the seller's
notifications until its window has room again.
"""

from __future__ import annotations

import time

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from postventa.domain.notifications import calls_per_second

MIN_WAIT_SECONDS = 0.05


class SellerCalls:
    """Per-seller moving windows of the calls caused by notifications."""

    def __init__(self, calls_per_minute: int) -> None:
        self.strategy = MovingWindowRateLimiter(MemoryStorage())
        self.items: tuple[RateLimitItem, ...] = (
            RateLimitItemPerSecond(calls_per_second(calls_per_minute)),
            RateLimitItemPerMinute(calls_per_minute),
        )

    async def take(self, seller_id: int, calls: int) -> float | None:
        """Spend `calls` of the seller's windows; None when they fit, else how many seconds until the
        fullest window has room again (nothing spent then)."""
        key = str(seller_id)
        for item in self.items:
            cost = min(calls, item.amount)
            if not await self.strategy.test(item, key, cost=cost):
                stats = await self.strategy.get_window_stats(item, key)
                return max(MIN_WAIT_SECONDS, stats.reset_time - time.time())
        for item in self.items:
            await self.strategy.hit(item, key, cost=min(calls, item.amount))
        return None
