"""When to try a request again, and after how long: a pure decision of (outcome, retries so far).

- 429: always (the server refused before doing anything), after the wait it asks for.
- 409 `idempotency_key_in_use`: the first attempt of this same send is still being processed; wait.
- No response (connection refused or dropped, timeout) and 5xx: only when repeating is harmless,
  i.e. reads and sends carrying an Idempotency-Key, with exponential backoff and jitter.
- Anything else is the answer.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from postventa_sdk.errors import ApiError, RateLimited, ServerError

KEY_IN_USE = "idempotency_key_in_use"

log = logging.getLogger("postventa_sdk")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry, and the waits; `Client(retry=RetryPolicy(...))` or `max_retries=`."""

    max_retries: int = 3
    backoff_base_seconds: float = 0.5  # the first backoff; doubles with each retry
    backoff_max_seconds: float = 8.0
    max_wait_seconds: float = 60.0  # a longer Retry-After is not waited for: the error is raised at once
    jitter: bool = True  # a random 50–100 % of each backoff, so clients do not retry in step

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if min(self.backoff_base_seconds, self.backoff_max_seconds, self.max_wait_seconds) < 0:
            raise ValueError("waits must be 0 or more seconds")

    def backoff(self, retry_number: int) -> float:
        """The wait before retry `retry_number` (1 for the first) when the server named none."""
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * 2.0 ** (retry_number - 1))
        return ceiling * random.uniform(0.5, 1.0) if self.jitter else ceiling

    def after_error(self, retries: int, error: ApiError, *, retry_safe: bool) -> float | None:
        """Seconds to wait before retrying after an error response, or None to raise it."""
        if retries >= self.max_retries:
            return None
        retry_number = retries + 1
        if isinstance(error, RateLimited):
            return self._bounded(error.retry_after, retry_number)
        if error.status == 409 and error.code == KEY_IN_USE:
            return self.backoff(retry_number)
        if isinstance(error, ServerError) and retry_safe:
            return self._bounded(_retry_after(error), retry_number)
        return None

    def after_no_response(self, retries: int, *, retry_safe: bool) -> float | None:
        """Seconds to wait before retrying after a transport failure, or None to raise it."""
        if retries >= self.max_retries or not retry_safe:
            return None
        return self.backoff(retries + 1)

    def _bounded(self, asked: float | None, retry_number: int) -> float | None:
        if asked is None:
            return self.backoff(retry_number)
        return asked if asked <= self.max_wait_seconds else None


def _retry_after(error: ApiError) -> float | None:
    try:
        return float(error.headers.get("retry-after", ""))
    except ValueError:
        return None


def log_retry(method: str, path: str, retry_number: int, max_retries: int, wait: float, why: str) -> None:
    """One warning per retry: what is retried, why, and how long the client waits."""
    log.warning(
        "postventa_sdk.retry: %s %s in %.2f s (retry %d of %d): %s",
        method,
        path,
        wait,
        retry_number,
        max_retries,
        why,
        extra={
            "event": "postventa_sdk.retry",
            "method": method,
            "path": path,
            "retry": retry_number,
            "max_retries": max_retries,
            "wait_seconds": wait,
            "reason": why,
        },
    )
