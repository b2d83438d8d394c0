"""What postventa observed of Mercado Libre's conversations: the orders and conversations a Mercado
Libre message belongs to, messages recorded from it (verdicts, read times, messages written
outside postventa), the conversation's status and agent, and what the inbound poll reads next."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.delivery import MessageStatus
from postventa.domain.inbound import IN_FLIGHT_STATUSES, Source, StatusChange
from postventa.domain.orders import marketplace_conversation
from postventa.store.messages import ConversationChanged, lock_conversation
from postventa.store.tables import conversations, messages, orders


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
    found = ((row.account_id, marketplace_conversation(row.pack_id, row.external_order_id)) for row in rows)
    return [(account_id, resource) for account_id, resource in found if resource is not None]


@dataclass(frozen=True)
class ConversationRef:
    """The order and conversation a Mercado Libre conversation (pack or order id) is recorded under."""

    order_id: int
    conversation_id: int
    buyer_id: int | None  # the order's buyer, when its code is Mercado Libre's numeric user id
    site_id: str | None
    agent_user_id: int | None


async def conversation_ref(
    connection: AsyncConnection, account_id: int, resource: int
) -> ConversationRef | None:
    """The account's order and conversation for a Mercado Libre pack (or order without pack)."""
    order_id = await find_order_for_conversation(connection, account_id, resource)
    if order_id is None:
        return None
    row = (
        await connection.execute(
            select(
                orders.c.conversation_id, orders.c.buyer_code, orders.c.site_id, conversations.c.agent_user_id
            )
            .select_from(orders.join(conversations, conversations.c.id == orders.c.conversation_id))
            .where(orders.c.id == order_id)
        )
    ).one()
    code = row.buyer_code
    buyer_id = int(code) if code and code.isascii() and code.isdigit() and len(code) <= 19 else None
    return ConversationRef(order_id, row.conversation_id, buyer_id, row.site_id, row.agent_user_id)


@dataclass(frozen=True)
class KnownMessage:
    """A message already recorded under its Mercado Libre id."""

    id: int
    direction: str
    status: str
    read_at: dt.datetime | None


async def known_message(
    connection: AsyncConnection, account_id: int, marketplace_id: str
) -> KnownMessage | None:
    """The account's message with this Mercado Libre id, if recorded."""
    row = (
        await connection.execute(
            select(messages.c.id, messages.c.direction, messages.c.status, messages.c.read_at).where(
                messages.c.account_id == account_id, messages.c.marketplace_message_id == marketplace_id
            )
        )
    ).first()
    return KnownMessage(row.id, row.direction, row.status, row.read_at) if row else None


async def known_messages(
    connection: AsyncConnection, account_id: int, marketplace_ids: list[str]
) -> dict[str, KnownMessage]:
    """The account's messages recorded under any of these Mercado Libre ids, by id."""
    if not marketplace_ids:
        return {}
    rows = await connection.execute(
        select(
            messages.c.id,
            messages.c.direction,
            messages.c.status,
            messages.c.read_at,
            messages.c.marketplace_message_id,
        ).where(messages.c.account_id == account_id, messages.c.marketplace_message_id.in_(marketplace_ids))
    )
    return {
        row.marketplace_message_id: KnownMessage(row.id, row.direction, row.status, row.read_at)
        for row in rows
    }


async def change_status(
    connection: AsyncConnection, message_id: int, current: str, change: StatusChange, now: dt.datetime
) -> bool:
    """Apply a moderation verdict, if the message is still in the status it was decided from."""
    values: dict[str, Any] = {"status": change.status.value, "status_changed_at": now}
    if change.status == MessageStatus.MODERATED:
        values["moderation_reason"] = change.moderation_reason
    result = await connection.execute(
        update(messages).where(messages.c.id == message_id, messages.c.status == current).values(**values)
    )
    return result.rowcount == 1


async def record_read(connection: AsyncConnection, message_id: int, read_at: dt.datetime) -> None:
    """When the message's recipient read it (the first time Mercado Libre says so is kept)."""
    await connection.execute(
        update(messages)
        .where(messages.c.id == message_id, messages.c.read_at.is_(None))
        .values(read_at=read_at)
    )


async def set_origin(connection: AsyncConnection, message_id: int, *, source: Source, author: str) -> None:
    """Where a recorded message was written and by whom."""
    await connection.execute(
        update(messages).where(messages.c.id == message_id).values(source=source.value, author=author)
    )


async def in_flight_statuses(connection: AsyncConnection, conversation_id: int) -> set[str]:
    """The statuses of the conversation's postventa messages that may be on Mercado Libre unrecorded."""
    rows = await connection.execute(
        select(messages.c.status)
        .where(
            messages.c.conversation_id == conversation_id,
            messages.c.direction == "outbound",
            messages.c.status.in_([status.value for status in IN_FLIGHT_STATUSES]),
        )
        .distinct()
    )
    return {row.status for row in rows}


@dataclass(frozen=True)
class ObservedSellerMessage:
    """A seller message written on Mercado Libre outside postventa, to record as it is there."""

    account_id: int
    ref: ConversationRef
    marketplace_message_id: str
    text: str
    status: MessageStatus  # sent, pending_moderation or moderated
    moderation_reason: str | None
    sent_at: dt.datetime
    read_at: dt.datetime | None


async def append_observed_seller_message(
    connection: AsyncConnection, message: ObservedSellerMessage, now: dt.datetime
) -> int:
    """Append a seller message found on Mercado Libre to its conversation (under the conversation's
    write lock, like every append); returns its id."""
    count = await lock_conversation(connection, message.ref.conversation_id)
    bumped = await connection.execute(
        update(conversations)
        .where(conversations.c.id == message.ref.conversation_id, conversations.c.message_count == count)
        .values(message_count=count + 1)
    )
    if bumped.rowcount != 1:
        raise ConversationChanged
    result = await connection.execute(
        messages.insert()
        .values(
            account_id=message.account_id,
            conversation_id=message.ref.conversation_id,
            conversation_sequence=count + 1,
            order_id=message.ref.order_id,
            direction="outbound",
            reason=None,
            text=message.text,
            status=message.status.value,
            created_at=message.sent_at,
            status_changed_at=now,
            sent_at=message.sent_at,
            marketplace_message_id=message.marketplace_message_id,
            moderation_reason=message.moderation_reason,
            source=Source.MARKETPLACE.value,
            author="seller",
            read_at=message.read_at,
        )
        .returning(messages.c.id)
    )
    return int(result.scalar_one())


async def save_conversation_status(
    connection: AsyncConnection,
    conversation_id: int,
    *,
    status: str | None,
    substatus: str | None,
    at: dt.datetime,
    agent_user_id: int | None,
) -> None:
    """Mercado Libre's conversation status as last read, and its agent once one answers for the buyer
    (kept: a thread with an agent stays one)."""
    values: dict[str, Any] = {
        "marketplace_status": (status or "")[:16] or None,
        "marketplace_substatus": (substatus or "")[:64] or None,
        "marketplace_status_at": at,
    }
    if agent_user_id is not None:
        values["agent_user_id"] = agent_user_id
    await connection.execute(
        update(conversations).where(conversations.c.id == conversation_id).values(**values)
    )


async def save_agent(connection: AsyncConnection, conversation_id: int, agent_user_id: int) -> None:
    """The AI agent that answers for the buyer in this conversation."""
    await connection.execute(
        update(conversations).where(conversations.c.id == conversation_id).values(agent_user_id=agent_user_id)
    )


async def pending_moderation_messages(connection: AsyncConnection, *, limit: int) -> list[tuple[int, str]]:
    """(account, Mercado Libre id) of seller messages moderation has not decided, newest first: a
    verdict comes within minutes, and one that never comes (the message gone) must not hold the
    budget; the conversation poll reads the older ones' conversations within the window too."""
    rows = await connection.execute(
        select(messages.c.account_id, messages.c.marketplace_message_id)
        .where(
            messages.c.status == MessageStatus.PENDING_MODERATION.value,
            messages.c.marketplace_message_id.is_not(None),
        )
        .order_by(messages.c.status_changed_at.desc())
        .limit(limit)
    )
    return [(row.account_id, row.marketplace_message_id) for row in rows]


async def conversations_with_recent_seller_messages(
    connection: AsyncConnection, *, sent_since: dt.datetime, limit: int
) -> list[tuple[int, int]]:
    """(account, Mercado Libre conversation) with a seller message sent (or awaiting moderation) since
    `sent_since`, most recent first: where moderation may still reject one."""
    latest = func.max(messages.c.sent_at).label("latest")
    rows = await connection.execute(
        select(orders.c.account_id, orders.c.pack_id, orders.c.external_order_id, latest)
        .select_from(messages.join(orders, orders.c.id == messages.c.order_id))
        .where(
            messages.c.direction == "outbound",
            messages.c.status.in_((MessageStatus.SENT.value, MessageStatus.PENDING_MODERATION.value)),
            messages.c.sent_at >= sent_since,
        )
        .group_by(orders.c.account_id, orders.c.pack_id, orders.c.external_order_id)
        .order_by(latest.desc())
        .limit(limit)
    )
    found = ((row.account_id, marketplace_conversation(row.pack_id, row.external_order_id)) for row in rows)
    return [(account_id, resource) for account_id, resource in found if resource is not None]
