"""An attempt's outcome, written once for both databases: the message's new state, fenced by its
lease, and the attempt's row in the message's delivery history. The backends run these statements
their own way (outbox/sqlite.py, outbox/postgresql.py).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.sql import Update

from postventa.domain.attempts import Outcome
from postventa.domain.delivery import MessageStatus
from postventa.domain.webhooks import EventType
from postventa.store.prepared import Prepared
from postventa.store.tables import delivery_attempts, messages
from postventa.store.webhook_events import event_parameters

# Statuses of a message Mercado Libre has: its id and the time it went are recorded.
DELIVERED_STATUSES = (MessageStatus.SENT, MessageStatus.MODERATED, MessageStatus.PENDING_MODERATION)
# The webhook event of an outcome's status (issue 20), written with the outcome (store/webhook_events.py).
_EVENTS: dict[str, EventType] = {
    MessageStatus.SENT: EventType.MESSAGE_SENT,
    MessageStatus.MODERATED: EventType.MESSAGE_MODERATED,
    MessageStatus.FAILED: EventType.MESSAGE_FAILED,
}


@dataclass(frozen=True)
class FinishedAttempt:
    """An attempt to record: the message, the worker that held it, and how the attempt ended."""

    message_id: int
    worker: str
    attempt: int
    outcome: Outcome
    started: dt.datetime
    finished: dt.datetime


@dataclass(frozen=True)
class OutcomeValues:
    """What writing one outcome binds: the columns it sets (one of a few sets), their new values
    (`new_<column>`), its attempt's row, and its webhook event's fan-out (`event` None: none)."""

    columns: tuple[str, ...]
    new_values: dict[str, Any]
    attempt_row: dict[str, Any]
    event: EventType | None
    event_parameters: dict[str, Any]


def outcome_values(done: FinishedAttempt) -> OutcomeValues:
    """The message's new state after the attempt, and the attempt's row."""
    outcome, now = done.outcome, done.finished
    values: dict[str, Any] = {
        "status": outcome.status,
        "status_changed_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
        "needs_reconcile": outcome.needs_reconcile,
        "error_code": outcome.error_code,
        "error_message": outcome.error_message,
    }
    if outcome.status in DELIVERED_STATUSES:
        values |= {
            "sent_at": now,
            "marketplace_message_id": outcome.marketplace_message_id,
            "moderation_reason": outcome.moderation_reason,
            "next_attempt_at": None,
        }
    elif outcome.status == MessageStatus.FAILED:
        values |= {"failed_at": now, "next_attempt_at": None}
    else:
        values["next_attempt_at"] = outcome.next_attempt_at
    if outcome.next_route is not None:
        values["route"] = outcome.next_route
    if not outcome.counts_attempt:  # a wait gives back the attempt its claim counted
        values["attempts"] = done.attempt - 1
    attempt_row = {
        "message_id": done.message_id,
        "attempt": done.attempt,
        "worker": done.worker,
        "route": outcome.route,
        "started_at": done.started,
        "finished_at": now,
        "outcome": outcome.attempt_outcome,
        "error_code": outcome.error_code,
        "error_message": outcome.error_message,
    }
    new_values = {f"new_{name}": value for name, value in values.items()}
    event = _EVENTS.get(outcome.status)
    snapshot = values | {"attempts": values.get("attempts", done.attempt)} if event is not None else None
    events = event_parameters(event, done.message_id, now, now, snapshot=snapshot)
    return OutcomeValues(tuple(sorted(values)), new_values, attempt_row, event, events)


def fenced_update(columns: tuple[str, ...]) -> Update:
    """The update of a message still leased to this worker (`message_id`, `worker`), setting
    `columns` to their `new_<column>` values."""
    return (
        update(messages)
        .where(
            messages.c.id == bindparam("message_id"),
            messages.c.lease_owner == bindparam("worker"),
            messages.c.status == MessageStatus.SENDING,
        )
        .values({name: bindparam(f"new_{name}", type_=messages.c[name].type) for name in columns})
    )


@functools.cache
def prepared_fenced_update(columns: tuple[str, ...]) -> Prepared:
    """`fenced_update(columns)`, built once per set of columns."""
    return Prepared(fenced_update(columns))


ATTEMPT_COLUMNS = (
    "message_id",
    "attempt",
    "worker",
    "route",
    "started_at",
    "finished_at",
    "outcome",
    "error_code",
    "error_message",
)


def attempt_values() -> dict[str, Any]:
    """A bound parameter for each of the attempt row's columns."""
    return {name: bindparam(name, type_=delivery_attempts.c[name].type) for name in ATTEMPT_COLUMNS}


INSERT_ATTEMPT = Prepared(insert(delivery_attempts).values(attempt_values()))
