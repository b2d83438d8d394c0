"""The outbox's cold statements: handing messages back, requeueing, counting, heartbeats, history.

None of these runs per delivery, so they go through SQLAlchemy's own execution.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.delivery import MessageStatus
from postventa.store.outbox.claims import claimable, either_due
from postventa.store.tables import delivery_attempts, messages, worker_heartbeats
from postventa.store.upsert import upsert


async def next_due_at(connection: AsyncConnection) -> dt.datetime | None:
    """When the next queued message falls due (to sleep until then)."""
    result = await connection.execute(
        select(func.min(messages.c.next_attempt_at)).where(
            messages.c.direction == "outbound", messages.c.status == MessageStatus.QUEUED
        )
    )
    value = result.scalar_one_or_none()
    return value if isinstance(value, dt.datetime) else None


async def known_marketplace_ids(connection: AsyncConnection, account_id: int) -> set[str]:
    """Mercado Libre message ids already recorded for the account."""
    rows = await connection.execute(
        select(messages.c.marketplace_message_id).where(
            messages.c.account_id == account_id, messages.c.marketplace_message_id.is_not(None)
        )
    )
    return {str(value) for value in rows.scalars()}


async def release_claimed(
    connection: AsyncConnection, message_ids: Sequence[int], worker: str, now: dt.datetime
) -> int:
    """Hand back messages this worker claimed but never attempted (it is stopping): queued and due
    at once, the claim's attempt not counted. Fenced by the lease: one no longer held is left."""
    if not message_ids:
        return 0
    result = await connection.execute(
        update(messages)
        .where(
            messages.c.id.in_(list(message_ids)),
            messages.c.status == MessageStatus.SENDING,
            messages.c.lease_owner == worker,
        )
        .values(
            status=MessageStatus.QUEUED,
            status_changed_at=now,
            next_attempt_at=now,
            attempts=messages.c.attempts - 1,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    return int(result.rowcount)


async def requeue(connection: AsyncConnection, now: dt.datetime, message_ids: list[int] | None = None) -> int:
    """Put failed messages (all, or these) back in the queue; returns how many."""
    conditions = [messages.c.status == MessageStatus.FAILED, messages.c.direction == "outbound"]
    if message_ids is not None:
        conditions.append(messages.c.id.in_(message_ids))
    result = await connection.execute(
        update(messages)
        .where(*conditions)
        .values(
            status=MessageStatus.QUEUED,
            status_changed_at=now,
            next_attempt_at=now,
            attempts=0,
            failed_at=None,
            error_code=None,
            error_message=None,
        )
    )
    return int(result.rowcount)


async def resume_account(connection: AsyncConnection, account_id: int, now: dt.datetime) -> int:
    """Make the account's queued messages due now (its link works again); returns how many were
    waiting for later. Their attempts and routes are kept: this is the same delivery, resumed."""
    result = await connection.execute(
        update(messages)
        .where(
            messages.c.account_id == account_id,
            messages.c.direction == "outbound",
            messages.c.status == MessageStatus.QUEUED,
            messages.c.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )
    return int(result.rowcount)


async def count_by_status(connection: AsyncConnection) -> dict[str, int]:
    """Outbound messages per status (queue depth)."""
    rows = await connection.execute(
        select(messages.c.status, func.count())
        .where(messages.c.direction == "outbound")
        .group_by(messages.c.status)
    )
    return {row[0]: int(row[1]) for row in rows}


async def count_due(connection: AsyncConnection, now: dt.datetime) -> int:
    """How many messages a worker could claim now (the backlog the workers have not caught up on):
    the claims' own `WHERE`."""
    result = await connection.execute(
        select(func.count()).select_from(messages).where(claimable(either_due, now))
    )
    return int(result.scalar_one())


async def heartbeat(connection: AsyncConnection, worker: str, now: dt.datetime) -> None:
    """Say this worker is alive."""
    await upsert(connection, worker_heartbeats, {"worker_id": worker, "seen_at": now}, ["worker_id"])


async def latest_heartbeat(connection: AsyncConnection) -> dt.datetime | None:
    """When any delivery worker last said it was alive; None when none ever did."""
    result = await connection.execute(select(func.max(worker_heartbeats.c.seen_at)))
    value = result.scalar_one_or_none()
    return value if isinstance(value, dt.datetime) else None


async def attempts_of(connection: AsyncConnection, message_id: int) -> list[dict[str, Any]]:
    """The attempts of a message, oldest first."""
    rows = await connection.execute(
        select(delivery_attempts)
        .where(delivery_attempts.c.message_id == message_id)
        .order_by(delivery_attempts.c.id)
    )
    return [dict(row._mapping) for row in rows]
