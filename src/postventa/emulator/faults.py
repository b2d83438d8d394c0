"""Fault injection: rules that make matching calls fail the ways a real network and API fail.

A rule's `Route` is an `fnmatch` glob over `"METHOD /path"`; `Rate` is the chance per call. The
first matching rule whose draw hits applies. Draws come from one `random.Random`, seeded by
`EmulatorConfig.fault_seed` (or the `Seed` of `PUT /_emulator/faults`) for reproducible runs.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass
from typing import Any

from postventa.emulator.errors import generic_body

FAULT_KINDS = ("429", "409", "451", "500", "503", "delay", "timeout", "reset", "lost_response")
TIMEOUT_DEFAULT_SECONDS = 30.0
DELAY_DEFAULT_SECONDS = 1.0
_ANSWERS = {
    "429": (429, "too_many_requests", "too many requests"),
    "500": (500, "internal_server_error", "Internal server error"),
    "503": (503, "service_unavailable", "Service unavailable"),
    "timeout": (504, "gateway_timeout", "Gateway timeout"),
}
# The action guide's envelope, as its error table documents these two (research §1.7): a lock held
# by a concurrent request on the same sale, and a buyer who deactivated the account.
_GUIDE_ANSWERS = {
    "409": (409, "lock", "conflict", "There is another request locking this operation"),
    "451": (451, "blocked_by_deactivated_account", "unavailable", "Unavailable"),
}


@dataclass(frozen=True)
class FaultRule:
    """One rule of `PUT /_emulator/faults`."""

    route: str
    kind: str
    rate: float = 1.0
    retry_after_seconds: float | None = None
    delay_seconds: float | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether the rule covers this call."""
        return fnmatch.fnmatchcase(f"{method.upper()} {path}", self.route)

    @property
    def wait_seconds(self) -> float:
        """How long `delay` and `timeout` wait (`timeout` defaults to 30 s, `delay` to 1 s)."""
        if self.delay_seconds is not None:
            return self.delay_seconds
        return TIMEOUT_DEFAULT_SECONDS if self.kind == "timeout" else DELAY_DEFAULT_SECONDS

    def to_json(self) -> dict[str, Any]:
        """The rule as the control API shows it."""
        return {
            "Route": self.route,
            "Kind": self.kind,
            "Rate": self.rate,
            "RetryAfterSeconds": self.retry_after_seconds,
            "DelaySeconds": self.delay_seconds,
        }


@dataclass(frozen=True)
class FaultAnswer:
    """The HTTP answer of a refusing fault."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class FaultInjector:
    """The rules in force and the random source that decides each call."""

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)
        self.rules: tuple[FaultRule, ...] = ()

    def replace(self, rules: list[FaultRule], seed: int | None = None) -> None:
        """Put these rules in force (an empty list clears them), reseeding when asked."""
        self.rules = tuple(rules)
        if seed is not None:
            self._random.seed(seed)

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The fault for this call, or None; one draw per matching rule."""
        for rule in self.rules:
            if rule.matches(method, path) and self._random.random() < rule.rate:
                return rule
        return None


def fault_answer(rule: FaultRule) -> FaultAnswer:
    """The answer of a `429`, `409`, `451`, `500`, `503` or `timeout` (504) fault."""
    if rule.kind in _GUIDE_ANSWERS:
        status, cause, error, text = _GUIDE_ANSWERS[rule.kind]
        body = {"cause": cause, "error": error, "message": text, "status_code": status}
        return FaultAnswer(status, body, {})
    status, error, message = _ANSWERS[rule.kind]
    headers = {}
    if rule.kind == "429" and rule.retry_after_seconds is not None:
        headers["Retry-After"] = _seconds_header(rule.retry_after_seconds)
    return FaultAnswer(status, generic_body(status, error, message), headers)


def _seconds_header(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)
