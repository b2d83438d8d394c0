"""What the operator console reads (issue 19): a user's inbox, and a conversation of an order of
one of their accounts, which opening marks read in postventa (never on Mercado Libre). The reads
themselves are the API's (services/reading.py): the console shows the same conversation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.errors import not_found
from postventa.services import reading
from postventa.store import console_inbox, console_users
from postventa.store.accounts import Account, list_accounts
from postventa.store.console_inbox import InboxFilter, InboxRow
from postventa.store.messages import AttachmentInfo


@dataclass(frozen=True)
class InboxPage:
    """One page of a user's inbox, and how many of their conversations wait for an answer."""

    total: int
    limit: int
    offset: int
    rows: list[InboxRow]
    waiting: int
    accounts: list[Account]  # the user's accounts, for the filter and the rows' names


async def inbox(
    connection: AsyncConnection, account_ids: frozenset[int], where: InboxFilter, *, limit: int, offset: int
) -> InboxPage:
    """The conversations of the user's accounts, latest activity first."""
    total, rows = await console_inbox.inbox_page(connection, account_ids, where, limit=limit, offset=offset)
    waiting = await console_inbox.count_waiting(connection, account_ids)
    accounts = await list_accounts(connection, account_ids)
    return InboxPage(total=total, limit=limit, offset=offset, rows=rows, waiting=waiting, accounts=accounts)


async def _account_of(connection: AsyncConnection, account_ids: frozenset[int], order_id: int) -> int:
    account_id = await console_inbox.account_of_order(connection, order_id)
    if account_id is None or account_id not in account_ids:  # another account's order: as if none
        raise not_found("order_not_found", f"Order {order_id} was not found.")
    return account_id


async def open_conversation(
    connection: AsyncConnection, account_ids: frozenset[int], order_id: int, now: dt.datetime
) -> reading.Conversation:
    """The order's conversation, now marked read by the console; 404 unless the order is of one of
    the user's accounts. Runs in a write transaction."""
    account_id = await _account_of(connection, account_ids, order_id)
    found = await reading.conversation(connection, account_id, order_id, now)
    await console_users.mark_read(connection, found.order.conversation_id, now)
    return found


async def attachment(
    connection: AsyncConnection, account_ids: frozenset[int], order_id: int, message_id: int
) -> tuple[AttachmentInfo, bytes]:
    """A message's attachment, when the order is of one of the user's accounts."""
    account_id = await _account_of(connection, account_ids, order_id)
    return await reading.attachment(connection, account_id, order_id, message_id)
