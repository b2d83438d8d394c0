"""What integrators read: orders, conversations, messages, attachments and the send options."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.conversation import UNKNOWN_STATUS, ConversationStatus, conversation_status
from postventa.domain.errors import Refusal, not_found
from postventa.domain.guide import GuideCaps
from postventa.domain.reasons import Reason, TextMode
from postventa.domain.sending import send_refusal, text_to_send
from postventa.services.messaging import find_order
from postventa.store import messages as message_store
from postventa.store.accounts import Account, get_account
from postventa.store.orders import Order, OrderFilter, last_conversation_status, list_orders


@dataclass(frozen=True)
class Conversation:
    """An order's conversation (shared by the orders of its pack), oldest message first, with
    Mercado Libre's status of it."""

    order: Order
    messages: list[message_store.StoredMessage]
    status: ConversationStatus = UNKNOWN_STATUS


@dataclass(frozen=True)
class ReasonOption:
    """Whether a reason can be sent now; if not, the refusal a send would get."""

    reason: Reason
    refusal: Refusal | None
    preview: str | None  # the text a template reason would send, when it can be sent


@dataclass(frozen=True)
class SendOptions:
    """Each reason's option, and Mercado Libre's status of the conversation."""

    options: list[ReasonOption]
    status: ConversationStatus


@dataclass(frozen=True)
class OrderPage:
    """One page of orders, and the account they belong to (each order shows it)."""

    total: int
    limit: int
    offset: int
    orders: list[Order]
    seller: Account


async def orders_page(
    connection: AsyncConnection, account_id: int, where: OrderFilter, *, limit: int, offset: int
) -> OrderPage:
    """A page of the account's orders."""
    total, orders = await list_orders(connection, account_id, where, limit=limit, offset=offset)
    seller = await _seller(connection, account_id)
    return OrderPage(total=total, limit=limit, offset=offset, orders=orders, seller=seller)


async def order_of_account(
    connection: AsyncConnection, account_id: int, order_id: int
) -> tuple[Order, Account]:
    """One order of the account, and the account (the order shows it as its `SellerAccount`)."""
    order = await find_order(connection, account_id, order_id)
    return order, await _seller(connection, account_id)


async def _seller(connection: AsyncConnection, account_id: int) -> Account:
    seller = await get_account(connection, account_id)
    if seller is None:  # the key's grant named it a moment ago; deleted since
        raise not_found("account_not_found", f"No account {account_id}.")
    return seller


async def conversation(
    connection: AsyncConnection, account_id: int, order_id: int, now: dt.datetime
) -> Conversation:
    """The conversation of an order of this account."""
    order = await find_order(connection, account_id, order_id)
    messages = await message_store.list_conversation(connection, order.conversation_id)
    return Conversation(order, messages, await marketplace_status(connection, order, now))


async def marketplace_status(
    connection: AsyncConnection, order: Order, now: dt.datetime
) -> ConversationStatus:
    """Mercado Libre's status of the order's conversation, as a reader is shown it."""
    last_read = await last_conversation_status(connection, order.conversation_id)
    return conversation_status(last_read, payment_pending=order.facts.payment_pending, now=now)


async def message(
    connection: AsyncConnection, account_id: int, order_id: int, message_id: int
) -> message_store.StoredMessage:
    """One message of the order's conversation."""
    order = await find_order(connection, account_id, order_id)
    found = await message_store.get_message(connection, order.conversation_id, message_id)
    if found is None:
        raise not_found("message_not_found", f"Message {message_id} was not found in order {order_id}.")
    return found


async def attachment(
    connection: AsyncConnection, account_id: int, order_id: int, message_id: int
) -> tuple[message_store.AttachmentInfo, bytes]:
    """A message's attachment and its bytes."""
    found = await message(connection, account_id, order_id, message_id)
    if found.attachment is None:
        raise not_found("attachment_not_found", f"Message {message_id} has no attachment.")
    return found.attachment, await message_store.attachment_content(connection, found.attachment.id)


async def send_options(
    connection: AsyncConnection,
    account_id: int,
    order_id: int,
    now: dt.datetime,
    caps: GuideCaps | None = None,
) -> SendOptions:
    """For each reason, what a send with a valid text and no attachment would get right now (with
    Mercado Libre's `caps` for the pack, when it could be asked: the send decides with the same)."""
    order = await find_order(connection, account_id, order_id)
    history = await message_store.conversation_history(connection, order.conversation_id)
    options = []
    for reason in Reason:
        refusal = send_refusal(order.facts, history, reason, has_attachment=False, now=now, caps=caps)
        preview = None
        if refusal is None and reason.rule.text_mode is TextMode.TEMPLATE:
            preview = text_to_send(order.facts, reason, None, now)
        options.append(ReasonOption(reason, refusal, preview))
    return SendOptions(options, await marketplace_status(connection, order, now))
