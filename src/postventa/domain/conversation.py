"""Conversation rules (contract §3.5, check 9): who may write next on a pack's conversation."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from postventa.domain.errors import Refusal, RefusalKind
from postventa.domain.reasons import Reason


class Direction(enum.Enum):
    """Who wrote a message."""

    OUTBOUND = "outbound"  # seller to buyer
    INBOUND = "inbound"  # buyer to seller


@dataclass(frozen=True)
class PastMessage:
    """What the rules need of a message already in the conversation, oldest first."""

    direction: Direction
    reason: Reason | None = None
    has_attachment: bool = False
    failed: bool = False  # an outbound message whose delivery finally failed: never reached the buyer


def conversation_refusal(
    history: Sequence[PastMessage], reason: Reason, *, has_attachment: bool
) -> Refusal | None:
    """Why the seller may not send this now, or None when the conversation allows it."""
    counted = [message for message in history if not message.failed]
    last_seller = _last_index(counted, Direction.OUTBOUND)
    if last_seller is not None and _last_index(counted, Direction.INBOUND, after=last_seller) is None:
        return Refusal(
            RefusalKind.CONFLICT,
            "awaiting_buyer_reply",
            "The buyer has not replied to the last seller message; wait for the reply before writing again.",
        )
    if has_attachment and not _has_answered_plain_message(counted):
        return Refusal(
            RefusalKind.CONFLICT,
            "attachment_requires_answered_message",
            "An attachment can be sent only after a first message without attachment "
            "has been answered by the buyer.",
        )
    locked = _reason_locked_by_attachment(counted)
    if locked is not None and locked is not reason:
        return Refusal(
            RefusalKind.CONFLICT,
            "reason_locked_by_attachment",
            f"After a message with an attachment, later messages must use its reason {locked.name}.",
        )
    return None


def _last_index(messages: Sequence[PastMessage], direction: Direction, *, after: int = -1) -> int | None:
    for index in range(len(messages) - 1, after, -1):
        if messages[index].direction is direction:
            return index
    return None


def _has_answered_plain_message(messages: Sequence[PastMessage]) -> bool:
    waiting_for_reply = False
    for message in messages:
        if message.direction is Direction.OUTBOUND and not message.has_attachment:
            waiting_for_reply = True
        elif message.direction is Direction.INBOUND and waiting_for_reply:
            return True
    return False


def _reason_locked_by_attachment(messages: Sequence[PastMessage]) -> Reason | None:
    for message in reversed(messages):
        if message.direction is Direction.OUTBOUND and message.has_attachment:
            return message.reason
    return None


@dataclass(frozen=True)
class ConversationStatus:
    """Mercado Libre's view of a conversation (`conversation_status`, research §2.5): `active`,
    `blocked` with its substatus, or `unknown` until Mercado Libre was asked; `checked_at` is when."""

    status: str
    substatus: str | None = None
    checked_at: dt.datetime | None = None


UNKNOWN_STATUS = ConversationStatus("unknown")


def conversation_status(
    last_read: ConversationStatus | None, *, payment_pending: bool, now: dt.datetime
) -> ConversationStatus:
    """What a reader is shown: an unpaid order's conversation is blocked_by_payment whatever was read
    before (Mercado Libre blocks it until payment, research §2.5); otherwise the last status read."""
    if payment_pending:
        return ConversationStatus("blocked", "blocked_by_payment", now)
    return last_read or UNKNOWN_STATUS
