"""Delivery to Mercado Libre as pure decisions: how a failure is classified, when to retry.

Every Mercado Libre error becomes a `DeliveryFailure` with a stable code and a kind that says
what the worker must do next. The kinds keep "no response" apart from "error response": only an
attempt that may have reached Mercado Libre (`UNKNOWN`) is reconciled before it is tried again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_ATTEMPTS = 10
BASE_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 300.0
# A temporary block on Mercado Libre's side (payment pending, a lock, a deactivated-then-restored
# account) is looked at again this often; waiting never counts against the retry budget.
WAIT_SECONDS = 600.0


class MessageStatus(enum.StrEnum):
    """Where a message stands (the `Status` a client reads)."""

    QUEUED = "queued"  # accepted, waiting for its (next) attempt
    SENDING = "sending"  # an attempt holds it
    PENDING_MODERATION = "pending_moderation"  # Mercado Libre took it; moderation has not decided
    SENT = "sent"  # delivered and clean
    MODERATED = "moderated"  # delivered, kept from the buyer by moderation (with its reason)
    FAILED = "failed"  # will not be delivered (a dead letter an operator may requeue)
    RECEIVED = "received"  # an inbound message


class LinkStatus(enum.StrEnum):
    """The state of an account's Mercado Libre authorization."""

    ACTIVE = "active"
    NEEDS_RELINK = "needs_relink"  # the refresh token was refused (invalid_grant): link again


@dataclass(frozen=True)
class RetryPolicy:
    """How patiently transient failures are retried (operators may tune it; tests shorten it)."""

    base_seconds: float = BASE_DELAY_SECONDS
    max_seconds: float = MAX_DELAY_SECONDS
    max_attempts: int = MAX_ATTEMPTS
    wait_seconds: float = WAIT_SECONDS  # a temporary block is looked at again this often


DEFAULT_RETRY_POLICY = RetryPolicy()


class FailureKind(enum.Enum):
    """What a failed attempt means for the next one."""

    TRANSIENT = "transient"  # certainly not applied: try again later
    UNKNOWN = "unknown"  # may have been applied: read the conversation before trying again
    REROUTE = "reroute"  # the conversation is open: send through /messages instead of the action guide
    AUTH = "auth"  # the access token was refused: refresh it and try again
    RELINK = "relink"  # the seller's authorization is gone (invalid_grant): wait for a new link
    WAIT = "wait"  # a temporary block on Mercado Libre's side: wait, retry later, never give up
    PERMANENT = "permanent"  # Mercado Libre will never accept this message


@dataclass(frozen=True)
class DeliveryFailure:
    """A failed call to Mercado Libre, classified."""

    kind: FailureKind
    code: str
    message: str
    retry_after_seconds: float | None = None


# (status, words in Mercado Libre's message or error) → (kind, our code). First match wins.
_RULES: list[tuple[int, str, FailureKind, str]] = [
    # A refresh token refused: revoked by the seller, the app removed, or spent by a lost response.
    (400, "invalid_grant", FailureKind.RELINK, "marketplace_link_revoked"),
    # The pack is an excepted case: the action guide is closed to it, /messages is open (research §1.1).
    (400, "blocked_by_excepted_case", FailureKind.REROUTE, "excepted_case"),
    (403, "check blocked messages", FailureKind.REROUTE, "conversation_open"),
    # Conversation blocks by substatus (research §2.5): payment pending lifts by itself; the others
    # need the buyer, Mercado Libre or a claim's end, so the message fails with a code of its own.
    (403, "blocked_by_payment", FailureKind.WAIT, "conversation_blocked_by_payment"),
    (403, "blocked_by_buyer", FailureKind.PERMANENT, "conversation_blocked_by_buyer"),
    (403, "blocked_by_time", FailureKind.PERMANENT, "conversation_blocked_by_time"),
    (403, "blocked_by_claim", FailureKind.PERMANENT, "conversation_blocked_by_claim"),
    (403, "blocked_by_ai_assistant", FailureKind.PERMANENT, "conversation_blocked_by_agent"),
    (403, "blocked_by_deactivated_account", FailureKind.PERMANENT, "buyer_account_deactivated"),
    (403, "not allowed to execute the option", FailureKind.PERMANENT, "reason_cap_exhausted"),
    # Full: messaging opens once the shipment is delivered (research §2.5 blocked_by_fulfillment).
    (403, "mercado envíos full", FailureKind.WAIT, "fulfillment_not_delivered"),
    (403, "mercado envios full", FailureKind.WAIT, "fulfillment_not_delivered"),
    (403, "blocked_by_fulfillment", FailureKind.WAIT, "fulfillment_not_delivered"),
    (403, "mediation", FailureKind.PERMANENT, "conversation_in_mediation"),
    (403, "blocked", FailureKind.PERMANENT, "conversation_blocked"),
    (403, "", FailureKind.PERMANENT, "marketplace_forbidden"),
    (404, "option selected is not valid", FailureKind.PERMANENT, "reason_not_available"),
    (400, "limit_exceeded", FailureKind.PERMANENT, "message_too_long"),
    (400, "too long", FailureKind.PERMANENT, "message_too_long"),
    (400, "text is invalid", FailureKind.PERMANENT, "message_too_long"),
    (400, "not supported", FailureKind.PERMANENT, "unsupported_characters"),
    (400, "template", FailureKind.PERMANENT, "template_invalid"),
    (400, "before today", FailureKind.PERMANENT, "delivery_promise_expired"),
    (409, "", FailureKind.TRANSIENT, "marketplace_locked"),
    (422, "attachment", FailureKind.TRANSIENT, "attachment_expired"),
    (429, "", FailureKind.TRANSIENT, "marketplace_rate_limited"),
    (451, "", FailureKind.PERMANENT, "buyer_account_deactivated"),
    (401, "", FailureKind.AUTH, "marketplace_unauthorized"),
]


def classify_response(
    status: int, error_text: str, retry_after_seconds: float | None = None
) -> DeliveryFailure:
    """An error response from Mercado Libre; `error_text` is its message, error and cause, joined."""
    lowered = error_text.lower()
    for rule_status, words, kind, code in _RULES:
        if status == rule_status and words in lowered:
            return DeliveryFailure(kind, code, _describe(status, error_text), retry_after_seconds)
    if status >= 500:
        # A 5xx may come after the message was stored: the outcome is unknown.
        return DeliveryFailure(FailureKind.UNKNOWN, "marketplace_unavailable", _describe(status, error_text))
    return DeliveryFailure(FailureKind.PERMANENT, "marketplace_rejected", _describe(status, error_text))


def no_response(reached_server: bool, detail: str) -> DeliveryFailure:
    """A call that got no response: unknown outcome once the request may have left, else transient."""
    if reached_server:
        return DeliveryFailure(FailureKind.UNKNOWN, "marketplace_no_response", detail)
    return DeliveryFailure(FailureKind.TRANSIENT, "marketplace_unreachable", detail)


def retry_delay_seconds(
    attempts: int, failure: DeliveryFailure, jitter: float, policy: RetryPolicy = DEFAULT_RETRY_POLICY
) -> float | None:
    """Seconds until the next attempt, or None to give up.

    Capped exponential backoff with jitter (`jitter` in [0, 1) spreads each delay over its upper
    half); a Retry-After from Mercado Libre is a floor. Permanent failures are never retried.
    """
    if failure.kind is FailureKind.PERMANENT or attempts >= policy.max_attempts:
        return None
    backoff: float = min(policy.max_seconds, policy.base_seconds * 2.0 ** max(0, attempts - 1))
    delay = backoff * (0.5 + jitter / 2)
    if failure.retry_after_seconds is not None:
        delay = max(delay, failure.retry_after_seconds)
    return delay


def _describe(status: int, error_text: str) -> str:
    text = " ".join(error_text.split())
    return f"Mercado Libre answered {status}: {text[:300]}" if text else f"Mercado Libre answered {status}."
