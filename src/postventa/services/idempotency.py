"""Idempotency keys of the send (draft-ietf-httpapi-idempotency-key-header): claim, replay, record.

A key is scoped to its API key. The first request with a key claims it with a `running` row; a
repeat of the same request gets the recorded response; the same key with another request is refused
(422), and a repeat while the first still runs is refused (409). A request is identified by the
fingerprint of what was parsed, not of its bytes, so a multipart retry with a new boundary is the
same request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.errors import PostventaError, RefusalKind
from postventa.domain.parameters import ACCOUNT_ID, API_KEY, Parameters
from postventa.domain.send_request import UploadedFile
from postventa.store import idempotency as store
from postventa.store.idempotency import KeyLock, StoredResponse

LOCK_SECONDS = 60
CLAIM_ATTEMPTS = 3
KEY_IN_USE = "idempotency_key_in_use"
KEY_REUSED = "idempotency_key_reused"

log = structlog.get_logger("postventa.idempotency")


def key_in_use() -> PostventaError:
    """409: the key's first request is still being processed."""
    return PostventaError.of(
        RefusalKind.CONFLICT,
        KEY_IN_USE,
        "A request with this Idempotency-Key is still being processed; retry later.",
    )


def request_fingerprint(method: str, path_order_id: str, account_id: int, parameters: Parameters) -> str:
    """SHA-256 (hex) of the request as parsed: method, path order id, account and parameters.

    Names are lower-cased and sorted; a file counts by its name and bytes. The API key is left out
    (the key's scope is the API key already), and the raw `accountId` is replaced by the parsed one.
    """
    digest = hashlib.sha256()
    for piece in _fingerprint_pieces(method, path_order_id, account_id, parameters):
        digest.update(len(piece).to_bytes(8, "big"))
        digest.update(piece)
    return digest.hexdigest()


def _fingerprint_pieces(
    method: str, path_order_id: str, account_id: int, parameters: Parameters
) -> Iterator[bytes]:
    yield method.upper().encode()
    yield path_order_id.encode("utf-8", "surrogatepass")
    yield str(account_id).encode()
    named = sorted(
        ((name.lower(), value) for name, value in parameters.values.items() if name not in _LEFT_OUT),
        key=lambda pair: pair[0],
    )
    for name, value in named:
        yield name.encode()
        yield from _value_pieces(value)


_LEFT_OUT = frozenset({API_KEY, ACCOUNT_ID})


def _value_pieces(value: object) -> Iterator[bytes]:
    if isinstance(value, UploadedFile):
        yield b"file"
        yield value.filename.encode("utf-8", "surrogatepass")
        yield hashlib.sha256(value.content).digest()
    elif isinstance(value, bool):
        yield b"text"
        yield b"true" if value else b"false"
    elif isinstance(value, str | int | float):
        yield b"text"  # "5" and 5 are the same value, as for a parameter given twice
        yield str(value).encode("utf-8", "surrogatepass")
    else:
        yield b"other"  # nested JSON: never used by the send, but part of what was asked
        yield repr(value).encode("utf-8", "surrogatepass")


async def claim_key(
    connection: AsyncConnection,
    *,
    api_key_id: int,
    key: str,
    request_hash: str,
    now: dt.datetime,
    ttl_seconds: int,
) -> KeyLock | StoredResponse:
    """Hold the key for this request (a lock) or return the response recorded for it (a replay).

    Refuses the key used with another request (422) or still running for its first request (409).
    Runs in its own short write transaction, committed before the send's checks begin.
    """
    await store.purge_expired(connection, api_key_id, now)
    locked_until = now + dt.timedelta(seconds=LOCK_SECONDS)
    expires_at = now + dt.timedelta(seconds=ttl_seconds)
    for _ in range(CLAIM_ATTEMPTS):
        lock = await store.insert_running(
            connection,
            api_key_id=api_key_id,
            key=key,
            request_hash=request_hash,
            now=now,
            locked_until=locked_until,
            expires_at=expires_at,
        )
        if lock is not None:
            return lock
        row = await store.find_key(connection, api_key_id, key)
        if row is None:
            continue  # released or purged in between: insert again
        if row.expires_at <= now:
            lock = await store.replace_expired(
                connection,
                row,
                request_hash=request_hash,
                now=now,
                locked_until=locked_until,
                expires_at=expires_at,
            )
            if lock is not None:
                return lock
            continue
        return await _existing(connection, row, request_hash, now, locked_until)
    raise key_in_use()


async def _existing(
    connection: AsyncConnection,
    row: store.IdempotencyRow,
    request_hash: str,
    now: dt.datetime,
    locked_until: dt.datetime,
) -> KeyLock | StoredResponse:
    if row.request_hash != request_hash:
        raise PostventaError.of(
            RefusalKind.KEY_REUSED,
            KEY_REUSED,
            "This Idempotency-Key was already used with a different request.",
        )
    if row.response is not None:
        return row.response
    if row.locked_until > now:
        raise key_in_use()
    lock = await store.take_over(connection, row, locked_until)
    if lock is None:
        raise key_in_use()
    log.warning("idempotency_key_taken_over", idempotency_row=row.id)
    return lock


async def complete(connection: AsyncConnection, lock: KeyLock, response: StoredResponse) -> None:
    """Record the response in the caller's transaction (the one that stores the message).

    Refuses (409) when the key is no longer this request's, so the caller's transaction rolls back
    and the message is not stored twice.
    """
    if not await store.record_response(connection, lock, response):
        raise key_in_use()


async def record_refusal(connection: AsyncConnection, lock: KeyLock, response: StoredResponse) -> None:
    """Record a refusal (nothing else was written); a lock taken over meanwhile records nothing."""
    await store.record_response(connection, lock, response)


async def release(connection: AsyncConnection, lock: KeyLock) -> None:
    """Let go of the key after an unexpected failure, so a retry is processed afresh."""
    await store.release(connection, lock)
