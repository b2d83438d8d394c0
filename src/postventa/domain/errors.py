"""One error root with stable codes; the HTTP edge maps each kind to a status.

A rule that refuses a request raises (or returns) a `Refusal`: the kind says which check of the
contract failed (and so which status the API answers), the code is a stable snake_case name an
integrator can switch on, and the message names the parameter or the rule in plain words.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RefusalKind(enum.Enum):
    """Which check of the contract (§3.5) refused the request."""

    UNREADABLE = "unreadable"  # the request itself cannot be read (check 0)
    TOO_LARGE = "too_large"  # the body is over the limit (check 0)
    UNSUPPORTED_MEDIA = "unsupported_media"  # a body in a format the endpoint does not take (check 0)
    UNAUTHENTICATED = "unauthenticated"  # check 1
    INVALID = "invalid"  # checks 2, 5 and 7
    FORBIDDEN = "forbidden"  # check 3
    RATE_LIMITED = "rate_limited"  # check 4
    NOT_FOUND = "not_found"  # check 6
    PRECONDITION = "precondition"  # check 8
    CONFLICT = "conflict"  # check 9
    KEY_REUSED = "key_reused"  # an Idempotency-Key already used with a different request
    UPSTREAM = "upstream"  # Mercado Libre could not be reached or answered an error (admin operations)
    UNAVAILABLE = "unavailable"  # a store the check needs is down (check 4's shared counters)


@dataclass(frozen=True)
class Refusal:
    """A decision not to do what was asked, with a stable code and a readable message."""

    kind: RefusalKind
    code: str
    message: str


class PostventaError(Exception):
    """The root of every refusal raised by the rules and services."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal

    @classmethod
    def of(cls, kind: RefusalKind, code: str, message: str) -> PostventaError:
        """Build the error for one refusal."""
        return cls(Refusal(kind, code, message))


def invalid(code: str, message: str) -> PostventaError:
    """A parameter is invalid (400)."""
    return PostventaError.of(RefusalKind.INVALID, code, message)


def not_found(code: str, message: str) -> PostventaError:
    """A resource does not exist for this account (404)."""
    return PostventaError.of(RefusalKind.NOT_FOUND, code, message)
