"""The retry decision alone (no I/O): what is retried, after how long, and which calls are safe to repeat."""

from __future__ import annotations

import pytest
from postventa_sdk import (
    ApiError,
    BadRequest,
    Conflict,
    NotFound,
    PreconditionFailed,
    RateLimited,
    Reason,
    RetryPolicy,
    ServerError,
    Unauthorized,
    UnprocessableEntity,
    _calls,
)

EXACT = RetryPolicy(max_retries=3, backoff_base_seconds=0.5, backoff_max_seconds=3.0, jitter=False)


def test_backoff_doubles_up_to_its_ceiling():
    assert [EXACT.backoff(number) for number in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_keeps_each_backoff_between_half_and_all_of_it():
    jittered = RetryPolicy(backoff_base_seconds=1.0, backoff_max_seconds=8.0)
    waits = [jittered.backoff(3) for _ in range(200)]
    assert all(2.0 <= wait <= 4.0 for wait in waits)
    assert len(set(waits)) > 1


def test_a_rate_limit_waits_what_the_server_asked_even_for_an_unsafe_call():
    limited = RateLimited(429, "rate_limited", "slow down", retry_after=7.0)
    assert EXACT.after_error(0, limited, retry_safe=False) == 7.0
    assert EXACT.after_error(0, RateLimited(429, "rate_limited", "no header"), retry_safe=False) == 0.5


def test_a_rate_limit_longer_than_the_longest_wait_is_raised_at_once():
    limited = RateLimited(429, "rate_limited", "slow down", retry_after=61.0)
    assert EXACT.after_error(0, limited, retry_safe=True) is None
    assert RetryPolicy(max_wait_seconds=120).after_error(0, limited, retry_safe=True) == 61.0


def test_server_errors_and_lost_connections_are_retried_only_when_safe():
    unavailable = ServerError(503, "http_503", "down", headers={"retry-after": "2"})
    assert EXACT.after_error(0, unavailable, retry_safe=True) == 2.0
    assert EXACT.after_error(1, ServerError(500, "http_500", "boom"), retry_safe=True) == 1.0
    assert EXACT.after_error(0, unavailable, retry_safe=False) is None
    assert EXACT.after_no_response(0, retry_safe=True) == 0.5
    assert EXACT.after_no_response(0, retry_safe=False) is None


def test_a_key_still_in_use_is_waited_for_but_other_conflicts_are_answers():
    in_use = Conflict(409, "idempotency_key_in_use", "running")
    assert EXACT.after_error(0, in_use, retry_safe=True) == 0.5
    assert EXACT.after_error(0, Conflict(409, "awaiting_buyer_reply", "wait"), retry_safe=True) is None


@pytest.mark.parametrize(
    "error",
    [
        BadRequest(400, "message_too_long", "x"),
        Unauthorized(401, "api_key_invalid", "x"),
        NotFound(404, "order_not_found", "x"),
        PreconditionFailed(412, "reason_not_available_in_country", "x"),
        UnprocessableEntity(422, "idempotency_key_reused", "x"),
        ApiError(405, "http_405", "x"),
    ],
    ids=lambda error: str(error.status),
)
def test_other_errors_are_never_retried(error):
    assert EXACT.after_error(0, error, retry_safe=True) is None


def test_nothing_is_retried_once_the_retries_are_spent():
    assert EXACT.after_error(3, RateLimited(429, "rate_limited", "x", retry_after=1), retry_safe=True) is None
    assert EXACT.after_error(3, ServerError(503, "http_503", "x"), retry_safe=True) is None
    assert EXACT.after_no_response(3, retry_safe=True) is None
    assert RetryPolicy(max_retries=0).after_no_response(0, retry_safe=True) is None


def test_a_policy_refuses_negative_numbers():
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="waits"):
        RetryPolicy(backoff_base_seconds=-0.1)


def keyed_send(reason: Reason | int = Reason.OTHER, idempotency_key: str | None = None) -> _calls.Call:
    """The call a text send makes (nothing is sent)."""
    return _calls.send_message(
        1,
        10,
        reason=reason,
        text="Hola",
        attachment=None,
        attachment_name=None,
        as_base64=False,
        idempotency_key=idempotency_key,
    )


def test_reads_and_keyed_sends_are_safe_to_repeat_and_each_send_has_its_own_key():
    first, second = keyed_send(), keyed_send()
    chosen = keyed_send(4, "pedido-10-aviso")
    unkeyed_post = _calls.Call("POST", "/v2/orders/10/messages", {}, lambda response: None)

    assert [call.retry_safe for call in (first, second, chosen)] == [True, True, True]
    assert first.idempotency_key != second.idempotency_key
    assert chosen.idempotency_key == "pedido-10-aviso"
    assert _calls.conversation(1, 10).retry_safe
    assert not unkeyed_post.retry_safe
