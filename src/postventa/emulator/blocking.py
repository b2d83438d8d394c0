"""Conversation blocks (research §2.5): the documented substatuses, the blocks that follow from the
orders, the shipment and the message times, and the block a test forces through the control API.

A block closes both the action guide and `/messages` to the seller. Most answer 403 "The
conversation is blocked" (guide) or `blocked_conversation_send_message_forbidden` (send), with the
substatus as `cause`; a deactivated buyer account answers 451 Unavailable on both (research §1.7).
"""

from __future__ import annotations

import datetime as dt

from postventa.emulator.guide import (
    CONVERSATION_BLOCKED,
    FULFILLMENT_NOT_DELIVERED,
    SEND_FORBIDDEN,
    USE_MESSAGES,
    Block,
)
from postventa.emulator.models import PAYMENT_PENDING_STATUSES, Conversation, Order, Shipment
from postventa.emulator.sites import utc_now
from postventa.emulator.state import EmulatorState

# Every substatus of `conversation_status` the blocked-messages page lists (research §2.5).
BLOCK_SUBSTATUSES = frozenset(
    {
        "blocked_by_time",
        "blocked_by_buyer",
        "blocked_by_mediation",
        "blocked_by_fulfillment",
        "blocked_by_payment",
        "blocked_by_conversation_initiated_by_seller",
        "blocked_by_conversation_use_message_api",
        "blocked_by_conversation_initiated_by_seller_limited",
        "blocked_by_cancelled_order",
        "blocked_by_cancelled_order_by_fraud",
        "blocked_by_cancelled_order_hidden",
        "blocked_by_mediation_fbm",
        "blocked_by_conversation_expired",
        "blocked_by_refund",
        "blocked_by_claim_change_closed",
        "blocked_by_claim_change_open",
        "blocked_by_deactivated_account",
        "blocked_by_restrictions",
        "blocked_by_message_pending_review",
        "blocked_by_return_to_buyer_fulfillment",
        "blocked_by_ai_assistant",
        "blocked_by_ai_assistant_expired",
        "blocked_by_ai_assistant_contact_closed",
        "block_by_ai_assistant_initiated_by_seller_expired",
    }
)
# "siempre que no hayan pasado 30 días desde el último mensaje" (research §2.5, blocked_by_time).
BLOCKED_AFTER_QUIET_DAYS = 30
DEACTIVATED_ACCOUNT = "blocked_by_deactivated_account"
UNAVAILABLE = "Unavailable"


def block_for(substatus: str) -> Block:
    """What the guide and the send answer for a block with this substatus."""
    if substatus == DEACTIVATED_ACCOUNT:
        return Block(substatus, UNAVAILABLE, UNAVAILABLE, status=451)
    if substatus == "blocked_by_fulfillment":
        return Block(substatus, FULFILLMENT_NOT_DELIVERED, FULFILLMENT_NOT_DELIVERED)
    if substatus == "blocked_by_conversation_use_message_api":
        return Block(substatus, USE_MESSAGES, SEND_FORBIDDEN)
    return Block(substatus, CONVERSATION_BLOCKED, SEND_FORBIDDEN)


def conversation_block(
    conversation: Conversation, orders: list[Order], shipment: Shipment, now: dt.datetime
) -> Block | None:
    """The block in force, or None.

    In order: a block forced through the control API; every order cancelled; Full not delivered;
    a payment pending (lifts when the order changes); 30 days since the last message.
    """
    if conversation.forced_block is not None:
        return block_for(conversation.forced_block)
    if orders and all(order.status == "cancelled" for order in orders):
        return block_for("blocked_by_cancelled_order")
    if shipment.logistic_type == "fulfillment" and shipment.status != "delivered":
        return block_for("blocked_by_fulfillment")
    if any(order.status in PAYMENT_PENDING_STATUSES for order in orders):
        return block_for("blocked_by_payment")
    if is_quiet_too_long(conversation, now):
        return block_for("blocked_by_time")
    return None


def is_quiet_too_long(conversation: Conversation, now: dt.datetime) -> bool:
    """Whether the last message is more than 30 days old (a conversation without messages is not)."""
    if not conversation.messages:
        return False
    last = max(message.created for message in conversation.messages)
    return now - last > dt.timedelta(days=BLOCKED_AFTER_QUIET_DAYS)


def age_conversation(conversation: Conversation, days: float) -> None:
    """Move every date of the conversation's messages `days` into the past (control API)."""
    shift = dt.timedelta(days=days)
    for message in conversation.messages:
        message.created -= shift
        message.notified = message.notified - shift if message.notified else None
        message.read = message.read - shift if message.read else None
        message.judged_at = message.judged_at - shift if message.judged_at else None


def block_of(state: EmulatorState, conversation: Conversation) -> Block | None:
    """The block in force on a conversation now."""
    return conversation_block(
        conversation, state.orders_of(conversation), state.shipment_of(conversation), utc_now()
    )
