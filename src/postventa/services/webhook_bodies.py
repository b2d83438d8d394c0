"""The bodies of webhook events (issue 20): `{"type", "timestamp", "data"}`, where `data` is the
message as `GET /v2/orders/{orderId}/messages/{messageId}` renders it, or the order as
`GET /v2/orders/{orderId}` does, plus `AccountId`.

A message event is rendered at its first attempt from the message with the event's snapshot over
it (the status and fields the change set: store/webhook_events.py), so a message that changed
again since still shows what this event reported; the body is then kept and every retry sends it
byte for byte. An order event is rendered when it is written. `timestamp` is when the change
happened, to the microsecond, so that a receiver can discard an event older than one it has.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.webhooks import EventType
from postventa.services.rendering import message_json, order_json
from postventa.store import messages as message_store
from postventa.store import webhook_deliveries, webhook_events
from postventa.store.accounts import get_account
from postventa.store.orders import get_order


def event_timestamp(value: dt.datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC (the specification's examples write it so)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope(event_type: str, occurred_at: dt.datetime, data: dict[str, Any]) -> str:
    """An event's body as sent (compact JSON, UTF-8 text)."""
    body = {"type": event_type, "timestamp": event_timestamp(occurred_at), "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


async def message_event_body(
    connection: AsyncConnection,
    event_type: str,
    message_id: int,
    snapshot: str | None,
    occurred_at: dt.datetime,
) -> str | None:
    """A message event's body; None when the message is gone."""
    owner = await webhook_deliveries.message_owner(connection, message_id)
    if owner is None:
        return None
    account_id, conversation_id = owner
    stored = await message_store.get_message(connection, conversation_id, message_id)
    if stored is None:
        return None
    as_reported = dataclasses.replace(stored, **webhook_events.snapshot_values(snapshot))
    data = message_json(as_reported, as_reported.order_id) | {"AccountId": account_id}
    return envelope(event_type, occurred_at, data)


async def order_event_body(
    connection: AsyncConnection, account_id: int, order_id: int, occurred_at: dt.datetime
) -> str | None:
    """An order event's body; None when the order or its account is gone."""
    order = await get_order(connection, account_id, order_id)
    seller = await get_account(connection, account_id)
    if order is None or seller is None:
        return None
    return envelope(
        EventType.ORDER_UPDATED.value, occurred_at, order_json(order, seller) | {"AccountId": account_id}
    )


async def emit_order_updated(
    connection: AsyncConnection, account_id: int, order_id: int, now: dt.datetime
) -> int:
    """The `order.updated` event of an order just written, to each subscribed endpoint of the
    account, in the caller's transaction; how many deliveries."""
    body = await order_event_body(connection, account_id, order_id, now)
    if body is None:
        return 0
    return await webhook_events.emit_rendered_event(
        connection, account_id, EventType.ORDER_UPDATED, order_id, body, now, now
    )
