"""The moving window of one process, kept in memory at a constant cost per request.

`limits`' own MemoryStorage keeps each key's window as a list, newest first: every counted request
inserts at the front (a copy of the whole window), and starts a clean-up task that sorts out the
expired entries on a worker thread. With a limit of thousands a minute that was a tenth of a
send's cost (docs/performance.md). This storage keeps the same window as a deque, oldest first,
dropping expired entries from the old end as it goes: the strategy (`limits`'
MovingWindowRateLimiter) and the answers are the same, at O(1) a request.
"""

from __future__ import annotations

import time
from collections import deque
from typing import ClassVar

from limits.aio.storage import MovingWindowSupport, Storage

SWEEP_EVERY_HITS = 10_000  # how often the keys whose windows emptied are forgotten


class LocalMovingWindowStorage(Storage, MovingWindowSupport):
    """Moving-window entries per key, in this process's memory (for one API process)."""

    STORAGE_SCHEME: ClassVar[list[str] | None] = ["async+postventa-memory"]  # type: ignore[misc]

    def __init__(self) -> None:
        super().__init__()
        self._windows: dict[str, tuple[deque[float], int]] = {}  # key → (entry times, window seconds)
        self._counters: dict[str, tuple[int, float]] = {}  # key → (count, expires at): fixed windows
        self._hits = 0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Add `amount` entries unless that would put more than `limit` in the last `expiry` seconds."""
        if amount > limit:
            return False
        now = time.time()
        self._sweep_now_and_then(now)
        entries = self._window(key, expiry, now)
        if len(entries) + amount > limit:
            return False
        entries.extend([now] * amount)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """(When the oldest entry in the window was added, how many entries it holds); (now, 0) if none."""
        now = time.time()
        entries = self._window(key, expiry, now)
        # As `limits` counts: an entry exactly `expiry` old is out of the window here, though a hit
        # still counts it in.
        on_edge = 0
        while on_edge < len(entries) and entries[on_edge] == now - expiry:
            on_edge += 1
        if on_edge == len(entries):
            return now, 0
        return entries[on_edge], len(entries) - on_edge

    def hit_now(self, key: str, limit: int, expiry: int) -> tuple[bool, float, int]:
        """`acquire_entry` then `get_moving_window` in one synchronous call, with their answers:
        (added, oldest entry's time, entries in the window). The rate limiter's path for this storage,
        which skips `limits`' two awaited, error-wrapped storage calls (docs/performance.md)."""
        now = time.time()
        self._sweep_now_and_then(now)
        entries = self._window(key, expiry, now)
        added = len(entries) + 1 <= limit
        if added:
            entries.append(now)
        on_edge = 0
        while on_edge < len(entries) and entries[on_edge] == now - expiry:
            on_edge += 1
        if on_edge == len(entries):
            return added, now, 0
        return added, entries[on_edge], len(entries) - on_edge

    def _window(self, key: str, expiry: int, now: float) -> deque[float]:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = (deque(), expiry)
        entries = window[0]
        oldest_kept = now - expiry
        while entries and entries[0] < oldest_kept:
            entries.popleft()
        return entries

    def _sweep_now_and_then(self, now: float) -> None:
        self._hits += 1
        if self._hits % SWEEP_EVERY_HITS:
            return
        for key, (entries, expiry) in list(self._windows.items()):
            if not entries or entries[-1] < now - expiry:
                del self._windows[key]
        for key, (_count, expires_at) in list(self._counters.items()):
            if expires_at <= now:
                del self._counters[key]

    # Fixed-window counters: the Storage interface asks for them (other strategies use them).

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        count = await self.get(key)
        expires_at = self._counters[key][1] if count else time.time() + expiry
        self._counters[key] = (count + amount, expires_at)
        return count + amount

    async def get(self, key: str) -> int:
        counter = self._counters.get(key)
        if counter is None or counter[1] <= time.time():
            self._counters.pop(key, None)
            return 0
        return counter[0]

    async def get_expiry(self, key: str) -> float:
        counter = self._counters.get(key)
        return counter[1] if counter is not None else time.time()

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        count = len(self._windows) + len(self._counters)
        self._windows.clear()
        self._counters.clear()
        return count

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)
        self._counters.pop(key, None)
