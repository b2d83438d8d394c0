"""Notifications from Mercado Libre, kept until processed, and lookups the inbound path needs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.store.tables import inbound_notifications, messages, orders
from postventa.store.upsert import upsert

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
    """Keep a notification; the same one again is processed again (its resource may have changed)."""
    values = {
        "topic": topic,
        "resource": resource,
        "user_id": user_id,
        "received_at": now,
        "processed_at": None,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
    }
    changes = {
        "received_at": now,
        "processed_at": None,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
    }
    await upsert(connection, inbound_notifications, values, ["topic", "resource", "user_id"], changes)


async def claim_notifications(
    connection: AsyncConnection, now: dt.datetime, *, limit: int
) -> list[Notification]:
    """Take due notifications for a while (a processor that dies lets them fall due again)."""
    table = inbound_notifications
    due = select(table.c.id).where(table.c.processed_at.is_(None), table.c.next_attempt_at <= now)
    due = due.order_by(table.c.next_attempt_at).limit(limit)
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
    return [Notification(row.id, row.topic, row.resource, row.user_id, row.attempts) for row in rows]


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


async def find_order_for_conversation(
    connection: AsyncConnection, account_id: int, resource: int
) -> int | None:
    """The order a Mercado Libre conversation (pack id, or order id without pack) belongs to."""
    result = await connection.execute(
        select(orders.c.id)
        .where(
            orders.c.account_id == account_id,
            or_(
                orders.c.pack_id == resource,
                and_(orders.c.pack_id.is_(None), orders.c.external_order_id == str(resource)),
            ),
        )
        .order_by(orders.c.id)
        .limit(1)
    )
    value = result.scalar_one_or_none()
    return int(value) if value is not None else None


async def has_marketplace_message(connection: AsyncConnection, account_id: int, marketplace_id: str) -> bool:
    """Whether this Mercado Libre message is already recorded."""
    result = await connection.execute(
        select(messages.c.id).where(
            messages.c.account_id == account_id, messages.c.marketplace_message_id == marketplace_id
        )
    )
    return result.first() is not None


async def mark_moderated(
    connection: AsyncConnection, account_id: int, marketplace_id: str, reason: str | None, now: dt.datetime
) -> bool:
    """A seller message Mercado Libre moderated after accepting it."""
    result = await connection.execute(
        update(messages)
        .where(
            messages.c.account_id == account_id,
            messages.c.marketplace_message_id == marketplace_id,
            messages.c.direction == "outbound",
            messages.c.status == "sent",
        )
        .values(status="moderated", moderation_reason=reason, status_changed_at=now)
    )
    return result.rowcount == 1


async def conversations_awaiting_reply(
    connection: AsyncConnection, *, sent_since: dt.datetime, limit: int
) -> list[tuple[int, int]]:
    """(account, Mercado Libre conversation) whose last message is a seller message delivered since
    `sent_since`, most recent first: where a reply may come."""
    latest = (
        select(messages.c.conversation_id, func.max(messages.c.conversation_sequence).label("sequence"))
        .group_by(messages.c.conversation_id)
        .subquery()
    )
    rows = await connection.execute(
        select(orders.c.account_id, orders.c.pack_id, orders.c.external_order_id)
        .select_from(
            messages.join(
                latest,
                and_(
                    messages.c.conversation_id == latest.c.conversation_id,
                    messages.c.conversation_sequence == latest.c.sequence,
                ),
            ).join(orders, orders.c.id == messages.c.order_id)
        )
        .where(
            messages.c.direction == "outbound",
            messages.c.status.in_(("sent", "moderated")),
            messages.c.sent_at >= sent_since,
        )
        .order_by(messages.c.sent_at.desc())
        .limit(limit)
    )
    return [
        (row.account_id, row.pack_id if row.pack_id is not None else int(row.external_order_id))
        for row in rows
        if row.pack_id is not None or row.external_order_id.isdigit()
    ]
