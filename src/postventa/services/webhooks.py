"""Webhook endpoints' use cases (issue 20): register, list, change, delete, rotate the secret, read
the attempts. Each runs in the caller's transaction, except `check_url`, which resolves the URL's
host and so runs before the transaction opens (a DNS answer may take seconds; SQLite's write lock
must not wait on it): register and change take its `CheckedUrl`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain import webhooks as rules
from postventa.domain.errors import PostventaError, Refusal, invalid, not_found
from postventa.store import accounts as account_store
from postventa.store import webhook_endpoints as endpoint_store
from postventa.store.sealing import TokenCipher

# The most endpoints an account may have: each event is one delivery per endpoint.
MAX_ENDPOINTS_PER_ACCOUNT = 20
SECRET_KEY_BYTES = 32
MAX_ATTEMPTS_PAGE = 500

# Resolves a host to its addresses (text, as `ipaddress` reads them); raises OSError when it cannot.
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses as the system resolves them (getaddrinfo, TCP)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class CheckedUrl:
    """A URL that passed the destination rules against its host's addresses as resolved now."""

    url: str
    addresses: tuple[str, ...]


async def check_url(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> CheckedUrl:
    """The URL checked: its form, then every address its host resolves to (domain/webhooks.py).
    Raises PostventaError (invalid, 400) with the rule's code."""
    if not isinstance(url, str):
        raise invalid("webhook_url_invalid", "'Url' must be a string.")
    parsed = rules.parse_destination(url, allow_private=allow_private)
    if isinstance(parsed, Refusal):
        raise PostventaError(parsed)
    literal = rules.literal_address(parsed.host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolver(parsed.host, parsed.port)
        except (OSError, UnicodeError):
            addresses = []
    refusal = rules.destination_refusal(url, addresses, allow_private=allow_private)
    if refusal is not None:
        raise PostventaError(refusal)
    return CheckedUrl(url, tuple(addresses))


# An endpoint as the admin surface shows it (never its secret), its events by name.
WebhookEndpoint = endpoint_store.StoredEndpoint


@dataclass(frozen=True)
class EndpointWithSecret:
    """An endpoint just registered or whose secret was just rotated: the secret is shown only here."""

    endpoint: WebhookEndpoint
    secret: str


def new_secret() -> str:
    """A fresh `whsec_…` secret (32 random bytes)."""
    return rules.secret_of_key(secrets.token_bytes(SECRET_KEY_BYTES))


def _mask(events: Sequence[str] | None) -> int:
    if events is not None and (
        not isinstance(events, list | tuple) or not all(isinstance(name, str) for name in events)
    ):
        raise invalid("webhook_events_invalid", "'Events' must be a list of event types.")
    try:
        return rules.events_mask(events)
    except ValueError as error:
        raise invalid("webhook_events_invalid", f"'Events': {error}.") from None


async def register_endpoint(
    connection: AsyncConnection,
    cipher: TokenCipher,
    account_id: int,
    url: CheckedUrl,
    events: Sequence[str] | None,
    now: dt.datetime,
) -> EndpointWithSecret:
    """A new endpoint of the account for `events` (None: all), with a new secret shown once."""
    mask = _mask(events)
    if await account_store.get_account(connection, account_id) is None:
        raise not_found("account_not_found", f"No account {account_id}.")
    if await endpoint_store.count_endpoints(connection, account_id) >= MAX_ENDPOINTS_PER_ACCOUNT:
        raise invalid(
            "webhook_endpoints_limit",
            f"An account has at most {MAX_ENDPOINTS_PER_ACCOUNT} webhook endpoints.",
        )
    secret = new_secret()
    stored = await endpoint_store.insert_endpoint(
        connection,
        account_id=account_id,
        url=url.url,
        events_mask=mask,
        sealed_secret=cipher.seal(secret),
        now=now,
    )
    return EndpointWithSecret(stored, secret)


async def list_endpoints(connection: AsyncConnection, account_id: int) -> list[WebhookEndpoint]:
    """The account's endpoints, oldest first. Raises not_found for an unknown account."""
    if await account_store.get_account(connection, account_id) is None:
        raise not_found("account_not_found", f"No account {account_id}.")
    return await endpoint_store.list_endpoints(connection, account_id)


async def get_endpoint(connection: AsyncConnection, endpoint_id: int) -> WebhookEndpoint:
    """One endpoint. Raises not_found."""
    stored = await endpoint_store.get_endpoint(connection, endpoint_id)
    if stored is None:
        raise _no_endpoint(endpoint_id)
    return stored


def _no_endpoint(endpoint_id: int) -> PostventaError:
    return not_found("webhook_not_found", f"No webhook endpoint {endpoint_id}.")


async def update_endpoint(
    connection: AsyncConnection,
    endpoint_id: int,
    *,
    url: CheckedUrl | None = None,
    events: Sequence[str] | None = None,
    enabled: bool | None = None,
    now: dt.datetime,
) -> WebhookEndpoint:
    """Change an endpoint's URL, events or enabled flag (None: left as it is). Enabling it again
    clears why it was disabled and its failing streak. Raises not_found, or invalid when nothing
    is changed or the events are unknown."""
    values: dict[str, object] = {}
    if url is not None:
        values["url"] = url.url
    if events is not None:
        values["events_mask"] = _mask(events)
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise invalid("webhook_enabled_invalid", "'Enabled' must be true or false.")
        values["enabled"] = enabled
        values["disabled_reason"] = None if enabled else "disabled by an operator"
        values["failing_since"] = None
    if not values:
        raise invalid("invalid_body", "Give at least one of Url, Events, Enabled.")
    if enabled is not None:
        values["disabled_at"] = None if enabled else now
    stored = await endpoint_store.update_endpoint(connection, endpoint_id, values)
    if stored is None:
        raise _no_endpoint(endpoint_id)
    return stored


async def delete_endpoint(connection: AsyncConnection, endpoint_id: int) -> None:
    """Delete an endpoint, its pending deliveries and its attempts. Raises not_found."""
    if not await endpoint_store.delete_endpoint(connection, endpoint_id):
        raise _no_endpoint(endpoint_id)


async def rotate_secret(
    connection: AsyncConnection, cipher: TokenCipher, endpoint_id: int, now: dt.datetime
) -> EndpointWithSecret:
    """A new secret, shown once; the old one keeps signing beside it for
    domain/webhooks.SECRET_ROTATION_OVERLAP (24 h), so each body carries two signatures meanwhile.
    Raises not_found."""
    sealed = await endpoint_store.sealed_secrets(connection, endpoint_id)
    if sealed is None:
        raise _no_endpoint(endpoint_id)
    secret = new_secret()
    stored = await endpoint_store.replace_secret(
        connection,
        endpoint_id,
        sealed_secret=cipher.seal(secret),
        sealed_previous=sealed.secret,
        previous_expires_at=now + rules.SECRET_ROTATION_OVERLAP,
    )
    if stored is None:
        raise _no_endpoint(endpoint_id)
    return EndpointWithSecret(stored, secret)


async def list_attempts(
    connection: AsyncConnection, endpoint_id: int, *, limit: int = 100, offset: int = 0
) -> list[endpoint_store.StoredAttempt]:
    """The endpoint's delivery attempts, newest first (each with its event's id, type and the
    delivery's status). Raises not_found, or invalid for a limit outside 1..500 or a negative offset."""
    if not 1 <= limit <= MAX_ATTEMPTS_PAGE or offset < 0:
        raise invalid("invalid_page", f"'limit' must be 1 to {MAX_ATTEMPTS_PAGE}, 'offset' 0 or more.")
    if await endpoint_store.get_endpoint(connection, endpoint_id) is None:
        raise _no_endpoint(endpoint_id)
    return await endpoint_store.list_attempts(connection, endpoint_id, limit=limit, offset=offset)
