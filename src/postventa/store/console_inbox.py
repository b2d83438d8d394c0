"""The console's inbox: one row per conversation of the given accounts, latest activity first, with
what its badges need (issue 19, item 3). Pack-mates share one conversation, so they are one row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Join, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.store.tables import console_conversation_reads, conversations, messages, orders


@dataclass(frozen=True)
class InboxOrder:
    """An order of an inbox row."""

    id: int
    external_order_id: str
    site_id: str | None
    buyer_nickname: str | None


@dataclass(frozen=True)
class InboxRow:
    """A conversation as the inbox lists it."""

    conversation_id: int
    account_id: int
    orders: list[InboxOrder]
    last_text: str | None
    last_direction: str | None  # inbound: the buyer wrote last (waiting for an answer)
    last_at: dt.datetime | None
    unread: bool  # a buyer message the console has not opened yet
    failed: bool  # a message of the conversation failed to be delivered


@dataclass(frozen=True)
class InboxFilter:
    """The inbox's filters; None (or False) means no filter."""

    account_id: int | None = None
    site_id: str | None = None
    waiting: bool = False
    failed: bool = False
    search: str | None = None  # an order id, an external order id or a buyer's nickname


_last = messages.alias("last_message")
_read_up_to = func.coalesce(console_conversation_reads.c.read_sequence, 0)


def _order_matches(where: InboxFilter) -> ColumnElement[bool] | None:
    conditions: list[ColumnElement[bool]] = []
    if where.site_id:
        conditions.append(orders.c.site_id == where.site_id)
    if where.search:
        text = where.search.strip()
        matches = [orders.c.external_order_id == text, func.lower(orders.c.buyer_nickname) == text.lower()]
        if text.isdigit() and len(text) < 19:
            matches.append(orders.c.id == int(text))
        conditions.append(or_(*matches))
    if not conditions:
        return None
    return exists().where(orders.c.conversation_id == conversations.c.id, *conditions)


def _conditions(account_ids: frozenset[int], where: InboxFilter) -> list[ColumnElement[bool]]:
    visible = sorted(account_ids if where.account_id is None else account_ids & {where.account_id})
    conditions: list[ColumnElement[bool]] = [conversations.c.account_id.in_(visible)]
    ordered = _order_matches(where)
    if ordered is not None:
        conditions.append(ordered)
    if where.waiting:
        conditions.append(_last.c.direction == "inbound")
    if where.failed:
        conditions.append(_has_failed())
    return conditions


def _has_failed() -> ColumnElement[bool]:
    return exists().where(messages.c.conversation_id == conversations.c.id, messages.c.status == "failed")


def _has_unread() -> ColumnElement[bool]:
    return exists().where(
        messages.c.conversation_id == conversations.c.id,
        messages.c.direction == "inbound",
        messages.c.conversation_sequence > _read_up_to,
    )


def _joined() -> Join:
    return conversations.outerjoin(
        _last,
        and_(
            _last.c.conversation_id == conversations.c.id,
            _last.c.conversation_sequence == conversations.c.message_count,
        ),
    ).outerjoin(
        console_conversation_reads, console_conversation_reads.c.conversation_id == conversations.c.id
    )


async def inbox_page(
    connection: AsyncConnection, account_ids: frozenset[int], where: InboxFilter, *, limit: int, offset: int
) -> tuple[int, list[InboxRow]]:
    """The total of matching conversations and one page of them, latest activity first (a
    conversation with no message yet by its newest order's date)."""
    joined = _joined()
    conditions = _conditions(account_ids, where)
    total = (
        await connection.execute(select(func.count()).select_from(joined).where(*conditions))
    ).scalar_one()
    newest_order = (
        select(func.max(orders.c.date_created))
        .where(orders.c.conversation_id == conversations.c.id)
        .scalar_subquery()
    )
    activity = func.coalesce(_last.c.created_at, newest_order)
    query = (
        select(
            conversations.c.id,
            conversations.c.account_id,
            _last.c.text,
            _last.c.direction,
            _last.c.created_at,
            _has_unread().label("unread"),
            _has_failed().label("failed"),
        )
        .select_from(joined)
        .where(*conditions)
        .order_by(activity.desc(), conversations.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = (await connection.execute(query)).all()
    by_conversation = await _orders_of(connection, [row.id for row in rows])
    return total, [
        InboxRow(
            conversation_id=row.id,
            account_id=row.account_id,
            orders=by_conversation.get(row.id, []),
            last_text=row.text,
            last_direction=row.direction,
            last_at=row.created_at,
            unread=bool(row.unread),
            failed=bool(row.failed),
        )
        for row in rows
    ]


async def _orders_of(connection: AsyncConnection, conversation_ids: list[int]) -> dict[int, list[InboxOrder]]:
    if not conversation_ids:
        return {}
    rows = await connection.execute(
        select(
            orders.c.conversation_id,
            orders.c.id,
            orders.c.external_order_id,
            orders.c.site_id,
            orders.c.buyer_nickname,
        )
        .where(orders.c.conversation_id.in_(conversation_ids))
        .order_by(orders.c.id)
    )
    found: dict[int, list[InboxOrder]] = {}
    for row in rows:
        found.setdefault(row.conversation_id, []).append(
            InboxOrder(row.id, row.external_order_id, row.site_id, row.buyer_nickname)
        )
    return found


async def count_waiting(connection: AsyncConnection, account_ids: frozenset[int]) -> int:
    """How many conversations of the accounts wait for an answer (the buyer wrote last)."""
    query = (
        select(func.count())
        .select_from(_joined())
        .where(*_conditions(account_ids, InboxFilter(waiting=True)))
    )
    return int((await connection.execute(query)).scalar_one())


async def account_of_order(connection: AsyncConnection, order_id: int) -> int | None:
    """The account an order belongs to, or None when there is no such order."""
    found = await connection.execute(select(orders.c.account_id).where(orders.c.id == order_id))
    return found.scalar_one_or_none()
