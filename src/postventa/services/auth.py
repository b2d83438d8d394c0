"""Checks 1–3: the API key, the account id, and whether the key opens that account; and the syntax of
the rate limits a key is given (POSTVENTA_RATE_LIMITS, or the key's own)."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

from limits import RateLimitItem
from limits.util import parse_many
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.errors import PostventaError, RefusalKind, invalid
from postventa.domain.parameters import parse_identifier
from postventa.store.accounts import ApiKeyGrant, find_active_key

API_KEY_PREFIX = "pv"
_PREFIX_CHARACTERS = 12
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,200}")

SEND = "send"
READ = "read"
ENDPOINT_CLASSES = (SEND, READ)
MAX_RATE_LIMITS_CHARACTERS = 200  # api_keys.rate_limits
# A quota's bounds (docs/decisions.md): a window of at least a second (`limits` reads "1/0 second" as
# one second) and at most a day (a Retry-After past that is no answer a client can act on), and
# at most a million requests in it (each counted request is an entry of the moving window kept
# until it leaves the window: the amount bounds what one key's counters can hold).
MIN_RATE_LIMIT_WINDOW_SECONDS = 1
MAX_RATE_LIMIT_WINDOW_SECONDS = 24 * 3600
MAX_RATE_LIMIT_AMOUNT = 1_000_000
_RATE_LIMIT_RULE = re.compile(r"\s*([0-9]+)\s*(?:/|\s*per\s*)\s*([0-9]+)?\s*([a-z]+)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class IssuedKey:
    """A new key: the secret shown once, and what is stored of it."""

    api_key: str
    prefix: str
    key_hash: str


def issue_api_key(pepper: str) -> IssuedKey:
    """A fresh key "pv_<prefix>_<secret>" with 256 bits of secret."""
    prefix = secrets.token_hex(_PREFIX_CHARACTERS // 2)
    secret = secrets.token_urlsafe(32)
    return IssuedKey(f"{API_KEY_PREFIX}_{prefix}_{secret}", prefix, hash_secret(secret, pepper))


def hash_secret(secret: str, pepper: str) -> str:
    """Keyed hash under which a key's secret is stored; the pepper lives outside the database."""
    return hmac.digest(pepper.encode(), secret.encode(), "sha256").hex()


async def authenticate(connection: AsyncConnection, api_key: str | None, pepper: str) -> ApiKeyGrant:
    """Check 1: the key exists, is not revoked, and its secret matches (compared in constant time)."""
    if not api_key:
        raise PostventaError.of(
            RefusalKind.UNAUTHENTICATED,
            "api_key_missing",
            "'API_KEY' is required (query, body or X-API-Key).",
        )
    marker, _, rest = api_key.partition("_")
    prefix, _, secret = rest.partition("_")
    stored = None
    if (
        _KEY_SHAPE.fullmatch(api_key)
        and marker == API_KEY_PREFIX
        and len(prefix) == _PREFIX_CHARACTERS
        and secret
    ):
        stored = await find_active_key(connection, prefix)
    if stored is None or not hmac.compare_digest(stored.key_hash, hash_secret(secret, pepper)):
        raise PostventaError.of(
            RefusalKind.UNAUTHENTICATED, "api_key_invalid", "The API key is unknown or revoked."
        )
    return stored.grant


def authorize_account(grant: ApiKeyGrant, raw_account_id: object) -> int:
    """Checks 2 and 3: a well-formed account id that the key is associated with."""
    if raw_account_id is None:
        raise invalid("account_id_missing", "'accountId' is required.")
    account_id = parse_identifier(raw_account_id)
    if account_id is None:
        raise invalid("account_id_invalid", "'accountId' must be a positive integer.")
    if account_id not in grant.account_ids:
        raise PostventaError.of(
            RefusalKind.FORBIDDEN,
            "account_not_allowed",
            f"The API key is not associated with account {account_id}.",
        )
    return account_id


def parse_rate_limits(text: str) -> dict[str, RateLimitItem]:
    """ "send=120/minute,read=1200/minute" → a limit per endpoint class; both classes, nothing else."""
    limits: dict[str, RateLimitItem] = {}
    for part in text.split(","):
        name, _, rule = (piece.strip() for piece in part.partition("="))
        name = name.lower()
        if not name or not rule:
            raise ValueError(f"rate limit '{part.strip()}' is not NAME=N/PERIOD")
        if name not in ENDPOINT_CLASSES:
            raise ValueError(f"rate limit class '{name}' is unknown (send, read)")
        if name in limits:
            raise ValueError(f"rate limit class '{name}' is given twice")
        limits[name] = _bounded_rate_limit(rule)
    missing = set(ENDPOINT_CLASSES) - limits.keys()
    if missing:
        raise ValueError(f"rate limits must name {', '.join(sorted(missing))}")
    return limits


def _bounded_rate_limit(rule: str) -> RateLimitItem:
    """One "N/PERIOD" or "N/M PERIODs" whose amount and window are within the bounds above."""
    written = _RATE_LIMIT_RULE.fullmatch(rule)
    try:
        items = parse_many(rule)
    except ValueError:
        items = []
    if written is None or len(items) != 1:
        raise ValueError(f"rate limit '{rule}' must be one positive N/PERIOD, e.g. 120/minute")
    item = items[0]
    amount, multiples = int(written.group(1)), int(written.group(2) or 1)
    window_seconds = item.GRANULARITY.seconds * multiples
    if not 1 <= amount <= MAX_RATE_LIMIT_AMOUNT:
        raise ValueError(f"rate limit '{rule}' must allow from 1 to {MAX_RATE_LIMIT_AMOUNT} requests")
    if not MIN_RATE_LIMIT_WINDOW_SECONDS <= window_seconds <= MAX_RATE_LIMIT_WINDOW_SECONDS:
        raise ValueError(f"rate limit '{rule}' must have a window from 1 second to 1 day")
    return item


def key_rate_limits(text: str | None) -> str | None:
    """A key's own rate limits as stored: checked, trimmed; None means POSTVENTA_RATE_LIMITS."""
    if text is None:
        return None
    text = text.strip()
    try:
        if len(text) > MAX_RATE_LIMITS_CHARACTERS:
            raise ValueError(f"at most {MAX_RATE_LIMITS_CHARACTERS} characters")
        parse_rate_limits(text)
    except ValueError as error:
        raise invalid(
            "invalid_body",
            f"RateLimits: {error}; e.g. 'send=10/minute,read=100/minute', or null for the defaults.",
        ) from error
    return text
