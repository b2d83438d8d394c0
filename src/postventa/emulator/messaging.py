"""Messages of a conversation: storing seller, buyer and AI-agent messages, reading a page of them,
and the checks of `POST /messages/packs/{pack}/sellers/{seller}` (research §2.2, §2.6, §2.8).

A seller message is judged by moderation at once, or `PendingModerationSeconds` later (research
§2.10: a `pending` message can be rejected minutes later); the seller learns the verdict by reading.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from postventa.emulator import ids
from postventa.emulator.errors import MeliError, send_error
from postventa.emulator.guide import AI_ASSISTANT, SEND_FORBIDDEN, Block
from postventa.emulator.models import Attachment, Conversation, Message, Seller
from postventa.emulator.moderation import moderation_reason
from postventa.emulator.sites import utc_now
from postventa.emulator.state import EmulatorState

SELLER_MAX_MESSAGE_LENGTH = 350
BUYER_MAX_MESSAGE_LENGTH = 3500
MAX_ATTACHMENTS_PER_MESSAGE = 25
# Besides ISO-8859-1, the documented emoji list: these ranges hold it.
_EMOJI_RANGES = (
    (0x1F000, 0x1FAFF),
    (0x2190, 0x21FF),
    (0x2300, 0x23FF),
    (0x25A0, 0x27BF),
    (0x2900, 0x297F),
    (0x2B00, 0x2BFF),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
    (0x200D, 0x200D),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x20E3, 0x20E3),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x24C2, 0x24C2),
    (0xFE0F, 0xFE0F),
    (0xE0020, 0xE007F),
)


@dataclass(frozen=True)
class SendRequest:
    """A checked `/messages` POST body."""

    text: str
    attachment_ids: list[str]


def add_seller_message(
    state: EmulatorState,
    conversation: Conversation,
    seller: Seller,
    text: str,
    *,
    option_id: str | None = None,
    attachments: list[Attachment] | None = None,
    via_api: bool = True,
) -> Message:
    """Store a seller message, moderated as Mercado Libre moderates seller texts.

    A message while the conversation is not open to `/messages` (an action-guide option, or one
    written in Mercado Libre's seller center: `via_api=False`, no `client_id`) is the first contact
    and uses up the guide until the buyer writes, moderated or not. In an agent thread it goes to the
    agent and uses up the seller's one answer (research §2.8).
    """
    now = utc_now()
    pending = state.config.pending_moderation_seconds
    message = Message(
        id=ids.message_id(),
        conversation_key=conversation.key,
        seller_id=conversation.seller_id,
        site_id=conversation.site_id,
        client_id=seller.client_id if via_api else None,
        from_user=seller.id,
        to_user=receiver_of(conversation),
        text=text,
        moderation_reason=moderation_reason(text),
        created=now,
        first=not conversation.messages,
        option_id=option_id,
        attachments=list(attachments or []),
        judged_at=now + dt.timedelta(seconds=pending or 0),
    )
    _append(state, conversation, message)
    if conversation.agent_id is not None:
        conversation.agent_turn = False
    elif option_id is not None or not is_open(conversation):
        conversation.guide_used = True
    return message


def add_agent_message(state: EmulatorState, conversation: Conversation, agent_id: int, text: str) -> Message:
    """Store a message of the site's AI agent to the seller: the seller may answer it once."""
    message = Message(
        id=ids.message_id(),
        conversation_key=conversation.key,
        seller_id=conversation.seller_id,
        site_id=conversation.site_id,
        client_id=None,
        from_user=agent_id,
        to_user=conversation.seller_id,
        text=text,
        moderation_reason=None,
        created=utc_now(),
        first=not conversation.messages,
        notified=utc_now(),
    )
    _append(state, conversation, message)
    conversation.agent_turn = True
    return message


def receiver_of(conversation: Conversation) -> int:
    """Whom the seller writes to: the AI agent in an agent thread, else the buyer."""
    return conversation.agent_id if conversation.agent_id is not None else conversation.buyer.id


def is_open(conversation: Conversation) -> bool:
    """Whether `/messages` is open without the guide: the buyer has written, or an excepted case."""
    return conversation.buyer_has_written or conversation.excepted


def add_buyer_message(state: EmulatorState, conversation: Conversation, text: str) -> Message:
    """Store a buyer message: the conversation is now open to `/messages`."""
    now = utc_now()
    message = Message(
        id=ids.message_id(),
        conversation_key=conversation.key,
        seller_id=conversation.seller_id,
        site_id=conversation.site_id,
        client_id=None,
        from_user=conversation.buyer.id,
        to_user=conversation.seller_id,
        text=text,
        moderation_reason=None,
        created=now,
        first=not conversation.messages,
        notified=now,
    )
    _append(state, conversation, message)
    conversation.buyer_has_written = True
    conversation.guide_used = False
    return message


def conversation_page(
    conversation: Conversation, limit: int, offset: int, *, mark_as_read: bool
) -> list[Message]:
    """Newest first, `offset` then at most `limit`; reading marks the seller's unread messages read."""
    if mark_as_read:
        now = utc_now()
        for message in conversation.messages:
            if message.to_user == conversation.seller_id and message.read is None:
                message.read = now
    newest_first = list(reversed(conversation.messages))
    return newest_first[offset : offset + limit]


def parse_send_body(body: object, seller: Seller, conversation: Conversation) -> SendRequest:
    """The checks of the send's body, with the documented 400/403 messages."""
    if not isinstance(body, dict):
        raise send_error(400, "bad_request", "A JSON body is required")
    sender = _user_id(body.get("from"))
    if body.get("from") is None:
        raise send_error(400, "bad_request", "The field 'from' is required")
    if sender != seller.id:
        raise send_error(403, "forbidden", f"Access denied for user {sender} to order {conversation.key}")
    to = body.get("to")
    if not isinstance(to, dict) or to.get("user_id") in (None, ""):
        raise send_error(400, "bad_request", "The field 'to.user_id' is required")
    receiver = _user_id(to)
    if receiver is None:
        raise send_error(400, "bad_request", "Invalid 'to' user id")
    if receiver == sender:
        raise send_error(400, "bad_request", "Sender and received must not be equals")
    if receiver != receiver_of(conversation):
        raise send_error(403, "forbidden", f"Receiver does not belong to order {conversation.key}")
    return SendRequest(_send_text(body.get("text")), _attachment_ids(body.get("attachments")))


def check_send_allowed(conversation: Conversation, block: Block | None) -> None:
    """Refuse the send while a block holds (its status, the substatus as `cause`); in an agent
    thread unless the agent wrote since the seller's last answer; otherwise until the buyer has
    written (the seller opens with the guide), except in an excepted case (research §1.1)."""
    if block is not None:
        code = "forbidden" if block.status == 403 else "unavailable"
        raise _with_cause(send_error(block.status, code, block.send_message), block.substatus)
    if conversation.agent_id is not None:
        if not conversation.agent_turn:
            raise _with_cause(send_error(403, "forbidden", SEND_FORBIDDEN), AI_ASSISTANT)
        return
    if not is_open(conversation):
        raise send_error(403, "forbidden", SEND_FORBIDDEN)


def resolve_attachments(state: EmulatorState, seller: Seller, attachment_ids: list[str]) -> list[Attachment]:
    """The seller's uploaded files named in the send; 422 for an unknown one."""
    found = []
    for attachment_id in attachment_ids:
        attachment = state.attachments.get(attachment_id)
        if attachment is None or attachment.seller_id != seller.id:
            raise send_error(422, "unprocessable_entity", "Attachment key is invalid or not found")
        found.append(attachment)
    return found


def has_unsupported_characters(text: str) -> bool:
    """Whether the text has a character outside ISO-8859-1 and the emoji list."""
    return any(not _supported(character) for character in text)


def _with_cause(error: MeliError, cause: str) -> MeliError:
    error.body["cause"] = cause
    return error


def _append(state: EmulatorState, conversation: Conversation, message: Message) -> None:
    conversation.messages.append(message)
    state.messages[message.id] = message


def _send_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise send_error(400, "bad_request", "The field 'text' is required")
    if len(text) > SELLER_MAX_MESSAGE_LENGTH:
        raise send_error(
            400,
            "bad_request",
            f"The message content is too long, max characters allowed are {SELLER_MAX_MESSAGE_LENGTH}",
        )
    if has_unsupported_characters(text):
        raise send_error(400, "bad_request", "The text has character/s that is/are not supported.")
    return text


def _attachment_ids(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise send_error(422, "unprocessable_entity", "Attachment key is invalid or not found")
    if len(value) > MAX_ATTACHMENTS_PER_MESSAGE:
        raise send_error(
            400,
            "bad_request",
            f"The message exceeds the allowed number of attachments: {MAX_ATTACHMENTS_PER_MESSAGE}",
        )
    return list(value)


def _user_id(party: object) -> int | None:
    value = party.get("user_id") if isinstance(party, dict) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _supported(character: str) -> bool:
    code = ord(character)
    if code <= 0xFF:
        return character in "\n\r\t" or not (code < 0x20 or 0x7F <= code <= 0x9F)
    return any(low <= code <= high for low, high in _EMOJI_RANGES)
