"""Receiving postventa's webhooks: check that a request came from postventa and read its event.

postventa signs its webhooks as the Standard Webhooks specification says (standardwebhooks.com): the
`webhook-id`, `webhook-timestamp` and `webhook-signature` headers, and `v1,` + the base64 HMAC-SHA256
of `{webhook-id}.{webhook-timestamp}.{body}` under the endpoint's secret (`whsec_` + its base64 key).
During a secret's rotation a request carries two signatures, one per secret, so a receiver verifies
with either. `verify_webhook` checks all that, in constant time, and refuses a request older (or
newer) than five minutes, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from postventa_sdk.errors import WebhookVerificationError
from postventa_sdk.models import Message, Order, parse_time

TOLERANCE_SECONDS = 300  # how far a request's timestamp may be from the receiver's clock, either way
SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"

MESSAGE_SENT = "message.sent"
MESSAGE_MODERATED = "message.moderated"
MESSAGE_FAILED = "message.failed"
MESSAGE_RECEIVED = "message.received"
ORDER_UPDATED = "order.updated"
MESSAGE_EVENT_TYPES = frozenset({MESSAGE_SENT, MESSAGE_MODERATED, MESSAGE_FAILED, MESSAGE_RECEIVED})
EVENT_TYPES = MESSAGE_EVENT_TYPES | {ORDER_UPDATED}

Body = bytes | bytearray | memoryview | str


@dataclass(frozen=True)
class MessageEvent:
    """`message.sent`, `message.moderated`, `message.failed` (a message of the seller reached that
    status) or `message.received` (the buyer wrote): the message as `GET …/messages/{messageId}`
    renders it, and its account."""

    webhook_id: str  # the `webhook-id` header: the same for every retry of one event
    type: str
    timestamp: dt.datetime  # when the event happened (the message's status changed)
    account_id: int
    data: Message
    raw: Mapping[str, Any]  # the body's `data` as sent, with the fields this SDK does not read


@dataclass(frozen=True)
class OrderEvent:
    """`order.updated`: a synced order's status, shipment or delivery window changed; the order as
    `GET /v2/orders/{orderId}` renders it."""

    webhook_id: str
    type: str
    timestamp: dt.datetime
    account_id: int
    data: Order
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class UnknownEvent:
    """An event type this version of the SDK does not know (a newer server's): its data as JSON."""

    webhook_id: str
    type: str
    timestamp: dt.datetime
    data: Mapping[str, Any]


WebhookEvent = MessageEvent | OrderEvent | UnknownEvent


def verify_webhook(
    body: Body,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance_seconds: float = TOLERANCE_SECONDS,
    now: dt.datetime | None = None,
) -> WebhookEvent:
    """The event of a webhook request, once its signature and timestamp are checked.

    `body` is the request's body exactly as received (bytes; a str is taken as its UTF-8), `headers`
    its headers (any mapping, names in any case), `secret` the endpoint's `whsec_…` secret. Raises
    `WebhookVerificationError` (its `.code` says why) when a header is missing, no signature matches,
    the timestamp is more than `tolerance_seconds` away from `now` (the current time), or the body
    is not an event; answer such a request with a 4xx and do not act on it.
    """
    key = _secret_key(secret)
    payload = _body_bytes(body)
    webhook_id, timestamp, signatures = _signature_headers(headers)
    _check_timestamp(timestamp, now or dt.datetime.now(dt.UTC), tolerance_seconds)
    expected = _signature(key, webhook_id, timestamp, payload)
    if not _any_matches(expected, signatures):
        raise WebhookVerificationError("signature_mismatch", "No signature matches the secret.")
    return _event(webhook_id, payload)


def sign_webhook(body: Body, secret: str, *, webhook_id: str, timestamp: dt.datetime | int) -> dict[str, str]:
    """The three headers postventa sends with `body`: for a receiver's own tests (a request that
    `verify_webhook` accepts, made without a server)."""
    seconds = timestamp if isinstance(timestamp, int) else int(timestamp.timestamp())
    signature = _signature(_secret_key(secret), webhook_id, str(seconds), _body_bytes(body))
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": f"{SIGNATURE_VERSION},{base64.b64encode(signature).decode()}",
    }


def _secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret (the prefix is optional, as other libraries accept it)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret is not whsec_ followed by base64") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _body_bytes(body: Body) -> bytes:
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes | bytearray) or (isinstance(body, memoryview) and body.itemsize == 1):
        return bytes(body)
    raise TypeError("the webhook body must be the request's bytes (or a str)")


def _signature_headers(headers: Mapping[str, str]) -> tuple[str, str, list[str]]:
    """`webhook-id`, `webhook-timestamp` and the signatures of `webhook-signature`, whatever the case
    of the names."""
    lowered = {str(name).lower(): value for name, value in headers.items()}
    found = [lowered.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")]
    missing = [
        name
        for name, value in zip(("id", "timestamp", "signature"), found, strict=True)
        if not (value and value.strip())
    ]
    if missing:
        names = ", ".join(f"webhook-{name}" for name in missing)
        raise WebhookVerificationError("headers_missing", f"The request lacks {names}.")
    webhook_id, timestamp, signature = (str(value) for value in found)
    return webhook_id, timestamp, signature.split()


def _check_timestamp(timestamp: str, now: dt.datetime, tolerance_seconds: float) -> None:
    # Whole seconds since the epoch, as signed: the header's text is what the signature covers.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise WebhookVerificationError("timestamp_invalid", "webhook-timestamp is not whole seconds.")
    age = now.timestamp() - int(timestamp)
    if age > tolerance_seconds:
        raise WebhookVerificationError(
            "timestamp_too_old", f"The request was signed {age:.0f} s ago, over {tolerance_seconds:.0f} s."
        )
    if -age > tolerance_seconds:
        raise WebhookVerificationError(
            "timestamp_too_new", f"The request is dated {-age:.0f} s ahead of this clock."
        )


def _signature(key: bytes, webhook_id: str, timestamp: str, payload: bytes) -> bytes:
    return hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + payload, hashlib.sha256).digest()


def _any_matches(expected: bytes, signatures: list[str]) -> bool:
    """Whether one of the `v1,…` signatures is `expected`, each compared in constant time (other
    versions are skipped: a receiver meets them only from a newer signer)."""
    wanted = base64.b64encode(expected)
    matched = False
    for versioned in signatures:
        version, _, encoded = versioned.partition(",")
        if version == SIGNATURE_VERSION:
            matched |= hmac.compare_digest(wanted, encoded.encode())
    return matched


def _event(webhook_id: str, payload: bytes) -> WebhookEvent:
    """The body's event: `{"type", "timestamp", "data"}`, its data read as the type says."""
    try:
        document = json.loads(payload)
        event_type, data = document["type"], document["data"]
        timestamp = parse_time(document["timestamp"])
        if not isinstance(event_type, str) or not isinstance(data, Mapping) or timestamp is None:
            raise TypeError("type, timestamp or data of the wrong type")
        if event_type in MESSAGE_EVENT_TYPES:
            return MessageEvent(
                webhook_id, event_type, timestamp, int(data["AccountId"]), Message.from_json(data), data
            )
        if event_type == ORDER_UPDATED:
            account_id = data.get("AccountId") or data["SellerAccount"]["Id"]
            return OrderEvent(webhook_id, event_type, timestamp, int(account_id), Order.from_json(data), data)
        return UnknownEvent(webhook_id, event_type, timestamp, data)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise WebhookVerificationError(
            "body_invalid", f"The body is not a postventa event: {type(error).__name__} {error}"
        ) from error
