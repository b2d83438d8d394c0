"""Outbound webhooks to integrators (issue 20): the events, when to retry, how a body is signed, and
which destinations are allowed. Pure functions; the store, the services and the dispatcher
(delivery/webhook_dispatch.py) act on what they decide.

Signatures follow the Standard Webhooks specification, so integrators verify them with its
libraries: `webhook-signature` is `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
the key being the base64 after `whsec_` in the secret; several signatures are separated by spaces.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from postventa.domain.errors import Refusal, RefusalKind


class EventType(enum.StrEnum):
    """What an endpoint may subscribe to; the names are the `type` of the bodies."""

    MESSAGE_SENT = "message.sent"
    MESSAGE_MODERATED = "message.moderated"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_RECEIVED = "message.received"
    ORDER_UPDATED = "order.updated"


# Each event's bit in an endpoint's `events_mask` (stored: never renumber, only add).
EVENT_BITS: dict[EventType, int] = {
    EventType.MESSAGE_SENT: 1,
    EventType.MESSAGE_MODERATED: 2,
    EventType.MESSAGE_FAILED: 4,
    EventType.MESSAGE_RECEIVED: 8,
    EventType.ORDER_UPDATED: 16,
}
ALL_EVENTS_MASK = sum(EVENT_BITS.values())

# The event a message reaching a status makes (outbound sent, moderated, failed; a buyer's received).
_EVENT_OF_STATUS = {
    "sent": EventType.MESSAGE_SENT,
    "moderated": EventType.MESSAGE_MODERATED,
    "failed": EventType.MESSAGE_FAILED,
    "received": EventType.MESSAGE_RECEIVED,
}


def event_of_status(status: str) -> EventType | None:
    """The event a message's new status makes, or None (queued, sending, pending_moderation)."""
    return _EVENT_OF_STATUS.get(status)


def events_mask(events: Sequence[str] | None) -> int:
    """The mask of the named events; None (omitted) means all of them. Raises ValueError naming an
    unknown event, or when the list is empty (an endpoint that receives nothing)."""
    if events is None:
        return ALL_EVENTS_MASK
    mask = 0
    for name in events:
        try:
            mask |= EVENT_BITS[EventType(name)]
        except ValueError:
            known = ", ".join(event.value for event in EventType)
            raise ValueError(f"unknown event '{name}' (known: {known})") from None
    if mask == 0:
        raise ValueError("at least one event is needed (omit Events for all of them)")
    return mask


def events_of_mask(mask: int) -> tuple[str, ...]:
    """The names of the events in a mask, in the catalogue's order."""
    return tuple(event.value for event, bit in EVENT_BITS.items() if mask & bit)


# --- Retries -------------------------------------------------------------------------------------

# Standard Webhooks' schedule: after the immediate attempt, these waits; then the delivery fails.
DEFAULT_RETRY_SCHEDULE_SECONDS: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
# An endpoint with no success for this long, while it kept failing, is disabled.
DISABLE_AFTER_FAILING = dt.timedelta(days=5)
# A 2xx within this time is a success; anything else is retried.
ATTEMPT_TIMEOUT_SECONDS = 10.0
# The most of a response's body read (kept, shortened, as the attempt's error).
RESPONSE_BODY_LIMIT_BYTES = 64 * 1024


def parse_retry_schedule(text: str) -> tuple[float, ...]:
    """`POSTVENTA_WEBHOOK_RETRY_SCHEDULE`: seconds separated by commas ("5,300,1800"); an empty
    text means no retry. Raises ValueError on anything but non-negative finite numbers."""
    waits: list[float] = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            seconds = float(part)
        except ValueError:
            raise ValueError(f"'{part.strip()}' is not a number of seconds") from None
        if not 0 <= seconds < 10**8:  # also refuses nan and inf
            raise ValueError(f"'{part.strip()}' is not a wait in seconds (0 or more)")
        waits.append(seconds)
    return tuple(waits)


def is_success(http_status: int | None) -> bool:
    """A 2xx answer (within the timeout: the dispatcher gives None otherwise)."""
    return http_status is not None and 200 <= http_status < 300


def next_attempt_at(attempts_made: int, schedule: Sequence[float], now: dt.datetime) -> dt.datetime | None:
    """After `attempts_made` attempts (the last one failed), when to try again; None when the
    schedule is spent and the delivery fails for good."""
    if attempts_made < 1 or attempts_made > len(schedule):
        return None
    return now + dt.timedelta(seconds=schedule[attempts_made - 1])


def should_disable(failing_since: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether an endpoint failing since `failing_since` with no success since is to be disabled."""
    return failing_since is not None and now - failing_since >= DISABLE_AFTER_FAILING


# --- Signing -------------------------------------------------------------------------------------

SECRET_PREFIX = "whsec_"
# A rotated secret keeps signing beside the new one this long, so receivers can switch over.
SECRET_ROTATION_OVERLAP = dt.timedelta(hours=24)


def secret_of_key(key: bytes) -> str:
    """The secret as shown to the integrator: `whsec_` + the key in base64."""
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def key_of_secret(secret: str) -> bytes:
    """The signing key of a `whsec_…` secret. Raises ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with 'whsec_'")
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is 'whsec_' and base64") from None


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One signature: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: Iterable[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: a signature per secret (the current one first), separated by spaces."""
    return " ".join(signature(secret, webhook_id, timestamp, body) for secret in secrets)


def signing_secrets(
    current: str, previous: str | None, previous_expires_at: dt.datetime | None, now: dt.datetime
) -> list[str]:
    """The secrets that sign now: the current one, and the rotated one during its overlap."""
    if previous is not None and previous_expires_at is not None and now < previous_expires_at:
        return [current, previous]
    return [current]


# --- Destinations --------------------------------------------------------------------------------

URL_MAX_LENGTH = 2048


@dataclass(frozen=True)
class Destination:
    """Where a URL points: its scheme, host (an address literal unbracketed) and port."""

    scheme: str
    host: str
    port: int


def _refused(code: str, message: str) -> Refusal:
    return Refusal(RefusalKind.INVALID, code, message)


def parse_destination(url: str, *, allow_private: bool) -> Destination | Refusal:
    """The URL's destination, or why it is refused: only `https://` (also `http://` when private
    destinations are allowed), a host, no credentials, at most URL_MAX_LENGTH characters."""
    if len(url) > URL_MAX_LENGTH or not url.isprintable() or any(char.isspace() for char in url):
        return _refused("webhook_url_invalid", f"'Url' must be a URL of at most {URL_MAX_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _refused("webhook_url_invalid", "'Url' is not a valid URL.")
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        return _refused("webhook_url_scheme", "'Url' must be an https:// URL.")
    if not parts.hostname:
        return _refused("webhook_url_invalid", "'Url' must name a host.")
    if parts.username is not None or parts.password is not None:
        return _refused("webhook_url_credentials", "'Url' must not carry credentials.")
    default_port = 443 if parts.scheme == "https" else 80
    return Destination(parts.scheme, parts.hostname, port if port is not None else default_port)


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The host as an address, when it is one (no resolution needed)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def address_refusal(address: str, *, allow_private: bool) -> Refusal | None:
    """Why a destination address is refused, or None. Never: unspecified, multicast. Unless private
    destinations are allowed: any address that is not global (private, loopback, link-local,
    shared, documentation, reserved), IPv4 embedded in IPv6 (mapped, 6to4, NAT64) judged as IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # a zone index (fe80::1%eth0) is no part
    except ValueError:
        return _refused("webhook_url_address", f"'{address}' is not an address.")
    ip = _embedded_ipv4(ip) or ip
    if ip.is_unspecified or ip.is_multicast:
        return _refused("webhook_url_address", "'Url' resolves to an address that cannot be a destination.")
    if allow_private:
        return None
    if ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_reserved or not ip.is_global:
        return _refused(
            "webhook_url_private",
            "'Url' resolves to a private, loopback or link-local address "
            "(allowed only with POSTVENTA_WEBHOOK_ALLOW_PRIVATE=true).",
        )
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def destination_refusal(url: str, resolved: Sequence[str], *, allow_private: bool) -> Refusal | None:
    """Whether a URL whose host resolved to `resolved` may be posted to: the URL's rules, then every
    address (one refused address refuses the URL: the connection could go to any of them)."""
    parsed = parse_destination(url, allow_private=allow_private)
    if isinstance(parsed, Refusal):
        return parsed
    if not resolved:
        return _refused("webhook_url_unresolved", f"'Url''s host '{parsed.host}' does not resolve.")
    for address in resolved:
        refusal = address_refusal(address, allow_private=allow_private)
        if refusal is not None:
            return refusal
    return None
