"""Mercado Libre's rate limit, kept on our side: a budget per application and endpoint, shared by
every process of the application, and a cool-down after a 429 that every process honours.

Mercado Libre counts calls per application (client id) and per endpoint (method and path with its
ids replaced), 500 a minute (research §2.10). The budget is a `limits` moving window over one shared
storage: Redis, the database (store/meli_budget.py) or, for one process alone, memory.

A process reserves calls in small blocks (one storage round trip per block, not per call) and spends
a block within `lease_seconds`, dropping what is left. A block's calls are counted at reservation,
so a window of `window + lease` seconds holds every call made in any `window`-second span: however
many processes reserve, their calls in any minute stay within the budget. Block sizes adapt: a block
spent whole doubles the next one (up to `max_block`: 10 calls, or a hundredth of a larger budget); a
block dropped half-used shrinks it, so a quiet process does not hold calls a busy one could make.

A 429 records a cool-down for that application and endpoint in the same storage (Retry-After, or
`cool_down_seconds`, 10 by default: Mercado Libre documents no Retry-After). Every process looks for
one whenever it reserves a block, so another process stops calling that endpoint within one lease.

A call waits for its turn (the window, a cool-down) up to `max_wait_seconds`; a turn further away
raises `NoTurnSoon` at once, so that a worker's slot and lease are not held through it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from postventa.redis_limits import redis_storage

WINDOW_SECONDS = 60
LEASE_SECONDS = 2
MAX_BLOCK = 10  # calls in one block, unless a hundredth of the budget is more
LARGEST_BLOCK = 1000
DEFAULT_COOL_DOWN_SECONDS = 10.0
DEFAULT_APPLICATION = "default"  # the key of calls that name no application
MIN_WAIT_SECONDS = 0.05
REDIS_KEY_PREFIX = "postventa-meli"


class NoTurnSoon(Exception):
    """The call's turn is further away than the budget may wait: nothing was sent."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the next turn is {seconds:.1f} s away")
        self.seconds = seconds


@dataclass
class _Block:
    """This process's share of one application's budget for one endpoint."""

    left: int = 0  # calls still to spend
    size: int = 1  # calls reserved last time
    used: int = 0  # of those, spent
    until: float = 0.0  # monotonic end of the lease
    cooling_until: float = 0.0  # monotonic end of a known cool-down


class CallBudget:
    """Calls per application and endpoint, `reads_per_minute` for GET and `writes_per_minute` for
    the others, reserved from `storage` in blocks; a cool-down after a 429."""

    def __init__(
        self,
        reads_per_minute: int = 500,
        writes_per_minute: int = 500,
        storage: Storage | None = None,
        *,
        window_seconds: int = WINDOW_SECONDS,
        lease_seconds: int = LEASE_SECONDS,
        max_block: int | None = None,
        cool_down_seconds: float = DEFAULT_COOL_DOWN_SECONDS,
        max_wait_seconds: float | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`max_wait_seconds`: a call whose turn is further away raises NoTurnSoon at once rather than
        holding its caller (a worker's slot, its lease) that long; None waits as long as needed."""
        self.storage = storage if storage is not None else MemoryStorage()
        self.strategy = MovingWindowRateLimiter(self.storage)
        # Counted over the window plus a lease: a call may be made up to a lease after its block.
        self.reads = RateLimitItemPerSecond(reads_per_minute, window_seconds + lease_seconds)
        self.writes = RateLimitItemPerSecond(writes_per_minute, window_seconds + lease_seconds)
        self.lease_seconds = lease_seconds
        self.max_block = max_block
        self.cool_down_seconds = cool_down_seconds
        self.max_wait_seconds = max_wait_seconds
        self._close = close
        self._blocks: dict[tuple[str, str, str], _Block] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        self._locks_loop: asyncio.AbstractEventLoop | None = None

    async def aclose(self) -> None:
        """Close the storage's connections, if the budget opened them."""
        if self._close is not None:
            await self._close()

    async def acquire(self, application: str, method: str, endpoint: str) -> None:
        """Return once one more call to `method endpoint` fits the application's budget, waiting for
        the window or a cool-down (up to `max_wait_seconds`: past it, NoTurnSoon)."""
        key = (application, method, endpoint)
        block = self._blocks.get(key)
        if block is None:
            block = self._blocks[key] = _Block()
        if _take(block, time.monotonic()):
            return
        async with self._lock(key):
            while True:
                now = time.monotonic()
                if now < block.cooling_until:
                    await self._wait(block.cooling_until - now)
                    continue
                if _take(block, now):
                    return
                await self._reserve(key, block)

    async def _wait(self, seconds: float) -> None:
        """Sleep until the next turn, or raise NoTurnSoon when it is further than `max_wait_seconds`."""
        if self.max_wait_seconds is not None and seconds > self.max_wait_seconds:
            raise NoTurnSoon(seconds)
        await asyncio.sleep(seconds)

    async def cool_down(self, application: str, method: str, endpoint: str, seconds: float | None) -> None:
        """Mercado Libre answered 429: no process calls `method endpoint` for this application for
        `seconds` (its Retry-After), or else `cool_down_seconds`."""
        if seconds is None or seconds <= 0:
            seconds = self.cool_down_seconds
        key = (application, method, endpoint)
        block = self._blocks.setdefault(key, _Block())
        block.cooling_until = max(block.cooling_until, time.monotonic() + seconds)
        block.left = 0
        await self.storage.incr(_cool_down_key(key), max(1, math.ceil(seconds)))

    async def _reserve(self, key: tuple[str, str, str], block: _Block) -> None:
        """Reserve the next block from the storage, or learn how long to wait for one."""
        waiting = await self._cool_down_left(key)
        if waiting > 0:
            block.cooling_until = time.monotonic() + waiting
            return
        item = self.item(key[1])
        largest = self.max_block or min(LARGEST_BLOCK, max(MAX_BLOCK, item.amount // 100))
        wanted = min(_next_size(block, max(1, largest)), item.amount)
        started = time.monotonic()
        granted = wanted if await self.strategy.hit(item, *key, cost=wanted) else 0
        if not granted:
            stats = await self.strategy.get_window_stats(item, *key)
            fits = min(wanted, stats.remaining)
            if fits > 0 and await self.strategy.hit(item, *key, cost=fits):
                granted = fits
            else:
                await self._wait(max(MIN_WAIT_SECONDS, stats.reset_time - time.time()))
                return
        block.left, block.size, block.used = granted, granted, 0
        block.until = started + self.lease_seconds

    async def _cool_down_left(self, key: tuple[str, str, str]) -> float:
        """Seconds left of a cool-down some process recorded, or 0."""
        cool_key = _cool_down_key(key)
        if not await self.storage.get(cool_key):
            return 0.0
        return max(0.0, await self.storage.get_expiry(cool_key) - time.time())

    def _lock(self, key: tuple[str, str, str]) -> asyncio.Lock:
        """The key's reservation lock in the running event loop (a client may serve several loops)."""
        loop = asyncio.get_running_loop()
        if self._locks_loop is not loop:
            self._locks, self._locks_loop = {}, loop
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def item(self, method: str) -> RateLimitItem:
        """The limit `method`'s calls are counted against."""
        return self.reads if method == "GET" else self.writes


def _take(block: _Block, now: float) -> bool:
    """Spend one call of the block, if it has one, its lease runs and no cool-down is known."""
    if block.left <= 0 or now >= block.until or now < block.cooling_until:
        return False
    block.left -= 1
    block.used += 1
    return True


def _next_size(block: _Block, max_block: int) -> int:
    """Double after a block spent whole; after one dropped part-used, what it actually used."""
    if block.until == 0.0:
        return 1
    if block.used >= block.size:
        return min(max_block, block.size * 2)
    return max(1, block.used)


def _cool_down_key(key: tuple[str, str, str]) -> str:
    application, method, endpoint = key
    return f"cool-down/{application}/{method}/{endpoint}"


def redis_budget_storage(redis_url: str) -> tuple[Storage, Callable[[], Awaitable[None]]]:
    """A Redis storage for the budget (limits' own), and what closes its connections."""
    return redis_storage(redis_url, REDIS_KEY_PREFIX)
