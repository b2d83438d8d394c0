"""Failed sign-ins slowed down per email and per client address (brute force), with `limits`' moving
window as the API's rate limits use it. Counted in this process's memory: several API processes each
count their own (docs/console.md)."""

from __future__ import annotations

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

# A person mistyping gets several tries; a guesser gets a handful per quarter hour (docs/console.md).
FAILURES_PER_EMAIL = RateLimitItemPerMinute(5, 15)
FAILURES_PER_ADDRESS = RateLimitItemPerMinute(20, 15)


class SignInThrottle:
    """Counts failed sign-ins; once an email or an address has too many, sign-ins are refused
    without the password being checked, until the window moves on."""

    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def allows(self, email: str, address: str) -> bool:
        """Whether a sign-in for this email from this address may be tried now."""
        return self._limiter.test(FAILURES_PER_EMAIL, "email", email) and self._limiter.test(
            FAILURES_PER_ADDRESS, "address", address
        )

    def failed(self, email: str, address: str) -> None:
        """Count a failed sign-in against both."""
        self._limiter.hit(FAILURES_PER_EMAIL, "email", email)
        self._limiter.hit(FAILURES_PER_ADDRESS, "address", address)
