"""Failed sign-ins slowed down per email and per client address (brute force), with `limits`' moving
window as the API's rate limits use it.

The failures are counted in this process's memory, or in Redis when POSTVENTA_REDIS_URL is set (the
Redis the API's rate limits use), so that every API process (`serve --workers N`) counts the same
failures. When Redis cannot be reached the sign-in is refused as unavailable, without the password
being checked: neither let through uncounted nor failed with a 500 (docs/decisions.md).

Emails are counted under their SHA-256, so that what someone typed in the email field (a password,
now and then) is not kept readable in Redis.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import structlog
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from postventa.redis_limits import redis_storage

# A person mistyping gets several tries; a guesser gets a handful per quarter hour (docs/console.md).
FAILURES_PER_EMAIL = RateLimitItemPerMinute(5, 15)
FAILURES_PER_ADDRESS = RateLimitItemPerMinute(20, 15)
REDIS_KEY_PREFIX = "postventa-console"

log = structlog.get_logger("postventa.console")


class ThrottleUnavailable(Exception):
    """The failures cannot be counted now (Redis cannot be reached): no sign-in may be tried."""


class SignInThrottle:
    """Counts failed sign-ins; once an email or an address has too many, sign-ins are refused
    without the password being checked, until the window moves on."""

    def __init__(
        self, storage: Storage | None = None, *, close: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())
        self._close = close

    @classmethod
    def from_settings(cls, redis_url: str | None) -> SignInThrottle:
        """Counted in memory, or in the Redis of `redis_url` (shared by every process)."""
        if redis_url is None:
            return cls()
        storage, close = redis_storage(redis_url, REDIS_KEY_PREFIX)
        return cls(storage, close=close)

    async def allows(self, email: str, address: str) -> bool:
        """Whether a sign-in for this email from this address may be tried now; raises
        ThrottleUnavailable when that cannot be known."""
        checks = (
            (FAILURES_PER_EMAIL, "email", _email_key(email)),
            (FAILURES_PER_ADDRESS, "address", address),
        )
        for item, kind, identity in checks:
            if not await self._call(self._limiter.test, item, kind, identity):
                return False
        return True

    async def failed(self, email: str, address: str) -> None:
        """Count a failed sign-in against both; raises ThrottleUnavailable when it cannot be counted."""
        await self._call(self._limiter.hit, FAILURES_PER_EMAIL, "email", _email_key(email))
        await self._call(self._limiter.hit, FAILURES_PER_ADDRESS, "address", address)

    async def aclose(self) -> None:
        """Close the Redis connections, if any."""
        if self._close is not None:
            await self._close()

    @staticmethod
    async def _call(
        operation: Callable[[RateLimitItem, str, str], Awaitable[bool]], item: RateLimitItem, *keys: str
    ) -> bool:
        try:
            return await operation(item, *keys)
        except StorageError as error:
            log.warning("signin_throttle_unavailable", error_type=type(error.storage_error).__name__)
            raise ThrottleUnavailable from error


def _email_key(email: str) -> str:
    return hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()
