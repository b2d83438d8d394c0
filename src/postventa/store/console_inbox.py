"""The console's inbox: one row per conversation of the given accounts, latest activity first, with
what its badges need (issue 19, item 3). Pack-mates share one conversation, so they are one row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import ColumnElement, Join, ScalarSelect, Select, and_, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.store.tables import console_conversation_reads, conversations, messages, orders

T = TypeVar("T")


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


# A conversation's last message: its sequence is the conversation's count (one unique-index lookup).
_last = messages.alias("last_message")
_read_up_to = func.coalesce(console_conversation_reads.c.read_sequence, 0)


def _visible(account_ids: frozenset[int], where: InboxFilter) -> list[int]:
    return sorted(account_ids if where.account_id is None else account_ids & {where.account_id})


def _with_matching_order(visible: list[int], where: InboxFilter) -> Select[tuple[int]] | None:
    """The conversations with an order of the site or the search, found from the orders (by the
    external id's or the order id's index, or the accounts' orders for a nickname or a site)."""
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
    return select(orders.c.conversation_id).where(orders.c.account_id.in_(visible), *conditions)


def _with_failed(visible: list[int]) -> Select[tuple[int]]:
    """The conversations with a failed message, found from the failed messages (the status index)."""
    return select(messages.c.conversation_id).where(
        messages.c.status == "failed", messages.c.account_id.in_(visible)
    )


def _last_message_joined() -> Join:
    return conversations.outerjoin(
        _last,
        and_(
            _last.c.conversation_id == conversations.c.id,
            _last.c.conversation_sequence == conversations.c.message_count,
        ),
    )


def _of_last_message(column: ColumnElement[T]) -> ScalarSelect[T]:
    """A column of the conversation's last message, looked up for each conversation.

    A correlated subquery, not a join: PostgreSQL joined every message of the database (a hash join
    over a sequential scan, 0.2 s with 650,000 messages) to find those of one account's 10,000
    conversations, where a lookup per conversation costs the same at any size of the database."""
    return (
        select(column)
        .where(
            messages.c.conversation_id == conversations.c.id,
            messages.c.conversation_sequence == conversations.c.message_count,
        )
        .scalar_subquery()
    )


def _waiting() -> ColumnElement[bool]:
    return _of_last_message(messages.c.direction) == "inbound"


def _activity() -> ColumnElement[dt.datetime]:
    """When the conversation last changed: its last message, or without one its newest order.
    (COALESCE looks the newest order up only for a conversation without messages.)"""
    newest_order = (
        select(func.max(orders.c.date_created))
        .where(orders.c.conversation_id == conversations.c.id)
        .scalar_subquery()
    )
    return func.coalesce(_of_last_message(messages.c.created_at), newest_order)


def _conditions(visible: list[int], where: InboxFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [conversations.c.account_id.in_(visible)]
    matching = _with_matching_order(visible, where)
    if matching is not None:
        conditions.append(conversations.c.id.in_(matching))
    if where.failed:
        conditions.append(conversations.c.id.in_(_with_failed(visible)))
    if where.waiting:
        conditions.append(_waiting())
    return conditions


_JIT_OFF = text("SET LOCAL jit = off")


async def _without_jit(connection: AsyncConnection) -> None:
    """PostgreSQL: no just-in-time compilation for the rest of the transaction. The inbox's
    statements visit every conversation of the accounts, a cost that passes JIT's threshold from
    about 10,000 conversations on, and compiling took longer (20 ms) than running them."""
    if connection.dialect.name == "postgresql":
        await connection.execute(_JIT_OFF)


async def inbox_page(
    connection: AsyncConnection, account_ids: frozenset[int], where: InboxFilter, *, limit: int, offset: int
) -> tuple[int, list[InboxRow]]:
    """The total of matching conversations and one page of them, latest activity first (a
    conversation with no message yet by its newest order's date).

    Two steps: the page's conversations are chosen by what orders them alone (a lookup of each
    one's last message), and only those few then get their badges, last text and orders, rather
    than every conversation of the accounts before the sort kept a page of them. The figures, at
    10,000 conversations, are in docs/performance.md (bench/console.py)."""
    await _without_jit(connection)
    conditions = _conditions(_visible(account_ids, where), where)
    # Unfiltered, the total is a count of the accounts' conversations in their index; filtered, it
    # is counted in the pass that orders the page (a window), not in a second pass over them all.
    filtered = len(conditions) > 1
    columns: list[ColumnElement[int]] = [conversations.c.id]
    if filtered:
        columns.append(func.count().over().label("total"))
    chosen = (
        select(*columns)
        .where(*conditions)
        .order_by(_activity().desc(), conversations.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    page = (await connection.execute(chosen)).all()
    if filtered and page:
        total = int(page[0].total)
    else:  # unfiltered, or a page past the last
        total = (await connection.execute(select(func.count()).where(*conditions))).scalar_one()
    return total, await _rows(connection, [row.id for row in page])


async def _rows(connection: AsyncConnection, conversation_ids: list[int]) -> list[InboxRow]:
    """The inbox rows of these conversations, in this order."""
    if not conversation_ids:
        return []
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
        .select_from(
            _last_message_joined().outerjoin(
                console_conversation_reads,
                console_conversation_reads.c.conversation_id == conversations.c.id,
            )
        )
        .where(conversations.c.id.in_(conversation_ids))
    )
    found = {row.id: row for row in await connection.execute(query)}
    by_conversation = await _orders_of(connection, conversation_ids)
    return [
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
        for row in (found[conversation_id] for conversation_id in conversation_ids)
    ]


def _has_failed() -> ColumnElement[bool]:
    # The sequence bound walks the conversation's own messages (its unique index): with `status`
    # alone beside the conversation, SQLite (no statistics) read every failed message of the
    # database through the status index for each row.
    return exists().where(
        messages.c.conversation_id == conversations.c.id,
        messages.c.conversation_sequence > 0,
        messages.c.status == "failed",
    )


def _has_unread() -> ColumnElement[bool]:
    return exists().where(
        messages.c.conversation_id == conversations.c.id,
        messages.c.direction == "inbound",
        messages.c.conversation_sequence > _read_up_to,
    )


async def _orders_of(connection: AsyncConnection, conversation_ids: list[int]) -> dict[int, list[InboxOrder]]:
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
    await _without_jit(connection)
    query = select(func.count()).where(conversations.c.account_id.in_(sorted(account_ids)), _waiting())
    return int((await connection.execute(query)).scalar_one())


async def account_of_order(connection: AsyncConnection, order_id: int) -> int | None:
    """The account an order belongs to, or None when there is no such order."""
    found = await connection.execute(select(orders.c.account_id).where(orders.c.id == order_id))
    return found.scalar_one_or_none()
