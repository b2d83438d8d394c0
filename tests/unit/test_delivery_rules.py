"""Delivery decisions: Mercado Libre errors classified, backoff with jitter and Retry-After, routing."""

from __future__ import annotations

import datetime as dt

import pytest

from postventa.domain.attempts import Route, after_failure
from postventa.domain.delivery import (
    MAX_ATTEMPTS,
    MAX_DELAY_SECONDS,
    DeliveryFailure,
    FailureKind,
    classify_response,
    no_response,
    retry_delay_seconds,
)

MESSAGES = Route.MESSAGES

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("status", "text", "kind", "code"),
    [
        (429, "too many requests too_many_requests", FailureKind.TRANSIENT, "marketplace_rate_limited"),
        (500, "Internal server error", FailureKind.UNKNOWN, "marketplace_unavailable"),
        (503, "", FailureKind.UNKNOWN, "marketplace_unavailable"),
        (401, "invalid_token", FailureKind.AUTH, "marketplace_unauthorized"),
        (
            403,
            "This package has the conversation blocked, please check blocked messages forbidden",
            FailureKind.REROUTE,
            "conversation_open",
        ),
        (
            403,
            "You are not allowed to execute the option OTHER again",
            FailureKind.PERMANENT,
            "reason_cap_exhausted",
        ),
        (403, "The conversation is blocked forbidden", FailureKind.PERMANENT, "conversation_blocked"),
        (403, "blocked_conversation_send_message_forbidden", FailureKind.PERMANENT, "conversation_blocked"),
        (
            403,
            "You can not send the message because the purchase is Mercado Envíos Full and has not been "
            "yet delivered",
            FailureKind.WAIT,
            "fulfillment_not_delivered",
        ),
        (404, "The option selected is not valid", FailureKind.PERMANENT, "reason_not_available"),
        (400, "The text is invalid limit_exceeded", FailureKind.PERMANENT, "message_too_long"),
        (400, "The template TEMPLATE___X___1 is invalid", FailureKind.PERMANENT, "template_invalid"),
        (
            400,
            "The promise of delivery of the shipping contained in the pack is from a date before today",
            FailureKind.PERMANENT,
            "delivery_promise_expired",
        ),
        (409, "There is another request locking this operation", FailureKind.TRANSIENT, "marketplace_locked"),
        (451, "Unavailable", FailureKind.PERMANENT, "buyer_account_deactivated"),
        (418, "teapot", FailureKind.PERMANENT, "marketplace_rejected"),
    ],
)
def test_mercadolibre_errors_map_to_stable_codes(status, text, kind, code):
    failure = classify_response(status, text)

    assert (failure.kind, failure.code) == (kind, code)
    assert str(status) in failure.message


def test_no_response_is_unknown_once_the_request_may_have_left():
    assert no_response(True, "read timeout").kind is FailureKind.UNKNOWN
    assert no_response(False, "connection refused").kind is FailureKind.TRANSIENT


def test_backoff_doubles_up_to_the_cap_and_jitter_stays_in_the_upper_half():
    failure = DeliveryFailure(FailureKind.TRANSIENT, "x", "x")
    delays = [retry_delay_seconds(attempt, failure, 0.999) for attempt in range(1, MAX_ATTEMPTS)]
    assert delays[:4] == pytest.approx([1.0, 2.0, 4.0, 8.0], rel=0.01)
    assert max(d for d in delays if d is not None) <= MAX_DELAY_SECONDS
    assert retry_delay_seconds(3, failure, 0.0) == pytest.approx(2.0)  # half of 4 s at the lowest jitter


def test_retry_after_is_a_floor():
    failure = DeliveryFailure(FailureKind.TRANSIENT, "marketplace_rate_limited", "x", retry_after_seconds=7)
    assert retry_delay_seconds(1, failure, 0.0) == 7


def test_permanent_failures_and_exhausted_attempts_give_up():
    assert retry_delay_seconds(1, DeliveryFailure(FailureKind.PERMANENT, "x", "x"), 0.5) is None
    assert retry_delay_seconds(MAX_ATTEMPTS, DeliveryFailure(FailureKind.TRANSIENT, "x", "x"), 0.5) is None


def test_unknown_outcome_retries_with_reconciliation():
    outcome = after_failure(no_response(True, "reset"), 1, "action_guide", NOW, jitter=lambda: 0.0)

    assert outcome.status == "queued"
    assert outcome.needs_reconcile
    assert outcome.next_attempt_at == NOW + dt.timedelta(seconds=0.5)


def test_rate_limited_retry_waits_for_retry_after_without_reconciling():
    failure = classify_response(429, "too_many_requests", retry_after_seconds=3)
    outcome = after_failure(failure, 1, "action_guide", NOW, jitter=lambda: 0.0)

    assert outcome.next_attempt_at == NOW + dt.timedelta(seconds=3)
    assert not outcome.needs_reconcile


def test_open_conversation_reroutes_to_messages_at_once():
    failure = classify_response(
        403, "This package has the conversation blocked, please check blocked messages"
    )
    outcome = after_failure(failure, 1, "action_guide", NOW)

    assert (outcome.status, outcome.next_route, outcome.next_attempt_at) == ("queued", MESSAGES, NOW)


def test_permanent_failure_fails_with_the_marketplace_code_and_message():
    failure = classify_response(403, "The conversation is blocked")
    outcome = after_failure(failure, 1, "action_guide", NOW)

    assert (outcome.status, outcome.error_code) == ("failed", "conversation_blocked")
    assert "The conversation is blocked" in (outcome.error_message or "")


def test_giving_up_on_a_transient_failure_says_so():
    outcome = after_failure(
        DeliveryFailure(FailureKind.TRANSIENT, "marketplace_unreachable", "refused"),
        MAX_ATTEMPTS,
        "messages",
        NOW,
    )

    assert (outcome.status, outcome.error_code) == ("failed", "delivery_retries_exhausted")


def test_a_shorter_policy_shortens_the_backoff_and_the_attempts():
    from postventa.domain.delivery import RetryPolicy

    policy = RetryPolicy(base_seconds=0.2, max_seconds=1.0, max_attempts=3)
    failure = DeliveryFailure(FailureKind.TRANSIENT, "x", "x")

    assert retry_delay_seconds(1, failure, 0.999, policy) == pytest.approx(0.2, rel=0.01)
    assert retry_delay_seconds(2, failure, 0.999, policy) == pytest.approx(0.4, rel=0.01)
    assert retry_delay_seconds(3, failure, 0.5, policy) is None


def test_settings_describe_the_retry_policy():
    from postventa.config import Settings

    settings = Settings(retry_base_seconds=0.5, retry_max_seconds=30, retry_max_attempts=4)

    assert (settings.retry_policy.base_seconds, settings.retry_policy.max_seconds) == (0.5, 30)
    assert settings.retry_policy.max_attempts == 4
