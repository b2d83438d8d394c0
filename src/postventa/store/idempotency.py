"""Idempotency keys of the send: the row a first request claims, and the response it records.

The unique (api_key_id, key) decides a race between duplicates. `locked_until` doubles as the
fencing token: the request holding a key knows the value it wrote, and every later write of the row
(record, release) is conditioned on it, so a request whose lock ran out and was taken over can no
longer write.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.store.tables import idempotency_keys

RUNNING = "running"
DONE = "done"
PURGE_BATCH_ROWS = 100

_table = idempotency_keys.c


@dataclass(frozen=True)
class StoredResponse:
    """A response as it is replayed: status, the headers that describe it, and the body's bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class KeyLock:
    """The handle of the request that holds a key: its row and the fence it wrote."""

    id: int
    locked_until: dt.datetime


@dataclass(frozen=True)
class IdempotencyRow:
    """A key as stored; `response` is set once the key is done."""

    id: int
    request_hash: str
    state: str
    locked_until: dt.datetime
    expires_at: dt.datetime
    response: StoredResponse | None


async def purge_expired(connection: AsyncConnection, api_key_id: int, now: dt.datetime) -> int:
    """Delete up to a batch of this API key's expired rows; returns how many went.

    Bounded, so the request that does it stays cheap; on PostgreSQL rows another purge holds are
    skipped rather than waited for (no queue, no deadlock between purges).
    """
    expired = (
        select(_table.id)
        .where(_table.api_key_id == api_key_id, _table.expires_at <= now)
        .order_by(_table.id)
        .limit(PURGE_BATCH_ROWS)
    )
    if connection.dialect.name == "postgresql":
        expired = expired.with_for_update(skip_locked=True)
    result = await connection.execute(
        delete(idempotency_keys).where(_table.id.in_(expired.scalar_subquery()))
    )
    return int(result.rowcount)


async def insert_running(
    connection: AsyncConnection,
    *,
    api_key_id: int,
    key: str,
    request_hash: str,
    now: dt.datetime,
    locked_until: dt.datetime,
    expires_at: dt.datetime,
) -> KeyLock | None:
    """Claim a new key with a `running` row; None when the key already has a row.

    On PostgreSQL a concurrent insert of the same key is waited for, so the loser then reads the
    winner's committed row.
    """
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(idempotency_keys)
        .values(
            api_key_id=api_key_id,
            key=key,
            request_hash=request_hash,
            state=RUNNING,
            locked_until=locked_until,
            created_at=now,
            expires_at=expires_at,
        )
        .on_conflict_do_nothing(index_elements=["api_key_id", "key"])
        .returning(_table.id)
    )
    row_id = (await connection.execute(statement)).scalar_one_or_none()
    return KeyLock(id=int(row_id), locked_until=locked_until) if row_id is not None else None


async def find_key(connection: AsyncConnection, api_key_id: int, key: str) -> IdempotencyRow | None:
    """The row of this API key's key, or None."""
    row = (
        await connection.execute(
            select(idempotency_keys).where(_table.api_key_id == api_key_id, _table.key == key)
        )
    ).first()
    return _idempotency_row(row) if row is not None else None


async def take_over(
    connection: AsyncConnection, row: IdempotencyRow, locked_until: dt.datetime
) -> KeyLock | None:
    """Hold a running key whose lock ran out (its request crashed); None if another request won."""
    result = await connection.execute(
        update(idempotency_keys)
        .where(_table.id == row.id, _table.state == RUNNING, _table.locked_until == row.locked_until)
        .values(locked_until=locked_until)
    )
    return KeyLock(id=row.id, locked_until=locked_until) if result.rowcount == 1 else None


async def replace_expired(
    connection: AsyncConnection,
    row: IdempotencyRow,
    *,
    request_hash: str,
    now: dt.datetime,
    locked_until: dt.datetime,
    expires_at: dt.datetime,
) -> KeyLock | None:
    """Reuse an expired key's row as a new `running` one; None if another request won."""
    result = await connection.execute(
        update(idempotency_keys)
        .where(_table.id == row.id, _table.expires_at == row.expires_at)
        .values(
            request_hash=request_hash,
            state=RUNNING,
            locked_until=locked_until,
            response_status=None,
            response_headers=None,
            response_body=None,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return KeyLock(id=row.id, locked_until=locked_until) if result.rowcount == 1 else None


async def record_response(connection: AsyncConnection, lock: KeyLock, response: StoredResponse) -> bool:
    """Mark the key done with its response; False when the lock is no longer this request's."""
    result = await connection.execute(
        update(idempotency_keys)
        .where(*_held(lock))
        .values(
            state=DONE,
            response_status=response.status,
            response_headers=json.dumps(response.headers),
            response_body=response.body,
        )
    )
    return bool(result.rowcount == 1)


async def release(connection: AsyncConnection, lock: KeyLock) -> bool:
    """Delete the running row, so a retry with the key starts afresh; False when no longer held."""
    result = await connection.execute(delete(idempotency_keys).where(*_held(lock)))
    return bool(result.rowcount == 1)


def _held(lock: KeyLock) -> tuple[Any, ...]:
    return (_table.id == lock.id, _table.state == RUNNING, _table.locked_until == lock.locked_until)


def _idempotency_row(row: Row[Any]) -> IdempotencyRow:
    response = (
        StoredResponse(
            status=row.response_status,
            headers=json.loads(row.response_headers),
            body=bytes(row.response_body),
        )
        if row.state == DONE
        else None
    )
    return IdempotencyRow(
        id=row.id,
        request_hash=row.request_hash,
        state=row.state,
        locked_until=row.locked_until,
        expires_at=row.expires_at,
        response=response,
    )
