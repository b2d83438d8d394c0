"""Webhook events written in the transaction of the change they report (issue 20).

An event is one row of `webhook_deliveries` per endpoint of the account that subscribed to it,
fanned out by one `INSERT … SELECT` over the account's endpoints (indexed by account): an account
without endpoints costs that one statement and writes nothing. The outbox's outcomes run the same
fan-out inside their own statements (outbox/sqlite.py, outbox/postgresql.py) through
`fan_out_select`.

A message event keeps a `snapshot` of what the change set (status, its time, the delivery's
fields): the body is rendered from the message with the snapshot over it at the first attempt
(services/webhook_bodies.py), so it says what the change said even if the message changed again
since. An order event is rendered at once and keeps its `body`.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Integer, Text, bindparam, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Insert

from postventa.domain.webhooks import EVENT_BITS, EventType
from postventa.store.prepared import Prepared
from postventa.store.tables import UtcDateTime, messages, webhook_deliveries, webhook_endpoints

# The fields of a message a snapshot may hold (those a status change sets), and which are times.
SNAPSHOT_FIELDS = frozenset(
    {
        "status",
        "status_changed_at",
        "sent_at",
        "failed_at",
        "attempts",
        "marketplace_message_id",
        "moderation_reason",
        "error_code",
        "error_message",
    }
)
_TIME_FIELDS = frozenset({"status_changed_at", "sent_at", "failed_at"})

_INSERTED_COLUMNS = (
    "endpoint_id",
    "webhook_id",
    "event_type",
    "subject_id",
    "occurred_at",
    "snapshot",
    "body",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)


def new_webhook_id() -> str:
    """An event's `webhook-id`: `msg_` and 24 random hex digits (the same for every endpoint and
    every retry of the event)."""
    return "msg_" + secrets.token_hex(12)


def snapshot_json(values: Mapping[str, Any]) -> str:
    """The message fields a change set, as the snapshot stores them (times in ISO 8601)."""
    kept = {name: value for name, value in values.items() if name in SNAPSHOT_FIELDS}
    return orjson.dumps(kept).decode()  # aware times as ISO 8601 with their offset


def snapshot_values(text: str | None) -> dict[str, Any]:
    """A stored snapshot's fields, times as aware datetimes."""
    if not text:
        return {}
    loaded = json.loads(text)
    return {
        name: dt.datetime.fromisoformat(value) if name in _TIME_FIELDS and value is not None else value
        for name, value in loaded.items()
        if name in SNAPSHOT_FIELDS
    }


def _subscribed_endpoints(account_id: ColumnElement[Any]) -> tuple[ColumnElement[bool], ...]:
    """The endpoints of `account_id` that take the event of bit `event_bit`: enabled, subscribed."""
    e = webhook_endpoints
    return (
        e.c.account_id == account_id,
        e.c.enabled.is_(True),
        e.c.events_mask.op("&")(bindparam("event_bit", type_=Integer())) != 0,
    )


def fan_out_select(account_id: ColumnElement[Any]) -> Any:
    """The rows an event makes: one per enabled endpoint of `account_id` subscribed to the event's
    bit (`event_bit`, 0 for none), with the event's bound parameters (`webhook_id`, `event_type`,
    `subject_id`, `occurred_at`, `snapshot`, `body`, `now`)."""
    e = webhook_endpoints
    now = bindparam("now", type_=UtcDateTime())
    return select(
        e.c.id,
        bindparam("webhook_id", type_=webhook_deliveries.c.webhook_id.type),
        bindparam("event_type", type_=webhook_deliveries.c.event_type.type),
        bindparam("subject_id", type_=webhook_deliveries.c.subject_id.type),
        bindparam("occurred_at", type_=UtcDateTime()),
        bindparam("snapshot", type_=Text()),
        bindparam("body", type_=Text()),
        literal("pending"),
        literal(0),
        now,
        now,
    ).where(*_subscribed_endpoints(account_id))


def fan_out(account_id: ColumnElement[Any]) -> Insert:
    """`fan_out_select` inserted into `webhook_deliveries`."""
    return insert(webhook_deliveries).from_select(list(_INSERTED_COLUMNS), fan_out_select(account_id))


# The account of the message named by `subject_id` (outcomes know the message, not its account).
ACCOUNT_OF_MESSAGE = (
    select(messages.c.account_id).where(messages.c.id == bindparam("subject_id")).scalar_subquery()
)
EMIT_FOR_MESSAGE = Prepared(fan_out(ACCOUNT_OF_MESSAGE))
EMIT_FOR_ACCOUNT = Prepared(fan_out(bindparam("account_id", type_=Integer())))
_SUBSCRIBED = Prepared(
    select(func.count())
    .select_from(webhook_endpoints)
    .where(*_subscribed_endpoints(bindparam("account_id", type_=Integer())))
)


def event_parameters(
    event: EventType | None,
    subject_id: int,
    occurred_at: dt.datetime,
    now: dt.datetime,
    *,
    snapshot: Mapping[str, Any] | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    """The bound parameters of an event's fan-out; `event` None makes no rows (bit 0)."""
    return {
        "event_bit": EVENT_BITS[event] if event is not None else 0,
        "webhook_id": new_webhook_id() if event is not None else None,
        "event_type": event.value if event is not None else None,
        "subject_id": subject_id,
        "occurred_at": occurred_at,
        "snapshot": snapshot_json(snapshot) if snapshot is not None else None,
        "body": body,
        "now": now,
    }


async def emit_message_event(
    connection: AsyncConnection,
    event: EventType,
    message_id: int,
    changed: Mapping[str, Any],
    now: dt.datetime,
) -> int:
    """A message's event, with the fields the change set (`changed`, which holds its
    `status_changed_at`), to each subscribed endpoint of its account; how many deliveries."""
    occurred_at = changed.get("status_changed_at") or now
    parameters = event_parameters(event, message_id, occurred_at, now, snapshot=changed)
    return (await EMIT_FOR_MESSAGE.execute(connection, parameters)).rowcount


async def subscribed(connection: AsyncConnection, account_id: int, event: EventType) -> bool:
    """Whether any enabled endpoint of the account takes this event (one indexed count)."""
    parameters = {"account_id": account_id, "event_bit": EVENT_BITS[event]}
    return int((await _SUBSCRIBED.execute(connection, parameters)).scalar_one()) > 0


async def emit_rendered_event(
    connection: AsyncConnection,
    account_id: int,
    event: EventType,
    subject_id: int,
    body: str,
    occurred_at: dt.datetime,
    now: dt.datetime,
) -> int:
    """An event whose body is already rendered, to each subscribed endpoint of the account; how
    many deliveries."""
    parameters = event_parameters(event, subject_id, occurred_at, now, body=body)
    parameters["account_id"] = account_id
    return (await EMIT_FOR_ACCOUNT.execute(connection, parameters)).rowcount
