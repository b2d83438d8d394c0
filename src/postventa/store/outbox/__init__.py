"""The delivery outbox: claiming due messages with a lease, and recording each attempt's outcome.

The statements are written once (outbox/claims.py: which messages are due and the update that
leases them; outbox/outcomes.py: an outcome's fenced update and attempt row) and run by one module
per backend behind the small `Queue` interface below: outbox/sqlite.py inside the worker's write
transaction, outbox/postgresql.py as single statements on the worker's autocommit connections. A
message whose lease expired (its worker died mid-attempt) is claimed again and marked for
reconciliation, since that attempt may have reached Mercado Libre. Updates after a claim are fenced
by the lease owner. The cold statements are in outbox/maintenance.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from functools import partial
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.attempts import Outcome
from postventa.store.engine import Database
from postventa.store.group_commit import Writes
from postventa.store.outbox.claims import (
    LOAD_JOB,
    QUEUE_PLANNER_SETTINGS,
    QUEUE_SESSION_SETTINGS,
    ClaimedMessage,
    DeliveryJob,
    claim_parameters,
    job,
)
from postventa.store.outbox.maintenance import (
    attempts_of,
    count_by_status,
    count_due,
    heartbeat,
    known_marketplace_ids,
    latest_heartbeat,
    next_due_at,
    release_claimed,
    requeue,
    resume_account,
)
from postventa.store.outbox.outcomes import DELIVERED_STATUSES, FinishedAttempt, prepared_fenced_update
from postventa.store.outbox.postgresql import PostgresqlQueue
from postventa.store.outbox.sqlite import SqliteQueue

__all__ = [
    "DELIVERED_STATUSES",
    "QUEUE_PLANNER_SETTINGS",
    "QUEUE_SESSION_SETTINGS",
    "ClaimedMessage",
    "DeliveryJob",
    "FinishedAttempt",
    "Outcome",
    "Queue",
    "attempts_of",
    "claim_due_messages",
    "claim_jobs",
    "count_by_status",
    "count_due",
    "heartbeat",
    "known_marketplace_ids",
    "latest_heartbeat",
    "load_job",
    "next_due_at",
    "outcome_writes",
    "queue_statements",
    "record_outcome",
    "record_outcomes",
    "release_claimed",
    "renew_lease",
    "requeue",
    "resume_account",
]


class Queue(Protocol):
    """How a backend claims messages and records outcomes."""

    async def claim_jobs(
        self, connection: AsyncConnection, parameters: dict[str, Any], *, limit: int, expired_leases: bool
    ) -> list[tuple[ClaimedMessage, DeliveryJob]]:
        """Up to `limit` claimed messages (expired leases first, if asked), each with its job."""
        ...

    async def record_outcomes(
        self, connection: AsyncConnection, attempts: Sequence[FinishedAttempt]
    ) -> list[bool]:
        """Write each outcome, fenced by its lease; whether each lease was still held, in order."""
        ...


_QUEUES: dict[str, Queue] = {"sqlite": SqliteQueue(), "postgresql": PostgresqlQueue()}


def queue_statements(database: Database) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
    """The worker's connection for claims and outcomes: each statement commits by itself
    (`Database.statements`), in a session with QUEUE_SESSION_SETTINGS (PostgreSQL); on SQLite, a
    write transaction. A claim of queued messages is then one round trip, where a transaction with
    its settings was four."""
    return database.statements(settings=QUEUE_SESSION_SETTINGS)


async def claim_jobs(
    connection: AsyncConnection,
    worker: str,
    now: dt.datetime,
    *,
    limit: int,
    lease_seconds: float,
    expired_leases: bool = True,
) -> list[tuple[ClaimedMessage, DeliveryJob]]:
    """Take up to `limit` due messages for this worker, each with its job: those whose lease expired
    first (unless `expired_leases` is false: a worker looks for them now and then, not on every
    claim), then queued ones, oldest due first."""
    return await _QUEUES[connection.dialect.name].claim_jobs(
        connection, claim_parameters(worker, now, lease_seconds), limit=limit, expired_leases=expired_leases
    )


async def claim_due_messages(
    connection: AsyncConnection, worker: str, now: dt.datetime, **options: Any
) -> list[ClaimedMessage]:
    """`claim_jobs` (with its keyword options), the claimed messages alone."""
    return [message for message, _job in await claim_jobs(connection, worker, now, **options)]


async def load_job(connection: AsyncConnection, message_id: int) -> DeliveryJob:
    """The message with its order, its attachment's name, and whether the buyer wrote first (one
    statement)."""
    return job((await LOAD_JOB.execute(connection, {"message_id": message_id})).one())


async def record_outcomes(connection: AsyncConnection, attempts: Sequence[FinishedAttempt]) -> list[bool]:
    """Record each attempt and its effect on its message, in order; for each, False when the lease
    was lost meanwhile (the attempt is then recorded as "lease_lost")."""
    return await _QUEUES[connection.dialect.name].record_outcomes(connection, attempts)


def outcome_writes(database: Database) -> Writes[FinishedAttempt, bool]:
    """Outcomes written several to a commit (store/group_commit.py), on the worker's connections:
    one commit per outcome made the commit the worker's slowest step on PostgreSQL, where each waits
    for the log to reach the disk (docs/performance.md). A group is written in one go
    (`record_outcomes`: one round trip on PostgreSQL). An outcome never written is not lost work:
    its message's lease runs out and the next claim reconciles with Mercado Libre first."""
    return database.group_commit(
        _record_one, write_many=record_outcomes, open_transaction=partial(queue_statements, database)
    )


async def _record_one(connection: AsyncConnection, attempt: FinishedAttempt) -> bool:
    [kept] = await record_outcomes(connection, [attempt])
    return kept


async def record_outcome(
    connection: AsyncConnection,
    message_id: int,
    worker: str,
    attempt: int,
    outcome: Outcome,
    started: dt.datetime,
    now: dt.datetime,
) -> bool:
    """`record_outcomes` for one attempt."""
    finished = FinishedAttempt(message_id, worker, attempt, outcome, started, now)
    [kept] = await record_outcomes(connection, [finished])
    return kept


async def renew_lease(connection: AsyncConnection, message_id: int, worker: str, until: dt.datetime) -> bool:
    """Extend the lease of a message this worker holds until `until`; False if it holds it no longer."""
    parameters = {"message_id": message_id, "worker": worker, "new_lease_expires_at": until}
    return (await prepared_fenced_update(("lease_expires_at",)).execute(connection, parameters)).rowcount == 1
