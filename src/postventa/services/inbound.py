"""What Mercado Libre tells us: notifications accepted, buyer messages and moderation recorded."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.errors import invalid
from postventa.meli.models import MeliMessage
from postventa.services.messaging import record_buyer_reply
from postventa.store import inbound as inbound_store
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
    return NotificationIn(topic, resource, user_id)


def resource_id(topic: str, resource: str) -> str | None:
    """The id a followed topic's resource names (a message id, an order id); None when it names none."""
    pattern = _RESOURCE_IDS.get(topic)
    match = pattern.fullmatch(resource) if pattern is not None else None
    if match is None or (topic == "orders_v2" and int(match.group(1)) >= 2**63):
        return None
    return match.group(1)


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


async def record_marketplace_message(
    connection: AsyncConnection, account_id: int, seller_id: int, message: MeliMessage, now: dt.datetime
) -> bool:
    """A message read from Mercado Libre: a buyer's is recorded once; a seller's may update moderation.

    Returns False when the buyer's conversation has no order here yet (try again after a sync).
    """
    if not message.id:
        return True
    if seller_id not in (message.from_user_id, message.to_user_id):
        return True  # not a message of this seller's conversations: never recorded in its account
    if message.from_user_id == seller_id:
        if message.is_moderated:
            await inbound_store.mark_moderated(
                connection, account_id, message.id, message.moderation_reason, now
            )
        return True
    if await inbound_store.has_marketplace_message(connection, account_id, message.id):
        return True
    if message.pack_id is None:
        return False
    order_id = await inbound_store.find_order_for_conversation(connection, account_id, message.pack_id)
    if order_id is None:
        return False
    await record_buyer_reply(
        connection,
        order_id=order_id,
        text=message.text or "(empty message)",
        now=now,
        marketplace_message_id=message.id,
    )
    return True
