"""The claim, written once for both databases: which messages are due, the update that leases them,
and what a delivery reads of each claimed message (its job).

A message is claimable when it is outbound, its account's Mercado Libre link works, and it is
either queued and due or `sending` with an expired lease (its worker died mid-attempt: the claim
marks it for reconciliation, since that attempt may have reached Mercado Libre). The backends run
these statements their own way (outbox/sqlite.py, outbox/postgresql.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, any_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.sql import ColumnElement, Select, Update

from postventa.domain.delivery import LinkStatus, MessageStatus
from postventa.domain.orders import DeliveryWindow, marketplace_conversation
from postventa.domain.reasons import Reason
from postventa.store.prepared import Prepared
from postventa.store.tables import attachments, conversations, marketplace_links, messages, orders


@dataclass(frozen=True)
class ClaimedMessage:
    """A message this worker now holds the lease of."""

    id: int
    attempts: int
    needs_reconcile: bool


@dataclass(frozen=True)
class DeliveryJob:
    """Everything needed to deliver one message."""

    message_id: int
    account_id: int
    conversation_id: int
    conversation_sequence: int
    reason: Reason
    text: str
    route: str | None
    first_attempt_at: dt.datetime | None
    order_external_id: str
    pack_id: int | None
    site_id: str | None
    buyer_code: str | None
    delivery_window: DeliveryWindow | None
    attachment_id: int | None
    attachment_file_name: str | None
    attachment_extension: str | None
    # The buyer wrote in the conversation before this message: then it goes by /messages.
    buyer_wrote_first: bool
    # Mercado Libre's assistant answering for the buyer, when the conversation is with one.
    agent_user_id: int | None = None

    @property
    def conversation_resource(self) -> int:
        """The id Mercado Libre keys the conversation by: the pack, or the order when it has none."""
        resource = marketplace_conversation(self.pack_id, self.order_external_id)
        if resource is None:  # such a message fails before any call (domain/attempts.not_on_marketplace)
            raise ValueError(f"order {self.order_external_id} has no Mercado Libre conversation")
        return resource


Which = Callable[[Any], ColumnElement[bool]]


def queued_due(now: Any) -> ColumnElement[bool]:
    """Queued, and its time has come."""
    return and_(messages.c.status == MessageStatus.QUEUED, messages.c.next_attempt_at <= now)


def lease_expired(now: Any) -> ColumnElement[bool]:
    """Being sent by a worker whose lease ran out (it died mid-attempt)."""
    return and_(messages.c.status == MessageStatus.SENDING, messages.c.lease_expires_at < now)


def either_due(now: Any) -> ColumnElement[bool]:
    """Claimable by either of the two claims (`count_due`)."""
    return or_(queued_due(now), lease_expired(now))


def claimable(which: Which, now: Any) -> ColumnElement[bool]:
    """The claim's `WHERE`: outbound, `which` (queued and due, or an expired lease), and the account
    linked to Mercado Libre with a working link. The messages of an account not linked, or whose
    link needs relinking, wait in the queue until it is linked again, neither failed nor retried
    against a refusal."""
    linked = select(marketplace_links.c.account_id).where(
        marketplace_links.c.status == LinkStatus.ACTIVE.value
    )
    return and_(messages.c.direction == "outbound", messages.c.account_id.in_(linked), which(now))


def claim_update(which: Which, *, skip_locked: bool) -> Update:
    """Claim up to `limit` messages matching `which`, oldest due first.

    One status per statement, so each walks its part of the (status, next_attempt_at) index in
    order and stops at the limit: with both statuses in one OR, the database collects and sorts
    every due message of the queue for each claim.
    """
    now = bindparam("now", type_=messages.c.status_changed_at.type)
    candidates = (
        select(messages.c.id)
        .where(claimable(which, now))
        .order_by(messages.c.next_attempt_at, messages.c.id)
        .limit(bindparam("limit"))
    )
    if skip_locked:  # PostgreSQL
        # `= ANY(ARRAY(subquery))`: the candidates are locked and collected first, then each is
        # updated through the primary key, whatever the planner thinks of the queue's size.
        chosen: Any = messages.c.id == any_(
            func.array(candidates.with_for_update(skip_locked=True).scalar_subquery())
        )
    else:  # SQLite: the write transaction already excludes every other writer
        chosen = messages.c.id.in_(candidates.scalar_subquery())
    return (
        update(messages)
        .where(chosen)
        .values(
            status=MessageStatus.SENDING,
            lease_owner=bindparam("worker"),
            lease_expires_at=bindparam("lease_expires_at", type_=messages.c.lease_expires_at.type),
            attempts=messages.c.attempts + 1,
            first_attempt_at=func.coalesce(messages.c.first_attempt_at, now),
            # A claim of a message already "sending" takes it over from a worker that died mid-attempt.
            needs_reconcile=case(
                (messages.c.status == MessageStatus.SENDING, True), else_=messages.c.needs_reconcile
            ),
            status_changed_at=now,
        )
    )


def claim_parameters(worker: str, now: dt.datetime, lease_seconds: float) -> dict[str, Any]:
    """The values a claim binds besides its limit."""
    return {"now": now, "worker": worker, "lease_expires_at": now + dt.timedelta(seconds=lease_seconds)}


def claimed(row: Any) -> ClaimedMessage:
    """A claim's row (id, attempts, needs_reconcile) as a ClaimedMessage."""
    return ClaimedMessage(row.id, row.attempts, bool(row.needs_reconcile))


# What a job reads of its message (`job`, `claimed`, the claim's order), and no more: each column of
# the claim's rows is decoded, and each timestamp converted, for every message delivered.
JOB_MESSAGE_COLUMNS = (
    "id",
    "account_id",
    "conversation_id",
    "conversation_sequence",
    "order_id",
    "reason",
    "text",
    "route",
    "attachment_id",
    "attempts",
    "needs_reconcile",
    "next_attempt_at",
    "first_attempt_at",
)


def job_query(message: Any) -> Select[Any]:
    """A message's row (`message`: the table, or a claim's CTE) with what its delivery needs of its
    order and attachment, and whether the buyer wrote in the conversation before it."""
    earlier = messages.alias("earlier")
    return select(
        *(message.c[name] for name in JOB_MESSAGE_COLUMNS),
        exists()
        .where(
            earlier.c.conversation_id == message.c.conversation_id,
            earlier.c.direction == "inbound",
            earlier.c.conversation_sequence < message.c.conversation_sequence,
        )
        .label("buyer_wrote_first"),
        orders.c.external_order_id,
        orders.c.pack_id,
        orders.c.site_id,
        orders.c.buyer_code,
        orders.c.delivery_date,
        orders.c.delivery_from_hour,
        orders.c.delivery_to_hour,
        attachments.c.name.label("attachment_name"),
        attachments.c.extension.label("attachment_extension"),
        conversations.c.agent_user_id,
    ).select_from(
        message.join(orders, message.c.order_id == orders.c.id)
        .join(conversations, message.c.conversation_id == conversations.c.id)
        .outerjoin(attachments, message.c.attachment_id == attachments.c.id)
    )


# A message's job by its id: after a claim that returns only ids (SQLite's; expired leases').
LOAD_JOB = Prepared(job_query(messages).where(messages.c.id == bindparam("message_id")))


def job(row: Any) -> DeliveryJob:
    """A `job_query` row as a DeliveryJob."""
    window = (
        DeliveryWindow(row.delivery_date, row.delivery_from_hour, row.delivery_to_hour)
        if row.delivery_date
        else None
    )
    return DeliveryJob(
        message_id=row.id,
        account_id=row.account_id,
        conversation_id=row.conversation_id,
        conversation_sequence=row.conversation_sequence,
        reason=Reason(row.reason),
        text=row.text,
        route=row.route,
        first_attempt_at=row.first_attempt_at,
        order_external_id=row.external_order_id,
        pack_id=row.pack_id,
        site_id=row.site_id,
        buyer_code=row.buyer_code,
        delivery_window=window,
        attachment_id=row.attachment_id,
        attachment_file_name=f"{row.attachment_name}.{row.attachment_extension}"
        if row.attachment_id
        else None,
        attachment_extension=row.attachment_extension,
        buyer_wrote_first=bool(row.buyer_wrote_first),
        agent_user_id=row.agent_user_id,
    )


# The planner settings of the worker's statements on the queue. Each touches a few rows through an
# index: the claim walks its index in order and stops at its limit, then reads each claimed
# message's order and attachment by primary key; an outcome updates one message by primary key.
# Those are the right plans whatever the statistics say, and the statistics are often wrong: a
# burst of queued messages (or a bulk requeue) is not analyzed before the worker drains it.
# Believing a few rows queued, PostgreSQL collected every queued row and sorted them; planning on an
# empty queue, it chose sequential scans of messages and orders with hash joins (docs/performance.md
# has both, measured). So sorts, sequential scans, hash and merge joins are discouraged, and
# just-in-time compilation, which is for long analytical queries, is off (a plan whose cost the
# settings inflate would otherwise be compiled, at length, on every claim).
QUEUE_PLANNER_SETTINGS = {
    "enable_sort": "off",
    "enable_seqscan": "off",
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
    "jit": "off",
}
# The worker's own connections for claims and outcomes (`outbox.queue_statements`) open their
# sessions with them, and with generic plans: the worker runs the same few statements thousands of
# times, and a custom plan is made afresh each time, its cost depending on its parameters. A generic
# plan is made once, from the statistics of that moment, which the settings above make harmless
# (tests/integration/test_outbox.py).
QUEUE_SESSION_SETTINGS = QUEUE_PLANNER_SETTINGS | {"plan_cache_mode": "force_generic_plan"}
