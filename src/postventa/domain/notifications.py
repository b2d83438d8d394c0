"""What becomes of a Mercado Libre notification, as pure decisions: whether Mercado Libre's answer
settles it, when it is tried again, how many calls it may cost its seller, which pending ones are
dropped when a seller has too many, and how long a processed one is kept.

Anyone may post a notification naming a linked seller (the seller's id is public), so none of these
may let a flood of forged ones drown the real ones: the inbound processor (delivery/inbound.py) only
does the reads and writes they decide on.
"""

from __future__ import annotations

import datetime as dt
import math

MAX_NOTIFICATION_ATTEMPTS = 10
NOTIFICATION_RETRY_SECONDS = 15.0
# Answers that reading the resource again will not change: 404 (Mercado Libre has no such message or
# order, or no longer has it), 403 (not this seller's: a stray or forged notification) and 400 (not an
# id Mercado Libre accepts: the emulator's answer to a malformed message id).
SETTLED_STATUSES = frozenset({400, 403, 404})
# Mercado Libre calls one notification causes, by topic: a message is read once; an order is read,
# and its shipment with it (services/marketplace.sync_order).
CALLS_BY_TOPIC = {"messages": 1, "orders_v2": 2}
SECONDS_PER_MINUTE = 60


def settled_by_answer(status: int | None) -> bool:
    """Whether Mercado Libre's answer (an HTTP status; None when it did not answer) settles the
    notification: done at once, not retried."""
    return status in SETTLED_STATUSES


def notification_retry_at(attempts: int, now: dt.datetime) -> dt.datetime | None:
    """When a notification that failed its `attempts`-th attempt is tried again (later each time);
    None once it has had MAX_NOTIFICATION_ATTEMPTS."""
    if attempts >= MAX_NOTIFICATION_ATTEMPTS:
        return None
    return now + dt.timedelta(seconds=NOTIFICATION_RETRY_SECONDS * max(1, attempts))


def calls_of(topic: str) -> int:
    """How many Mercado Libre calls processing a notification of `topic` costs its seller's budget."""
    return CALLS_BY_TOPIC.get(topic, 1)


def calls_per_second(calls_per_minute: int) -> int:
    """The share of a seller's minute of notification calls that one second may spend: a burst cannot
    spend the whole minute at once and leave a real notification that comes next waiting a minute."""
    return max(1, math.ceil(calls_per_minute / SECONDS_PER_MINUTE))


def pending_over_bound(pending: int, bound: int) -> int:
    """How many of a seller's `pending` notifications are dropped, the oldest first, to keep `bound`
    (the newest survive: a real notification comes after a flood)."""
    return max(0, pending - bound)


def dropped_reason(bound: int) -> str:
    """The `last_error` of a notification dropped by the per-seller bound."""
    return (
        f"dropped: more than {bound} notifications of this seller were waiting; "
        "polling and the missed feeds still find what it named"
    )


def retention_cutoff(now: dt.datetime, retention_days: float) -> dt.datetime:
    """Processed notifications older than this are deleted."""
    return now - dt.timedelta(days=retention_days)
