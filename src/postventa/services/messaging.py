"""Send a message to the buyer (checks 6–10) and record a buyer's reply."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.conversation import Direction
from postventa.domain.delivery import MessageStatus
from postventa.domain.errors import PostventaError, RefusalKind, invalid, not_found
from postventa.domain.guide import GuideCaps, opens_conversation
from postventa.domain.parameters import Parameters
from postventa.domain.send_request import read_send_request
from postventa.domain.sending import send_refusal, text_to_send
from postventa.domain.text import refuse_unprintable
from postventa.domain.webhooks import EventType
from postventa.store import messages as message_store
from postventa.store import webhook_events
from postventa.store.orders import Order, OrderToMessage, get_order, get_order_any_account

BUYER_MAX_TEXT_CHARACTERS = 3500
# Mercado Libre's caps for the order's action guide, as known without waiting (services/guide.py):
# None when the local rules decide alone; raises when the send must ask Mercado Libre first.
CapsLookup = Callable[[int, OrderToMessage], GuideCaps | None]


@dataclass(frozen=True)
class AcceptedMessage:
    """A message stored and queued for delivery."""

    message_id: int
    order_id: int
    message_ignored: bool


async def find_order(connection: AsyncConnection, account_id: int, order_id: int) -> Order:
    """Check 6: the order exists in this account (one in another account is not found either)."""
    order = await get_order(connection, account_id, order_id)
    if order is None:
        raise _order_not_found(account_id, order_id)
    return order


def _order_not_found(account_id: int, order_id: int) -> PostventaError:
    return not_found("order_not_found", f"Order {order_id} was not found in account {account_id}.")


async def send_message(
    connection: AsyncConnection,
    *,
    account_id: int,
    order_id: int,
    parameters: Parameters,
    max_attachment_bytes: int,
    now: dt.datetime,
    caps: CapsLookup | None = None,
) -> AcceptedMessage:
    """Checks 6 to 10 in order; on success the message is stored with status `queued`.

    Runs in a write transaction: the conversation is locked before its history is read, so of
    simultaneous sends on one conversation exactly one is accepted. The order and the history are
    read together (check 6 is still refused before check 7: nothing is refused on reading them).
    """
    found = await message_store.order_with_history(connection, account_id, order_id)
    if found is None:
        raise _order_not_found(account_id, order_id)
    order, message_count, history = found
    facts = order.facts
    request = read_send_request(parameters, max_attachment_bytes=max_attachment_bytes)
    has_attachment = request.attachment is not None
    guide_caps = (
        caps(account_id, order)
        if caps is not None
        and order.marketplace_conversation is not None
        and opens_conversation(history, has_attachment=has_attachment)
        else None
    )
    refusal = send_refusal(
        facts, history, request.reason, has_attachment=has_attachment, now=now, caps=guide_caps
    )
    if refusal is not None:
        raise PostventaError(refusal)
    attachment_id = (
        await message_store.insert_attachment(connection, account_id, request.attachment, now)
        if request.attachment is not None
        else None
    )
    new_message = message_store.NewMessage(
        account_id=account_id,
        conversation_id=order.conversation_id,
        order_id=order.id,
        direction=Direction.OUTBOUND,
        reason=request.reason,
        text=text_to_send(facts, request.reason, request.free_text, now),
        status=MessageStatus.QUEUED,
        message_ignored=request.message_ignored,
        attachment_id=attachment_id,
    )
    message_id = await _append(connection, new_message, message_count, now)
    return AcceptedMessage(message_id=message_id, order_id=order.id, message_ignored=request.message_ignored)


async def record_buyer_reply(
    connection: AsyncConnection,
    *,
    order_id: int,
    text: str,
    now: dt.datetime,
    marketplace_message_id: str | None = None,
) -> int:
    """Record a message from the buyer (as the marketplace integration does); it unlocks the seller."""
    order = await get_order_any_account(connection, order_id)
    if order is None:
        raise not_found("order_not_found", f"Order {order_id} was not found.")
    text = text.strip()
    if not text:
        raise invalid("text_missing", "'Text' is required and must not be blank.")
    refuse_unprintable(text, parameter="Text", allowed=frozenset("\n\t\r"))
    if len(text) > BUYER_MAX_TEXT_CHARACTERS:
        raise invalid("text_too_long", f"'Text' has more than {BUYER_MAX_TEXT_CHARACTERS} characters.")
    message_count = await message_store.lock_conversation(connection, order.conversation_id)
    new_message = message_store.NewMessage(
        account_id=order.account_id,
        conversation_id=order.conversation_id,
        order_id=order.id,
        direction=Direction.INBOUND,
        reason=None,
        text=text,
        status=MessageStatus.RECEIVED,
        marketplace_message_id=marketplace_message_id,
    )
    message_id = await _append(connection, new_message, message_count, now)
    received = {"status": MessageStatus.RECEIVED.value, "status_changed_at": now}
    await webhook_events.emit_message_event(connection, EventType.MESSAGE_RECEIVED, message_id, received, now)
    return message_id


async def _append(
    connection: AsyncConnection, message: message_store.NewMessage, message_count: int, now: dt.datetime
) -> int:
    try:
        return await message_store.append_message(connection, message, message_count, now)
    except (message_store.ConversationChanged, IntegrityError) as error:
        raise PostventaError.of(
            RefusalKind.CONFLICT,
            "conversation_busy",
            "Another message on this conversation is being written; try again.",
        ) from error
