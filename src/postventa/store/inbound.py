"""Notifications from Mercado Libre, kept until processed, and lookups the inbound path needs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.delivery import LinkStatus
from postventa.store.tables import inbound_notifications, marketplace_links

PROCESSING_LEASE_SECONDS = 60


@dataclass(frozen=True)
class Notification:
    """A notification to process."""

    id: int
    topic: str
    resource: str
    user_id: int
    attempts: int


async def save_notification(
    connection: AsyncConnection, topic: str, resource: str, user_id: int, now: dt.datetime
) -> None:
    """Keep a notification. The same one again while it is pending is coalesced with it (left as it
    is: a flood of repeats costs one row and one processing); once processed, it is processed again
    (its resource may have changed)."""
    table = inbound_notifications
    changes = _fresh(now)
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(topic=topic, resource=resource, user_id=user_id, **changes)
    statement = statement.on_conflict_do_update(
        index_elements=["topic", "resource", "user_id"],
        set_=changes,
        where=table.c.processed_at.is_not(None),
    )
    await connection.execute(statement)


def _fresh(now: dt.datetime) -> dict[str, Any]:
    """A notification's processing state when it is (again) to be processed now."""
    return {
        "received_at": now,
        "processed_at": None,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
    }


async def claim_notifications(
    connection: AsyncConnection,
    now: dt.datetime,
    *,
    limit: int,
    skip_sellers: Collection[int] = (),
) -> list[Notification]:
    """Take due notifications for a while (a processor that dies lets them fall due again), the
    newest first: a real one that comes after a flood is not queued behind it. Those of the sellers
    in `skip_sellers` (out of calls for now) are left."""
    table = inbound_notifications
    due = select(table.c.id).where(table.c.processed_at.is_(None), table.c.next_attempt_at <= now)
    if skip_sellers:
        due = due.where(table.c.user_id.not_in(list(skip_sellers)))
    due = due.order_by(table.c.received_at.desc(), table.c.id.desc()).limit(limit)
    if connection.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = await connection.execute(
        update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(
            attempts=table.c.attempts + 1,
            next_attempt_at=now + dt.timedelta(seconds=PROCESSING_LEASE_SECONDS),
        )
        .returning(table.c.id, table.c.topic, table.c.resource, table.c.user_id, table.c.attempts)
    )
    claimed = [Notification(row.id, row.topic, row.resource, row.user_id, row.attempts) for row in rows]
    return sorted(claimed, key=lambda notification: -notification.id)  # RETURNING keeps no order


async def release_notifications(
    connection: AsyncConnection, notification_ids: Collection[int], now: dt.datetime
) -> None:
    """Hand back claimed notifications that were not processed (their seller is out of calls, or the
    processor is stopping): due at once again, the claim's attempt not counted."""
    if not notification_ids:
        return
    table = inbound_notifications
    await connection.execute(
        update(table)
        .where(table.c.id.in_(list(notification_ids)), table.c.processed_at.is_(None))
        .values(attempts=table.c.attempts - 1, next_attempt_at=now)
    )


async def drop_pending_over_bound(
    connection: AsyncConnection, bound: int, now: dt.datetime, reason: str
) -> int:
    """Settle the oldest pending notifications of each seller that has more than `bound` waiting,
    with `reason`; returns how many were dropped. The newest `bound` of each seller stay."""
    table = inbound_notifications
    crowded = await connection.execute(
        select(table.c.user_id)
        .where(table.c.processed_at.is_(None))
        .group_by(table.c.user_id)
        .having(func.count() > bound)
    )
    dropped = 0
    for user_id in crowded.scalars().all():
        oldest = (
            select(table.c.id)
            .where(table.c.user_id == user_id, table.c.processed_at.is_(None))
            .order_by(table.c.received_at.desc(), table.c.id.desc())
            .offset(bound)
        )
        result = await connection.execute(
            update(table)
            .where(table.c.id.in_(oldest.scalar_subquery()))
            .values(processed_at=now, last_error=reason)
        )
        dropped += result.rowcount
    return dropped


async def prune_processed(connection: AsyncConnection, before: dt.datetime, *, limit: int) -> int:
    """Delete up to `limit` notifications processed before `before`; returns how many."""
    table = inbound_notifications
    old = select(table.c.id).where(table.c.processed_at < before).limit(limit)
    result = await connection.execute(delete(table).where(table.c.id.in_(old.scalar_subquery())))
    return result.rowcount


async def finish_notification(
    connection: AsyncConnection,
    notification_id: int,
    now: dt.datetime,
    *,
    retry_at: dt.datetime | None,
    error: str | None,
) -> None:
    """Processed (retry_at None), or to be tried again at retry_at."""
    values: dict[str, Any] = {"last_error": error}
    if retry_at is None:
        values["processed_at"] = now
    else:
        values["next_attempt_at"] = retry_at
    await connection.execute(
        update(inbound_notifications).where(inbound_notifications.c.id == notification_id).values(**values)
    )


async def pending_notifications(connection: AsyncConnection) -> int:
    """Notifications not yet processed."""
    result = await connection.execute(
        select(func.count())
        .select_from(inbound_notifications)
        .where(inbound_notifications.c.processed_at.is_(None))
    )
    return int(result.scalar_one())


async def save_missed_notification(
    connection: AsyncConnection,
    topic: str,
    resource: str,
    user_id: int,
    happened_at: dt.datetime | None,
    now: dt.datetime,
) -> None:
    """Keep a notification found in Mercado Libre's missed feeds. One already kept is processed again
    only when it was received before this one happened (the feed repeats what was already handled)."""
    table = inbound_notifications
    changes = _fresh(now)
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(topic=topic, resource=resource, user_id=user_id, **changes)
    if happened_at is None:
        statement = statement.on_conflict_do_nothing(index_elements=["topic", "resource", "user_id"])
    else:
        statement = statement.on_conflict_do_update(
            index_elements=["topic", "resource", "user_id"],
            set_=changes,
            where=table.c.received_at < happened_at,
        )
    await connection.execute(statement)


async def applications(connection: AsyncConnection) -> list[tuple[str, int]]:
    """Each Mercado Libre application (client id) of an active link, with one account linked through
    it (whose token reads the application's missed feeds)."""
    rows = await connection.execute(
        select(marketplace_links.c.client_id, func.min(marketplace_links.c.account_id).label("account_id"))
        .where(marketplace_links.c.status == LinkStatus.ACTIVE.value)
        .group_by(marketplace_links.c.client_id)
        .order_by(marketplace_links.c.client_id)
    )
    return [(row.client_id, int(row.account_id)) for row in rows]
