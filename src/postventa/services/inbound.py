"""What Mercado Libre tells us: notifications accepted, buyer messages and moderation recorded."""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.delivery import MessageStatus
from postventa.domain.errors import PostventaError, invalid
from postventa.domain.inbound import (
    Author,
    Moderation,
    Source,
    author_of,
    may_record_foreign_seller_message,
    moderation_change,
    normalized_reason,
)
from postventa.domain.webhooks import event_of_status
from postventa.meli.models import MeliMessage, parse_time
from postventa.services.messaging import record_buyer_reply
from postventa.store import inbound as inbound_store
from postventa.store import observed as observed_store
from postventa.store import webhook_events
from postventa.store.links import account_of_seller

TOPICS = ("messages", "orders_v2")
# A notification carries no signature: its resource is only a hint of what to re-read from Mercado
# Libre with the seller's own token, so it must name exactly one id of its topic. A message's is the
# bare id (the "/messages/…" form is accepted too), an order's "/orders/<id>"; anything else (a path
# with "..", a query, an id over 64 bits) is refused before it is stored or put in a URL.
_RESOURCE_IDS = {
    "messages": re.compile(r"(?:/messages/)?([0-9A-Za-z_-]{1,64})"),
    "orders_v2": re.compile(r"/orders/([1-9][0-9]{0,18})"),
}


@dataclass(frozen=True)
class NotificationIn:
    """A well-formed notification."""

    topic: str
    resource: str
    user_id: int
    notification_id: str | None = None  # Mercado Libre's `id` (older payloads: `_id`), for the logs
    actions: tuple[str, ...] = ()  # `messages`: created, read (the message is read again either way)


def read_notification(payload: Any) -> NotificationIn:
    """The notification's topic, resource and seller; anything else in it is ignored."""
    if not isinstance(payload, dict):
        raise invalid("malformed_notification", "A notification is a JSON object.")
    topic, resource, user_id = payload.get("topic"), payload.get("resource"), payload.get("user_id")
    if not isinstance(topic, str) or not topic:
        raise invalid("malformed_notification", "'topic' is required.")
    if not isinstance(resource, str) or not 0 < len(resource) <= 200 or not resource.isprintable():
        raise invalid("malformed_notification", "'resource' is required (at most 200 printable characters).")
    if isinstance(user_id, str) and user_id.isascii() and user_id.isdigit() and len(user_id) <= 19:
        user_id = int(user_id)
    if not isinstance(user_id, int) or isinstance(user_id, bool) or not 0 < user_id < 2**63:
        raise invalid("malformed_notification", "'user_id' must be the seller's numeric id.")
    if topic in TOPICS and resource_id(topic, resource) is None:
        raise invalid("malformed_notification", f"'resource' does not name one {topic} resource.")
    return NotificationIn(topic, resource, user_id, _notification_id(payload), _actions(payload))


def _notification_id(payload: dict[str, Any]) -> str | None:
    value = payload.get("id", payload.get("_id"))
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
        return text if 0 < len(text) <= 64 and text.isprintable() else None
    return None


def _actions(payload: dict[str, Any]) -> tuple[str, ...]:
    value = payload.get("actions")
    if not isinstance(value, list):
        return ()
    return tuple(item.lower() for item in value[:8] if isinstance(item, str) and 0 < len(item) <= 32)


def resource_id(topic: str, resource: str) -> str | None:
    """The id a followed topic's resource names (a message id, an order id); None when it names none."""
    pattern = _RESOURCE_IDS.get(topic)
    match = pattern.fullmatch(resource) if pattern is not None else None
    if match is None or (topic == "orders_v2" and int(match.group(1)) >= 2**63):
        return None
    return match.group(1)


async def accept_missed_notification(connection: AsyncConnection, payload: Any, now: dt.datetime) -> bool:
    """Keep a notification found in Mercado Libre's missed feeds, as the webhook would have; False
    when it is malformed, of a topic we do not follow or of an unknown seller."""
    try:
        notification = read_notification(payload)
    except PostventaError:
        return False
    if notification.topic not in TOPICS or await account_of_seller(connection, notification.user_id) is None:
        return False
    happened_at = parse_time(payload.get("received") or payload.get("sent"))
    await inbound_store.save_missed_notification(
        connection, notification.topic, notification.resource, notification.user_id, happened_at, now
    )
    return True


async def accept_notification(
    connection: AsyncConnection, notification: NotificationIn, now: dt.datetime
) -> bool:
    """Keep a notification of a known seller on a topic we follow; False when it is ignored."""
    if notification.topic not in TOPICS or await account_of_seller(connection, notification.user_id) is None:
        return False
    await inbound_store.save_notification(
        connection, notification.topic, notification.resource, notification.user_id, now
    )
    return True


class Recorded(enum.Enum):
    """What became of a message read from Mercado Libre."""

    DONE = "done"  # recorded, updated, or nothing to record
    NO_ORDER = "no_order"  # its conversation's order is not imported yet: try again after a sync
    IN_FLIGHT = "in_flight"  # a seller message while a postventa message of the conversation is in flight

    @property
    def reason(self) -> str | None:
        """Why it must be tried again, for the notification's last error."""
        return _WHY_LATER.get(self)


_WHY_LATER = {
    Recorded.NO_ORDER: "the conversation's order is not known yet",
    Recorded.IN_FLIGHT: "a postventa message of the conversation is being delivered: this seller "
    "message may be it",
}


async def record_marketplace_message(
    connection: AsyncConnection, account_id: int, seller_id: int, message: MeliMessage, now: dt.datetime
) -> bool:
    """`observe_message`, as done (True) or to try again later (False)."""
    return await observe_message(connection, account_id, seller_id, message, now) is Recorded.DONE


async def observe_message(
    connection: AsyncConnection,
    account_id: int,
    seller_id: int,
    message: MeliMessage,
    now: dt.datetime,
    *,
    agent_thread: bool = False,
) -> Recorded:
    """A message read from Mercado Libre, recorded as it is there: a known one gains its moderation
    verdict and read time; a buyer's or the AI agent's is recorded once as inbound; a seller message
    written outside postventa is recorded as outbound from the `marketplace` (never while a postventa
    message of the conversation is in flight: it may be that one)."""
    if not message.id or seller_id not in (message.from_user_id, message.to_user_id):
        return Recorded.DONE  # not a message of this seller's conversations: never recorded in its account
    known = await observed_store.known_message(connection, account_id, message.id)
    if known is not None:
        await _update_known(connection, known, message, now)
        return Recorded.DONE
    ref = (
        await observed_store.conversation_ref(connection, account_id, message.pack_id)
        if message.pack_id is not None
        else None
    )
    if ref is None:
        return Recorded.NO_ORDER
    agent_thread = agent_thread or (
        ref.agent_user_id is not None and message.from_user_id == ref.agent_user_id
    )
    author = author_of(
        message.from_user_id, seller_id=seller_id, buyer_id=ref.buyer_id, agent_thread=agent_thread
    )
    if author is Author.SELLER:
        return await _record_foreign_seller_message(connection, account_id, ref, message, now)
    message_id = await record_buyer_reply(
        connection,
        order_id=ref.order_id,
        text=message.text or "(empty message)",
        now=now,
        marketplace_message_id=message.id,
    )
    await observed_store.set_origin(connection, message_id, source=Source.MARKETPLACE, author=author.value)
    if message.read_at is not None:
        await observed_store.record_read(connection, message_id, message.read_at)
    if author is Author.AGENT and message.from_user_id is not None:
        await observed_store.save_agent(connection, ref.conversation_id, message.from_user_id)
    return Recorded.DONE


def moderation_of(message: MeliMessage) -> Moderation:
    """Mercado Libre's moderation of a message, as the rules read it."""
    return Moderation(
        pending=message.is_pending_moderation,
        rejected=message.is_moderated,
        reason=message.moderation_reason,
    )


async def _update_known(
    connection: AsyncConnection, known: observed_store.KnownMessage, message: MeliMessage, now: dt.datetime
) -> None:
    if known.direction == "outbound":
        change = moderation_change(known.status, moderation_of(message))
        if change is not None and await observed_store.change_status(
            connection, known.id, known.status, change, now
        ):
            await _emit(connection, known.id, change.status, now, moderation_reason=change.moderation_reason)
    if message.read_at is not None and known.read_at is None:
        await observed_store.record_read(connection, known.id, message.read_at)


async def _record_foreign_seller_message(
    connection: AsyncConnection,
    account_id: int,
    ref: observed_store.ConversationRef,
    message: MeliMessage,
    now: dt.datetime,
) -> Recorded:
    in_flight = await observed_store.in_flight_statuses(connection, ref.conversation_id)
    if not may_record_foreign_seller_message(in_flight_statuses=in_flight):
        return Recorded.IN_FLIGHT
    moderation = moderation_of(message)
    if moderation.rejected:
        status = MessageStatus.MODERATED
    elif moderation.pending:
        status = MessageStatus.PENDING_MODERATION
    else:
        status = MessageStatus.SENT
    observed = observed_store.ObservedSellerMessage(
        account_id=account_id,
        ref=ref,
        marketplace_message_id=message.id,
        text=message.text or "(empty message)",
        status=status,
        moderation_reason=normalized_reason(message.moderation_reason) if moderation.rejected else None,
        sent_at=message.created_at or now,
        read_at=message.read_at,
    )
    message_id = await observed_store.append_observed_seller_message(connection, observed, now)
    await _emit(
        connection,
        message_id,
        status,
        now,
        sent_at=observed.sent_at,
        marketplace_message_id=observed.marketplace_message_id,
        moderation_reason=observed.moderation_reason,
    )
    return Recorded.DONE


async def _emit(
    connection: AsyncConnection, message_id: int, status: MessageStatus, now: dt.datetime, **changed: Any
) -> None:
    """The webhook event of a message that reached `status` now (none for pending_moderation), in
    this transaction (issue 20)."""
    event = event_of_status(status.value)
    if event is not None:
        snapshot = {"status": status.value, "status_changed_at": now, **changed}
        await webhook_events.emit_message_event(connection, event, message_id, snapshot, now)
