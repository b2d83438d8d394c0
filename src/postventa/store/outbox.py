"""The delivery outbox: claiming due messages with a lease, and recording each attempt's outcome.

A claim is one statement. On PostgreSQL it skips rows other workers hold (`FOR UPDATE SKIP
LOCKED`); on SQLite the write transaction already excludes other writers. A message whose lease
expired (its worker died mid-attempt) is claimed again and marked for reconciliation, since that
attempt may have reached Mercado Libre. Updates after a claim are fenced by the lease owner.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, any_, bindparam, case, exists, func, insert, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select, Update

from postventa.domain.attempts import Outcome
from postventa.domain.delivery import LinkStatus, MessageStatus
from postventa.domain.orders import DeliveryWindow, marketplace_conversation
from postventa.domain.reasons import Reason
from postventa.store.engine import Database
from postventa.store.prepared import Prepared
from postventa.store.tables import (
    attachments,
    conversations,
    delivery_attempts,
    marketplace_links,
    messages,
    orders,
    worker_heartbeats,
)
from postventa.store.upsert import upsert

__all__ = ["ClaimedMessage", "DeliveryJob", "FinishedAttempt", "Outcome"]
# Statuses of a message Mercado Libre has: its id and the time it went are recorded.
DELIVERED_STATUSES = (MessageStatus.SENT, MessageStatus.MODERATED, MessageStatus.PENDING_MODERATION)


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


def _deliverable_account() -> Any:
    """The message's account is linked to Mercado Libre and its link works: the messages of an account
    not linked, or whose link needs relinking (Mercado Libre refused its refresh token), wait in the
    queue until it is linked again, neither failed nor retried against a refusal."""
    return messages.c.account_id.in_(
        select(marketplace_links.c.account_id).where(marketplace_links.c.status == LinkStatus.ACTIVE.value)
    )


def _due(now: Any) -> Any:
    return and_(
        messages.c.direction == "outbound",
        _deliverable_account(),
        or_(_queued_due(now), _lease_expired(now)),
    )


def _queued_due(now: Any) -> Any:
    return and_(messages.c.status == MessageStatus.QUEUED, messages.c.next_attempt_at <= now)


def _lease_expired(now: Any) -> Any:
    return and_(messages.c.status == MessageStatus.SENDING, messages.c.lease_expires_at < now)


def _claim_update(which: Any, *, skip_locked: bool) -> Update:
    """Claim up to `limit` messages matching `which`, oldest due first.

    One status per statement, so each walks its part of the (status, next_attempt_at) index in
    order and stops at the limit: with both statuses in one OR, the database collected and sorted
    every due message of the queue for each claim (10,000 rows to hand out 8).
    """
    now = bindparam("now", type_=messages.c.status_changed_at.type)
    candidates = (
        select(messages.c.id)
        .where(
            messages.c.direction == "outbound",
            _deliverable_account(),
            which(now),
        )
        .order_by(messages.c.next_attempt_at, messages.c.id)
        .limit(bindparam("limit"))
    )
    if skip_locked:  # PostgreSQL
        # `= ANY(ARRAY(subquery))`: the candidates are locked and collected first, then each is
        # updated through the primary key, whatever the planner thinks of the queue's size.
        chosen: Any = messages.c.id == any_(
            func.array(candidates.with_for_update(skip_locked=True).scalar_subquery())
        )
    else:
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


def _claim_statement(which: Any, *, skip_locked: bool) -> Prepared:
    return Prepared(
        _claim_update(which, skip_locked=skip_locked).returning(
            messages.c.id, messages.c.attempts, messages.c.needs_reconcile
        )
    )


# The worker's statements are built once, and run on SQLite without SQLAlchemy's execution
# machinery (store/prepared.py): a delivery is a handful of them. Expired leases are claimed before
# queued messages: their worker died mid-attempt, and they are older than anything queued since.
_CLAIMS = (
    _claim_statement(_lease_expired, skip_locked=False),
    _claim_statement(_queued_due, skip_locked=False),
)
_CLAIMS_SKIPPING_LOCKED = (
    _claim_statement(_lease_expired, skip_locked=True),
    _claim_statement(_queued_due, skip_locked=True),
)


async def claim_due_messages(
    connection: AsyncConnection,
    worker: str,
    now: dt.datetime,
    *,
    limit: int,
    lease_seconds: float,
    expired_leases: bool = True,
) -> list[ClaimedMessage]:
    """Take up to `limit` due messages for this worker: those whose lease expired first (unless
    `expired_leases` is false: a worker looks for them now and then, not on every claim), then
    queued ones."""
    both = _CLAIMS_SKIPPING_LOCKED if connection.dialect.name == "postgresql" else _CLAIMS
    statements = both if expired_leases else both[1:]
    parameters = _claim_parameters(worker, now, lease_seconds)
    claimed: list[ClaimedMessage] = []
    async with claim_plan(connection):
        for statement in statements:
            if len(claimed) >= limit:
                break
            rows = (await statement.execute(connection, parameters | {"limit": limit - len(claimed)})).all()
            claimed.extend(_claimed(row) for row in rows)
    return claimed


async def claim_jobs(
    connection: AsyncConnection,
    worker: str,
    now: dt.datetime,
    *,
    limit: int,
    lease_seconds: float,
    expired_leases: bool = True,
) -> list[tuple[ClaimedMessage, DeliveryJob]]:
    """`claim_due_messages`, with each claimed message's job (`load_job`). On PostgreSQL the claim of
    queued messages and their jobs are one statement: a round trip per claim, not one per message."""
    if connection.dialect.name != "postgresql":
        claimed = await claim_due_messages(
            connection, worker, now, limit=limit, lease_seconds=lease_seconds, expired_leases=expired_leases
        )
        return [(message, await load_job(connection, message.id)) for message in claimed]
    parameters = _claim_parameters(worker, now, lease_seconds)
    jobs: list[tuple[ClaimedMessage, DeliveryJob]] = []
    async with claim_plan(connection):
        if expired_leases:  # seldom any: their jobs are read one by one
            taken_over = _CLAIMS_SKIPPING_LOCKED[0]
            for row in await taken_over.execute(connection, parameters | {"limit": limit}):
                jobs.append((_claimed(row), await load_job(connection, row.id)))
        if len(jobs) < limit:
            rows = await _CLAIM_QUEUED_JOBS.execute(connection, parameters | {"limit": limit - len(jobs)})
            due_order = sorted(rows, key=lambda row: (row.next_attempt_at, row.id))
            jobs.extend((_claimed(row), _job(row)) for row in due_order)
    return jobs


def _claim_parameters(worker: str, now: dt.datetime, lease_seconds: float) -> dict[str, Any]:
    return {"now": now, "worker": worker, "lease_expires_at": now + dt.timedelta(seconds=lease_seconds)}


def _claimed(row: Any) -> ClaimedMessage:
    return ClaimedMessage(row.id, row.attempts, bool(row.needs_reconcile))


# The planner settings of the worker's statements on the queue. Each touches a few rows through an
# index: the claim walks its index in order and stops at its limit, then reads each claimed
# message's order and attachment by primary key; an outcome updates one message by primary key.
# Those are the right plans whatever the statistics say, and the statistics are often wrong: a
# burst of queued messages (or a bulk requeue) is not analyzed before the worker drains it. Believing
# a few rows queued, PostgreSQL collected every queued row and sorted them (16.7 ms a claim with
# 6,400 queued, against 0.6 ms); planning on an empty queue, it chose sequential scans of messages
# and orders with hash joins (4.9 ms a claim with 10,000 queued, against 1.0 ms). So sorts,
# sequential scans, hash and merge joins are discouraged, and just-in-time compilation, which is for
# long analytical queries, is off (a plan whose cost the settings inflate was compiled otherwise,
# for a third of a second, on every claim).
QUEUE_PLANNER_SETTINGS = {
    "enable_sort": "off",
    "enable_seqscan": "off",
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
    "jit": "off",
}
# The worker's own connections for claims and outcomes (`queue_statements`) open their sessions with
# them, and with generic plans: the worker runs the same few statements thousands of times, and
# PostgreSQL planned the claim afresh each time (0.45 ms of its 1 ms), its cost depending on its
# parameters. A generic plan is made once, from the statistics of that moment, which the settings
# above make harmless (tests/integration/test_outbox.py).
QUEUE_SESSION_SETTINGS = QUEUE_PLANNER_SETTINGS | {"plan_cache_mode": "force_generic_plan"}


def queue_statements(database: Database) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
    """The worker's connection for claims and outcomes: each statement commits by itself
    (`Database.statements`), in a session with QUEUE_SESSION_SETTINGS (PostgreSQL). A claim of
    queued messages is then one round trip, where a transaction with its settings was four."""
    return database.statements(settings=QUEUE_SESSION_SETTINGS)


@contextlib.asynccontextmanager
async def claim_plan(connection: AsyncConnection) -> AsyncIterator[None]:
    """QUEUE_PLANNER_SETTINGS from here to the end of the transaction (`SET LOCAL`, one round trip),
    for claims run in a transaction of their own (PostgreSQL; nothing on SQLite, nor on a connection
    whose session has them already: `queue_statements`). Not undone at the end of the block: the
    rest of a claim's transaction reads jobs by their ids, and undoing was one more round trip."""
    if connection.dialect.name == "postgresql" and not _has_planner_settings(connection):
        await _SET_LOCAL_PLANNER_SETTINGS.execute(connection, {})
    yield


def _has_planner_settings(connection: AsyncConnection) -> bool:
    options = connection.sync_connection.get_execution_options()  # type: ignore[union-attr]
    return QUEUE_PLANNER_SETTINGS.items() <= (options.get("session_settings") or {}).items()


# The settings in one simple-query round trip (the statement has no parameters).
_SET_LOCAL_PLANNER_SETTINGS = Prepared(
    text("; ".join(f"SET LOCAL {name} = {value}" for name, value in QUEUE_PLANNER_SETTINGS.items()))
)


async def next_due_at(connection: AsyncConnection) -> dt.datetime | None:
    """When the next queued message falls due (to sleep until then)."""
    result = await connection.execute(
        select(func.min(messages.c.next_attempt_at)).where(
            messages.c.direction == "outbound", messages.c.status == MessageStatus.QUEUED
        )
    )
    value = result.scalar_one_or_none()
    return value if isinstance(value, dt.datetime) else None


# What a job reads of its message (`_job`, `_claimed`, the claim's order), and no more: each column
# of the claim's rows is decoded, and each timestamp converted, for every message delivered.
_JOB_MESSAGE_COLUMNS = (
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


def _job_query(message: Any) -> Select[Any]:
    """A message's row (`message`: the table, or the claim's CTE) with what its delivery needs of its
    order and attachment, and whether the buyer wrote in the conversation before it."""
    earlier = messages.alias("earlier")
    return select(
        *(message.c[name] for name in _JOB_MESSAGE_COLUMNS),
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


_JOB = Prepared(_job_query(messages).where(messages.c.id == bindparam("message_id")))

# PostgreSQL: the claim of queued messages and their jobs in one statement (the claim as a
# data-modifying CTE, whose RETURNING rows are the claimed messages as updated).
_CLAIMED = (
    _claim_update(_queued_due, skip_locked=True)
    .returning(*(messages.c[name] for name in _JOB_MESSAGE_COLUMNS))
    .cte("claimed")
)
# Not ordered here: with sorting discouraged (claim_plan) a Sort node, even of two rows, costs the
# statement enough for PostgreSQL to compile it just in time, 0.36 s a claim. Sorted by the caller.
_CLAIM_QUEUED_JOBS = Prepared(_job_query(_CLAIMED))


async def load_job(connection: AsyncConnection, message_id: int) -> DeliveryJob:
    """The message with its order, its attachment's name, and whether the buyer wrote first (one
    statement: a delivery on PostgreSQL is a handful of round trips, docs/performance.md)."""
    return _job((await _JOB.execute(connection, {"message_id": message_id})).one())


def _job(row: Any) -> DeliveryJob:
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


async def known_marketplace_ids(connection: AsyncConnection, account_id: int) -> set[str]:
    """Mercado Libre message ids already recorded for the account."""
    rows = await connection.execute(
        select(messages.c.marketplace_message_id).where(
            messages.c.account_id == account_id, messages.c.marketplace_message_id.is_not(None)
        )
    )
    return {str(value) for value in rows.scalars()}


@dataclass(frozen=True)
class FinishedAttempt:
    """An attempt to record: the message, the worker that held it, and how the attempt ended."""

    message_id: int
    worker: str
    attempt: int
    outcome: Outcome
    started: dt.datetime
    finished: dt.datetime


async def record_outcomes(connection: AsyncConnection, attempts: Sequence[FinishedAttempt]) -> list[bool]:
    """`record_outcome` for each attempt, in order; on PostgreSQL the outcomes that set the same
    columns go in one round trip (the usual batch: all sent)."""
    if connection.dialect.name != "postgresql":
        return [
            await record_outcome(
                connection,
                done.message_id,
                done.worker,
                done.attempt,
                done.outcome,
                done.started,
                done.finished,
            )
            for done in attempts
        ]
    kept: dict[int, bool] = {}
    by_columns: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = {}
    for index, done in enumerate(attempts):
        columns, new_values, attempt_row = _outcome_parameters(
            done.message_id, done.worker, done.attempt, done.outcome, done.started, done.finished
        )
        by_columns.setdefault(columns, []).append((index, new_values | attempt_row))
    for columns, group in by_columns.items():
        rows = await _outcome_with_attempt(columns).fetch_each(
            connection, [values for _index, values in group]
        )
        kept.update((index, bool(row.kept)) for (index, _values), row in zip(group, rows, strict=True))
    return [kept[index] for index in range(len(attempts))]


async def record_outcome(
    connection: AsyncConnection,
    message_id: int,
    worker: str,
    attempt: int,
    outcome: Outcome,
    started: dt.datetime,
    now: dt.datetime,
) -> bool:
    """Record the attempt and its effect on the message; False when the lease was lost meanwhile."""
    columns, new_values, attempt_row = _outcome_parameters(message_id, worker, attempt, outcome, started, now)
    fence = {"message_id": message_id, "worker": worker}
    if connection.dialect.name == "postgresql":  # one round trip instead of two
        row = (await _outcome_with_attempt(columns).execute(connection, new_values | attempt_row)).one()
        return bool(row.kept)
    result = await _prepared_fenced_update(columns).execute(connection, fence | new_values)
    kept = result.rowcount == 1
    await _INSERT_ATTEMPT.execute(
        connection, attempt_row | {"outcome": outcome.attempt_outcome if kept else "lease_lost"}
    )
    return kept


async def renew_lease(connection: AsyncConnection, message_id: int, worker: str, until: dt.datetime) -> bool:
    """Extend the lease of a message this worker holds until `until`; False if it holds it no longer."""
    parameters = {"message_id": message_id, "worker": worker, "new_lease_expires_at": until}
    return (
        await _prepared_fenced_update(("lease_expires_at",)).execute(connection, parameters)
    ).rowcount == 1


def _outcome_parameters(
    message_id: int, worker: str, attempt: int, outcome: Outcome, started: dt.datetime, now: dt.datetime
) -> tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]:
    """The columns an outcome sets, their new values (`new_<column>`), and its attempt's row."""
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
        values["attempts"] = attempt - 1
    columns = tuple(sorted(values))
    new_values = {f"new_{name}": value for name, value in values.items()}
    attempt_row = {
        "message_id": message_id,
        "attempt": attempt,
        "worker": worker,
        "route": outcome.route,
        "started_at": started,
        "finished_at": now,
        "outcome": outcome.attempt_outcome,
        "error_code": outcome.error_code,
        "error_message": outcome.error_message,
    }
    return columns, new_values, attempt_row


def _fenced_update(columns: tuple[str, ...]) -> Update:
    """The update of a message still leased to this worker, for one set of columns (an outcome sets
    one of a few sets)."""
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
def _prepared_fenced_update(columns: tuple[str, ...]) -> Prepared:
    return Prepared(_fenced_update(columns))


@functools.cache
def _outcome_with_attempt(columns: tuple[str, ...]) -> Prepared:
    """PostgreSQL: the fenced update and the attempt's row in one statement. The update is a
    data-modifying CTE; the attempt says "lease_lost" when it changed nothing, and so does `kept`."""
    updated = _fenced_update(columns).returning(messages.c.id).cte("updated")
    kept = exists(select(updated.c.id))
    values: dict[str, Any] = {
        name: bindparam(name, type_=delivery_attempts.c[name].type)
        for name in _ATTEMPT_COLUMNS
        if name != "outcome"
    }
    values["outcome"] = case(
        (kept, bindparam("outcome", type_=delivery_attempts.c.outcome.type)), else_=literal("lease_lost")
    )
    return Prepared(insert(delivery_attempts).values(values).add_cte(updated).returning(kept.label("kept")))


_ATTEMPT_COLUMNS = (
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
_INSERT_ATTEMPT = Prepared(
    insert(delivery_attempts).values(
        {name: bindparam(name, type_=delivery_attempts.c[name].type) for name in _ATTEMPT_COLUMNS}
    )
)


async def release_claimed(
    connection: AsyncConnection, message_ids: Sequence[int], worker: str, now: dt.datetime
) -> int:
    """Hand back messages this worker claimed but never attempted (it is stopping): queued and due
    at once, the claim's attempt not counted. Fenced by the lease: one no longer held is left."""
    if not message_ids:
        return 0
    result = await connection.execute(
        update(messages)
        .where(
            messages.c.id.in_(list(message_ids)),
            messages.c.status == MessageStatus.SENDING,
            messages.c.lease_owner == worker,
        )
        .values(
            status=MessageStatus.QUEUED,
            status_changed_at=now,
            next_attempt_at=now,
            attempts=messages.c.attempts - 1,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    return int(result.rowcount)


async def requeue(connection: AsyncConnection, now: dt.datetime, message_ids: list[int] | None = None) -> int:
    """Put failed messages (all, or these) back in the queue; returns how many."""
    conditions = [messages.c.status == MessageStatus.FAILED, messages.c.direction == "outbound"]
    if message_ids is not None:
        conditions.append(messages.c.id.in_(message_ids))
    result = await connection.execute(
        update(messages)
        .where(*conditions)
        .values(
            status=MessageStatus.QUEUED,
            status_changed_at=now,
            next_attempt_at=now,
            attempts=0,
            failed_at=None,
            error_code=None,
            error_message=None,
        )
    )
    return int(result.rowcount)


async def resume_account(connection: AsyncConnection, account_id: int, now: dt.datetime) -> int:
    """Make the account's queued messages due now (its link works again); returns how many were
    waiting for later. Their attempts and routes are kept: this is the same delivery, resumed."""
    result = await connection.execute(
        update(messages)
        .where(
            messages.c.account_id == account_id,
            messages.c.direction == "outbound",
            messages.c.status == MessageStatus.QUEUED,
            messages.c.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )
    return int(result.rowcount)


async def count_by_status(connection: AsyncConnection) -> dict[str, int]:
    """Outbound messages per status (queue depth)."""
    rows = await connection.execute(
        select(messages.c.status, func.count())
        .where(messages.c.direction == "outbound")
        .group_by(messages.c.status)
    )
    return {row[0]: int(row[1]) for row in rows}


async def count_due(connection: AsyncConnection, now: dt.datetime) -> int:
    """How many messages a worker could claim now (the backlog the workers have not caught up on)."""
    result = await connection.execute(select(func.count()).select_from(messages).where(_due(now)))
    return int(result.scalar_one())


async def heartbeat(connection: AsyncConnection, worker: str, now: dt.datetime) -> None:
    """Say this worker is alive."""
    await upsert(connection, worker_heartbeats, {"worker_id": worker, "seen_at": now}, ["worker_id"])


async def latest_heartbeat(connection: AsyncConnection) -> dt.datetime | None:
    """When any delivery worker last said it was alive; None when none ever did."""
    result = await connection.execute(select(func.max(worker_heartbeats.c.seen_at)))
    value = result.scalar_one_or_none()
    return value if isinstance(value, dt.datetime) else None


async def attempts_of(connection: AsyncConnection, message_id: int) -> list[dict[str, Any]]:
    """The attempts of a message, oldest first."""
    rows = await connection.execute(
        select(delivery_attempts)
        .where(delivery_attempts.c.message_id == message_id)
        .order_by(delivery_attempts.c.id)
    )
    return [dict(row._mapping) for row in rows]
