"""`postventa_sdk.verify_webhook` against an independent implementation of Standard Webhooks (the
`standardwebhooks` package): what it signs, the SDK accepts; what the SDK signs, it accepts; and the
refusals, each with its code. Pure: no server."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx2
import pytest
import standardwebhooks
from hypothesis import given, settings
from hypothesis import strategies as st
from postventa_sdk import (
    Message,
    MessageEvent,
    Order,
    OrderEvent,
    PostventaError,
    UnknownEvent,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode()
NOW = dt.datetime(2026, 12, 4, 12, 0, 0, tzinfo=dt.UTC)
WEBHOOK_ID = "msg_2Kx0dYtq9Gd4m1p6"

MESSAGE = {
    "Id": 7,
    "OrderId": 3,
    "Direction": "outbound",
    "Reason": {"Key": 4, "Value": "OTHER"},
    "Text": "Hola",
    "Attachment": None,
    "Status": "sent",
    "DateCreated": "2026-12-04T11:59:50Z",
    "DateStatus": "2026-12-04T11:59:58Z",
    "DateSent": "2026-12-04T11:59:58Z",
    "DateFailed": None,
    "Attempts": 1,
    "MarketplaceMessageId": "a1b2",
    "ModerationReason": None,
    "ErrorCode": None,
    "ErrorMessage": None,
    "Source": "postventa",
    "Author": "seller",
    "ReadAt": None,
    "AccountId": 12,
}
ORDER = {
    "Id": 3,
    "ExternalOrderId": "2000001",
    "PackId": None,
    "SellerAccount": {"Id": 12, "OwnCode": None, "Name": "Tienda", "BusinessName": None},
    "MarketPlace": {"Key": 1, "Value": "MercadoLibre", "Channel": None},
    "SiteId": "MLA",
    "Status": {"Key": 50, "Value": "Shipped"},
    "StatusType": {"Key": 1, "Value": "Pending"},
    "Shipping": {"ExternalShippingId": 44, "LogisticType": None, "EstimatedDelivery": None},
    "Buyer": {"Code": 99, "Nickname": "COMPRADOR"},
    "DateCreated": "2026-12-01T10:00:00Z",
}


def event_body(event_type: str, data: Mapping[str, Any], timestamp: str = "2026-12-04T11:59:58Z") -> bytes:
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}).encode()


def standard_headers(body: bytes, secret: str = SECRET, *, at: dt.datetime = NOW) -> dict[str, str]:
    """The headers of a request signed by the standardwebhooks package."""
    signature = standardwebhooks.Webhook(secret).sign(WEBHOOK_ID, at, body)
    return {
        "webhook-id": WEBHOOK_ID,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def outcome(body: bytes, headers: Mapping[str, str], secret: str) -> str:
    """ "verified", or the refusal's code."""
    try:
        verify_webhook(body, headers, secret, now=NOW)
    except WebhookVerificationError as error:
        return error.code
    return "verified"


def refused(code: str, body: bytes | str, headers: Mapping[str, str], secret: str = SECRET) -> None:
    with pytest.raises(WebhookVerificationError) as caught:
        verify_webhook(body, headers, secret, now=NOW)
    assert caught.value.code == code, caught.value
    assert isinstance(caught.value, PostventaError)
    assert caught.value.message.strip()


@pytest.mark.parametrize(
    "event_type", ["message.sent", "message.moderated", "message.failed", "message.received"]
)
def test_a_message_event_signed_by_standardwebhooks_is_read_as_a_message(event_type):
    body = event_body(event_type, MESSAGE)

    event = verify_webhook(body, standard_headers(body), SECRET, now=NOW)

    assert isinstance(event, MessageEvent)
    assert (event.webhook_id, event.type, event.account_id) == (WEBHOOK_ID, event_type, 12)
    assert event.timestamp == dt.datetime(2026, 12, 4, 11, 59, 58, tzinfo=dt.UTC)
    assert event.data == Message.from_json(MESSAGE)
    assert (event.data.id, event.data.status, event.data.reason.name) == (7, "sent", "OTHER")
    assert event.raw == MESSAGE


def test_an_order_event_is_read_as_an_order_of_the_account():
    body = event_body("order.updated", ORDER)

    event = verify_webhook(body, standard_headers(body), SECRET, now=NOW)

    assert isinstance(event, OrderEvent)
    assert event.data == Order.from_json(ORDER)
    assert (event.account_id, event.data.status.value, event.data.shipping_id) == (12, "Shipped", 44)


def test_an_event_type_of_a_newer_server_is_kept_as_json():
    body = event_body("order.refunded", {"Id": 3, "Amount": "10.00"})

    event = verify_webhook(body, standard_headers(body), SECRET, now=NOW)

    assert event == UnknownEvent(
        WEBHOOK_ID,
        "order.refunded",
        dt.datetime(2026, 12, 4, 11, 59, 58, tzinfo=dt.UTC),
        {"Id": 3, "Amount": "10.00"},
    )


def test_what_the_sdk_signs_standardwebhooks_verifies():
    body = event_body("message.received", MESSAGE)
    headers = sign_webhook(body, SECRET, webhook_id=WEBHOOK_ID, timestamp=dt.datetime.now(dt.UTC))

    assert standardwebhooks.Webhook(SECRET).verify(body, headers) == json.loads(body)
    assert isinstance(verify_webhook(body, headers, SECRET), MessageEvent)


@settings(max_examples=200, deadline=None)
@given(
    key=st.binary(min_size=1, max_size=64),
    webhook_id=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40),
    body=st.binary(max_size=300),
    seconds=st.integers(min_value=-299, max_value=299),
)
def test_the_sdk_and_standardwebhooks_agree_on_any_secret_id_and_body(key, webhook_id, body, seconds):
    secret = "whsec_" + base64.b64encode(key).decode()
    at = NOW + dt.timedelta(seconds=seconds)
    theirs = standardwebhooks.Webhook(secret).sign(webhook_id, at, body)
    ours = sign_webhook(body, secret, webhook_id=webhook_id, timestamp=at)
    assert ours["webhook-signature"] == theirs
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": theirs,
    }
    # The signature holds whatever the body; only an event body is read.
    assert outcome(body, headers, secret) in {"verified", "body_invalid"}


def test_during_a_rotation_either_secret_verifies_the_two_signatures():
    body = event_body("message.sent", MESSAGE)
    old, new = standard_headers(body, SECRET), standard_headers(body, OTHER_SECRET)
    both = {**old, "webhook-signature": f"{new['webhook-signature']} {old['webhook-signature']}"}

    assert verify_webhook(body, both, SECRET, now=NOW).webhook_id == WEBHOOK_ID
    assert verify_webhook(body, both, OTHER_SECRET, now=NOW).webhook_id == WEBHOOK_ID
    third = "whsec_" + base64.b64encode(b"a third key").decode()
    refused("signature_mismatch", body, both, third)


class PlainHeaders(Mapping[str, str]):
    """A mapping that is not a dict, as a web framework's headers are."""

    def __init__(self, items: dict[str, str]) -> None:
        self._items = items

    def __getitem__(self, name: str) -> str:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def test_header_names_in_any_case_and_any_mapping_and_the_body_as_bytes_or_text():
    body = event_body("message.sent", MESSAGE)
    headers = standard_headers(body)
    shouted = {name.upper(): value for name, value in headers.items()}
    titled = {name.title(): value for name, value in headers.items()}

    for given_headers in (shouted, titled, httpx2.Headers(headers), PlainHeaders(titled)):
        assert verify_webhook(body, given_headers, SECRET, now=NOW).webhook_id == WEBHOOK_ID
    for given_body in (body.decode(), bytearray(body), memoryview(body)):
        assert verify_webhook(given_body, headers, SECRET, now=NOW).type == "message.sent"
    # The secret's prefix is optional, as in other libraries.
    assert verify_webhook(body, headers, SECRET.removeprefix("whsec_"), now=NOW).type == "message.sent"


def test_a_request_from_within_five_minutes_either_way_is_accepted_and_beyond_refused():
    body = event_body("message.sent", MESSAGE)
    for seconds in (-300, 300):
        at = NOW + dt.timedelta(seconds=seconds)
        assert verify_webhook(body, standard_headers(body, at=at), SECRET, now=NOW).type == "message.sent"
    refused("timestamp_too_old", body, standard_headers(body, at=NOW - dt.timedelta(seconds=301)))
    refused("timestamp_too_new", body, standard_headers(body, at=NOW + dt.timedelta(seconds=301)))
    # A tolerance of the receiver's own.
    at = NOW - dt.timedelta(seconds=30)
    with pytest.raises(WebhookVerificationError, match="timestamp_too_old"):
        verify_webhook(body, standard_headers(body, at=at), SECRET, now=NOW, tolerance_seconds=10)


def test_the_current_clock_is_the_default():
    body = event_body("message.sent", MESSAGE)
    assert (
        verify_webhook(body, standard_headers(body, at=dt.datetime.now(dt.UTC)), SECRET).type
        == "message.sent"
    )
    refused_now = standard_headers(body, at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6))
    with pytest.raises(WebhookVerificationError, match="timestamp_too_old"):
        verify_webhook(body, refused_now, SECRET)


def _tampered(headers: dict[str, str], **changes: str) -> dict[str, str]:
    return {**headers, **{name.replace("_", "-"): value for name, value in changes.items()}}


def test_a_changed_body_id_timestamp_or_secret_is_refused():
    body = event_body("message.sent", MESSAGE)
    headers = standard_headers(body)
    refused("signature_mismatch", body.replace(b'"sent"', b'"failed"', 1), headers)
    refused("signature_mismatch", body + b" ", headers)
    refused("signature_mismatch", body, _tampered(headers, webhook_id="msg_other"))
    refused("signature_mismatch", body, _tampered(headers, webhook_timestamp=str(int(NOW.timestamp()) - 1)))
    refused("signature_mismatch", body, headers, OTHER_SECRET)


@pytest.mark.parametrize(
    "signature",
    [
        "v1,",
        "v1,bm90IGEgc2lnbmF0dXJl",
        "v1a,{valid}",  # another scheme's version with our bytes: not a v1 signature
        "{valid_without_version}",
        "v2,{valid_without_version}",
        "   ",
    ],
)
def test_signatures_that_are_not_a_matching_v1_are_refused(signature):
    body = event_body("message.sent", MESSAGE)
    headers = standard_headers(body)
    valid = headers["webhook-signature"]
    text = signature.format(valid=valid.removeprefix("v1,"), valid_without_version=valid.removeprefix("v1,"))
    code = "headers_missing" if not text.strip() else "signature_mismatch"
    refused(code, body, _tampered(headers, webhook_signature=text))


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_or_empty_header_is_named(missing):
    body = event_body("message.sent", MESSAGE)
    headers = standard_headers(body)
    without = {name: value for name, value in headers.items() if name != missing}
    with pytest.raises(WebhookVerificationError, match=missing) as caught:
        verify_webhook(body, without, SECRET, now=NOW)
    assert caught.value.code == "headers_missing"
    refused("headers_missing", body, {**headers, missing: ""})


@pytest.mark.parametrize("timestamp", ["1764849600.5", "-1764849600", "soon", "1e9", "17648496000000000"])
def test_a_timestamp_that_is_not_whole_seconds_is_refused(timestamp):
    body = event_body("message.sent", MESSAGE)
    refused("timestamp_invalid", body, _tampered(standard_headers(body), webhook_timestamp=timestamp))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"message.sent"',
        json.dumps({"type": "message.sent", "timestamp": "2026-12-04T11:59:58Z"}).encode(),
        json.dumps({"type": "message.sent", "data": MESSAGE}).encode(),
        json.dumps({"type": 5, "timestamp": "2026-12-04T11:59:58Z", "data": MESSAGE}).encode(),
        json.dumps({"type": "message.sent", "timestamp": "yesterday", "data": MESSAGE}).encode(),
        json.dumps({"type": "message.sent", "timestamp": "2026-12-04T11:59:58Z", "data": [MESSAGE]}).encode(),
        event_body("message.sent", {key: value for key, value in MESSAGE.items() if key != "AccountId"}),
        event_body("message.sent", {key: value for key, value in MESSAGE.items() if key != "Status"}),
        event_body("order.updated", {"Id": 3}),
    ],
    ids=[
        "not_json",
        "not_utf8",
        "array",
        "string",
        "no_data",
        "no_timestamp",
        "type_not_text",
        "timestamp_not_a_time",
        "data_not_an_object",
        "message_without_account",
        "message_without_status",
        "order_without_fields",
    ],
)
def test_a_signed_body_that_is_not_an_event_is_refused(body):
    refused("body_invalid", body, standard_headers(body))


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not base64!", ""])
def test_a_secret_that_is_not_a_webhook_secret_is_a_programming_error(secret):
    body = event_body("message.sent", MESSAGE)
    with pytest.raises(ValueError, match="webhook secret"):
        verify_webhook(body, standard_headers(body), secret, now=NOW)


def test_a_body_that_is_not_bytes_or_text_is_a_programming_error():
    body = event_body("message.sent", MESSAGE)
    with pytest.raises(TypeError, match="bytes"):
        verify_webhook(json.loads(body), standard_headers(body), SECRET, now=NOW)  # type: ignore[arg-type]
