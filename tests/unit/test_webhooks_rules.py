"""domain/webhooks.py: events and their mask, the retry schedule, signing as Standard Webhooks
specifies it (checked against the `standardwebhooks` package), and which destinations are allowed."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from postventa.domain import webhooks as rules
from postventa.domain.errors import Refusal

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


def test_events_omitted_mean_all_and_each_has_its_own_bit():
    assert rules.events_mask(None) == rules.ALL_EVENTS_MASK
    assert rules.events_of_mask(rules.ALL_EVENTS_MASK) == (
        "message.sent",
        "message.moderated",
        "message.failed",
        "message.received",
        "order.updated",
    )
    mask = rules.events_mask(["order.updated", "message.failed"])
    assert rules.events_of_mask(mask) == ("message.failed", "order.updated")
    assert len(set(rules.EVENT_BITS.values())) == len(rules.EventType)


@pytest.mark.parametrize("events", [[], ["message.sent", "message.deleted"], ["MESSAGE.SENT"]])
def test_unknown_or_no_events_are_refused(events):
    with pytest.raises(ValueError, match="event"):
        rules.events_mask(events)


@pytest.mark.parametrize(
    ("status", "event"),
    [
        ("sent", "message.sent"),
        ("moderated", "message.moderated"),
        ("failed", "message.failed"),
        ("received", "message.received"),
        ("queued", None),
        ("sending", None),
        ("pending_moderation", None),
    ],
)
def test_the_event_of_a_status(status, event):
    assert rules.event_of_status(status) == event


def test_retry_schedule_parses_seconds_and_refuses_anything_else():
    assert rules.parse_retry_schedule("5, 300,1800") == (5.0, 300.0, 1800.0)
    assert rules.parse_retry_schedule("0.1,0.25") == (0.1, 0.25)
    assert rules.parse_retry_schedule("") == ()
    for bad in ("5,x", "-1", "nan", "inf", "5;6"):
        with pytest.raises(ValueError, match="'"):
            rules.parse_retry_schedule(bad)


def test_the_default_schedule_is_the_specifications():
    assert rules.DEFAULT_RETRY_SCHEDULE_SECONDS == (5, 300, 1800, 7200, 18000, 36000, 36000)


def test_each_failed_attempt_waits_the_next_step_then_the_delivery_fails_for_good():
    schedule = (5.0, 300.0)
    assert rules.next_attempt_at(1, schedule, NOW) == NOW + dt.timedelta(seconds=5)
    assert rules.next_attempt_at(2, schedule, NOW) == NOW + dt.timedelta(seconds=300)
    assert rules.next_attempt_at(3, schedule, NOW) is None
    assert rules.next_attempt_at(1, (), NOW) is None


def test_success_is_a_2xx():
    assert [rules.is_success(code) for code in (200, 204, 299, 300, 301, 404, 500, None)] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]


def test_an_endpoint_is_disabled_after_five_days_failing():
    assert not rules.should_disable(None, NOW)
    assert not rules.should_disable(NOW - dt.timedelta(days=4, hours=23), NOW)
    assert rules.should_disable(NOW - dt.timedelta(days=5), NOW)


SECRET = rules.secret_of_key(b"k" * 32)


def test_a_signature_verifies_with_the_standardwebhooks_package():
    body = b'{"type":"message.sent","timestamp":"2026-12-05T12:00:00.000000Z","data":{}}'
    timestamp = int(time.time())  # the package checks it against its own clock
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": rules.signature_header([SECRET], "msg_1", timestamp, body),
    }
    verifier = Webhook(SECRET)
    assert verifier.verify(body, headers) == {
        "type": "message.sent",
        "timestamp": "2026-12-05T12:00:00.000000Z",
        "data": {},
    }
    with pytest.raises(WebhookVerificationError):
        verifier.verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(rules.secret_of_key(b"x" * 32)).verify(body, headers)


def test_during_a_rotation_both_secrets_sign():
    new = rules.secret_of_key(b"n" * 32)
    until = NOW + rules.SECRET_ROTATION_OVERLAP
    assert rules.signing_secrets(new, SECRET, until, NOW) == [new, SECRET]
    assert rules.signing_secrets(new, SECRET, until, until) == [new]
    assert rules.signing_secrets(new, None, None, NOW) == [new]
    header = rules.signature_header([new, SECRET], "msg_2", 1, b"{}")
    first, second = header.split(" ")
    assert (
        first
        == rules.signature(new, "msg_2", 1, b"{}")
        != second
        == rules.signature(SECRET, "msg_2", 1, b"{}")
    )


def test_a_secret_is_whsec_and_base64():
    assert rules.key_of_secret(SECRET) == b"k" * 32
    for bad in ("k" * 10, "whsec_not base64!"):
        with pytest.raises(ValueError, match="whsec_"):
            rules.key_of_secret(bad)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://example.com/hook", "webhook_url_scheme"),
        ("ftp://example.com/hook", "webhook_url_scheme"),
        ("https:///hook", "webhook_url_invalid"),
        ("https://user:pw@example.com/hook", "webhook_url_credentials"),
        ("https://example.com:99999/hook", "webhook_url_invalid"),
        ("https://exa mple.com/", "webhook_url_invalid"),
        ("https://example.com/" + "a" * 2048, "webhook_url_invalid"),
    ],
)
def test_url_rules(url, code):
    refusal = rules.parse_destination(url, allow_private=False)
    assert isinstance(refusal, Refusal)
    assert refusal.code == code


def test_a_url_names_its_destination():
    assert rules.parse_destination("https://example.com/x", allow_private=False) == rules.Destination(
        "https", "example.com", 443
    )
    assert rules.parse_destination("http://[::1]:8080/x", allow_private=True) == rules.Destination(
        "http", "::1", 8080
    )


PRIVATE = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "192.0.2.1",
    "240.0.0.1",
    "::1",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",
    "2002:7f00:1::",
]


@pytest.mark.parametrize("address", PRIVATE)
def test_private_addresses_are_refused_unless_allowed(address):
    refusal = rules.address_refusal(address, allow_private=False)
    assert refusal is not None
    assert refusal.code == "webhook_url_private"
    assert rules.address_refusal(address, allow_private=True) is None


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "224.0.0.1", "ff0e::1", "::ffff:0.0.0.0"])
def test_unspecified_and_multicast_are_never_destinations(address):
    for allow_private in (False, True):
        refusal = rules.address_refusal(address, allow_private=allow_private)
        assert refusal is not None
        assert refusal.code == "webhook_url_address"


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert rules.address_refusal(address, allow_private=False) is None


def test_one_private_address_among_the_resolved_refuses_the_url():
    url = "https://hooks.example.com/x"
    assert rules.destination_refusal(url, ["8.8.8.8"], allow_private=False) is None
    refusal = rules.destination_refusal(url, ["8.8.8.8", "10.0.0.1"], allow_private=False)
    assert refusal is not None
    assert refusal.code == "webhook_url_private"
    unresolved = rules.destination_refusal(url, [], allow_private=False)
    assert unresolved is not None
    assert unresolved.code == "webhook_url_unresolved"
