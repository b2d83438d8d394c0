"""Check 4: requests per API key and endpoint class in a moving window, with Alephee's and the IETF's
rate-limit headers.

The limit is per key, shared by all its accounts (as Alephee counts): the key's own limits
(`api_keys.rate_limits`) or POSTVENTA_RATE_LIMITS. Counters are kept under the key's public prefix,
unique in every database, and the endpoint class: in memory for one process, or in Redis
(POSTVENTA_REDIS_URL) so that every API process counts the same requests. When Redis cannot be
reached the request is refused with 503: neither let through uncounted nor failed with a 500.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog
from limits import RateLimitItem
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.util import WindowStats

from postventa.api.ratelimit_memory import LocalMovingWindowStorage
from postventa.domain.errors import PostventaError, RefusalKind
from postventa.redis_limits import redis_storage
from postventa.services.auth import READ, SEND, parse_rate_limits

__all__ = ["READ", "SEND", "RateLimitState", "RateLimiter", "parse_rate_limits"]

REDIS_KEY_PREFIX = "postventa"

log = structlog.get_logger("postventa.api")


@dataclass(frozen=True)
class RateLimitState:
    """Where a key stands in one endpoint class after a request."""

    allowed: bool
    policy: str  # the endpoint class, which names the policy in the IETF fields
    limit: int
    window_seconds: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int  # -1 when allowed

    def headers(self) -> dict[str, str]:
        """`raw_headers()` as text: the headers of every response but an accepted send's."""
        return {name.decode("latin-1"): value.decode("latin-1") for name, value in self.raw_headers()}

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """x-ratelimit-* as Alephee sends them, RateLimit-Policy and RateLimit as the IETF draft
        (draft-ietf-httpapi-ratelimit-headers) writes them, and Retry-After on a refusal: a
        response's raw header list (names in lower case), as every accepted send carries it."""
        limit, remaining, reset = str(self.limit), str(self.remaining), str(self.reset_seconds)
        policy = self.policy
        raw = [
            (b"x-ratelimit-limit", limit.encode()),
            (b"x-ratelimit-remaining", remaining.encode()),
            (b"x-ratelimit-reset", reset.encode()),
            (b"x-ratelimit-retryafter", str(self.retry_after_seconds).encode()),
            (b"ratelimit-policy", f'"{policy}";q={limit};w={self.window_seconds}'.encode()),
            (b"ratelimit", f'"{policy}";r={remaining};t={reset}'.encode()),
        ]
        if not self.allowed:
            raw.append((b"retry-after", str(self.retry_after_seconds).encode()))
        return raw


class RateLimiter:
    """Counts each key's requests per endpoint class, against the key's limits or the defaults."""

    def __init__(
        self,
        limits: dict[str, RateLimitItem],
        storage: Storage | None = None,
        *,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.limits = limits
        self.strategy = MovingWindowRateLimiter(storage or LocalMovingWindowStorage())
        counted_in = self.strategy.storage
        self._local = counted_in if isinstance(counted_in, LocalMovingWindowStorage) else None
        self._close = close

    @classmethod
    def from_settings(cls, rate_limits: str, redis_url: str | None) -> RateLimiter:
        """The defaults of POSTVENTA_RATE_LIMITS, counted in memory or in the Redis of redis_url."""
        limits = parse_rate_limits(rate_limits)
        if redis_url is None:
            return cls(limits)
        storage, close = redis_storage(redis_url, REDIS_KEY_PREFIX)
        return cls(limits, storage, close=close)

    async def aclose(self) -> None:
        """Close the Redis connections, if any."""
        if self._close is not None:
            await self._close()

    def limits_for(self, key_limits: str | None) -> Mapping[str, RateLimitItem]:
        """A key's own limits, or the defaults when it has none (or, defensively, a broken string)."""
        if key_limits is None:
            return self.limits
        try:
            return _parsed(key_limits)
        except ValueError:
            log.warning("rate_limits_invalid", rate_limits=key_limits)
            return self.limits

    async def hit(self, identity: str, endpoint_class: str, key_limits: str | None = None) -> RateLimitState:
        """Count one request; a refused one is not counted and must do nothing else."""
        item = self.limits_for(key_limits)[endpoint_class]
        if self._local is not None:  # in memory: the same answers as the strategy's, in one call
            expiry = item.get_expiry()
            allowed, window_start, count = self._local.hit_now(
                _storage_key(item, identity, endpoint_class), item.amount, expiry
            )
            stats = WindowStats(window_start + expiry, item.amount - count)
            return _state(endpoint_class, item, stats, allowed)
        try:
            allowed = await self.strategy.hit(item, identity, endpoint_class)
            stats = await self.strategy.get_window_stats(item, identity, endpoint_class)
        except StorageError as error:
            raise _unavailable(error) from error
        return _state(endpoint_class, item, stats, allowed)

    async def peek(self, identity: str, endpoint_class: str, key_limits: str | None = None) -> RateLimitState:
        """Where the key stands, without counting (for a request refused before check 4)."""
        item = self.limits_for(key_limits)[endpoint_class]
        try:
            stats = await self.strategy.get_window_stats(item, identity, endpoint_class)
        except StorageError as error:
            raise _unavailable(error) from error
        return _state(endpoint_class, item, stats, stats.remaining > 0)


@functools.lru_cache(maxsize=4096)
def _storage_key(item: RateLimitItem, identity: str, endpoint_class: str) -> str:
    """The key `limits`' strategy counts this limit under (so `peek` reads the same window)."""
    return item.key_for(identity, endpoint_class)


@functools.lru_cache(maxsize=1024)
def _parsed(key_limits: str) -> Mapping[str, RateLimitItem]:
    return parse_rate_limits(key_limits)


def _state(policy: str, item: RateLimitItem, stats: WindowStats, allowed: bool) -> RateLimitState:
    reset = max(0, math.ceil(stats.reset_time - time.time()))
    return RateLimitState(
        allowed=allowed,
        policy=policy,
        limit=item.amount,
        window_seconds=item.get_expiry(),
        remaining=max(0, stats.remaining),
        reset_seconds=reset,
        retry_after_seconds=-1 if allowed else max(1, reset),
    )


def _unavailable(error: StorageError) -> PostventaError:
    log.warning("rate_limit_storage_unavailable", error_type=type(error.storage_error).__name__)
    return PostventaError.of(
        RefusalKind.UNAVAILABLE,
        "rate_limit_unavailable",
        "The rate limit cannot be checked right now; retry shortly.",
    )
