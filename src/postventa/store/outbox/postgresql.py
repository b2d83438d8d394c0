"""The queue on PostgreSQL: claims and outcomes as single statements, on the worker's autocommit
connections (`outbox.queue_statements`), one round trip each.

A claim locks its candidates with `FOR UPDATE SKIP LOCKED`, so concurrent workers never share a
message. The claim of queued messages returns their jobs in the same statement (the claim as a
data-modifying CTE); an outcome's fenced update and its attempt's row are one statement too, and a
batch of outcomes that set the same columns is pipelined in one round trip.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, exists, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.store.outbox import claims
from postventa.store.outbox.claims import ClaimedMessage, DeliveryJob
from postventa.store.outbox.outcomes import FinishedAttempt, attempt_values, fenced_update, outcome_values
from postventa.store.prepared import Prepared
from postventa.store.tables import delivery_attempts, messages
from postventa.store.webhook_events import fan_out

# Seldom any: their jobs are read one by one.
TAKE_OVER_EXPIRED = Prepared(
    claims.claim_update(claims.lease_expired, skip_locked=True).returning(
        messages.c.id, messages.c.attempts, messages.c.needs_reconcile
    )
)
_CLAIMED = (
    claims.claim_update(claims.queued_due, skip_locked=True)
    .returning(*(messages.c[name] for name in claims.JOB_MESSAGE_COLUMNS))
    .cte("claimed")
)
# Not ordered here: with sorting discouraged (QUEUE_PLANNER_SETTINGS) a Sort node, even of two rows,
# costs the statement enough for PostgreSQL to compile it just in time, on every claim
# (docs/performance.md). Sorted by the caller.
CLAIM_QUEUED_JOBS = Prepared(claims.job_query(_CLAIMED))


@functools.cache
def outcome_with_attempt(columns: tuple[str, ...]) -> Prepared:
    """The fenced update, the attempt's row and the webhook event in one statement (so in one
    transaction). The update is a data-modifying CTE; the attempt says "lease_lost" when it changed
    nothing, and so does `kept`; the event's fan-out (store/webhook_events.py) takes the updated
    message's account, so a lost lease makes no event, and `event_bit` 0 (no event) no row."""
    updated = fenced_update(columns).returning(messages.c.id, messages.c.account_id).cte("updated")
    events = fan_out(select(updated.c.account_id).scalar_subquery()).cte("events")
    kept = exists(select(updated.c.id))
    values = attempt_values()
    values["outcome"] = case((kept, values["outcome"]), else_=literal("lease_lost"))
    statement = insert(delivery_attempts).values(values).add_cte(updated).add_cte(events)
    return Prepared(statement.returning(kept.label("kept")))


class PostgresqlQueue:
    """`outbox.Queue` on PostgreSQL."""

    async def claim_jobs(
        self, connection: AsyncConnection, parameters: dict[str, Any], *, limit: int, expired_leases: bool
    ) -> list[tuple[ClaimedMessage, DeliveryJob]]:
        """Up to `limit` claimed messages (expired leases first, if asked), each with its job."""
        jobs: list[tuple[ClaimedMessage, DeliveryJob]] = []
        if expired_leases:
            for row in await TAKE_OVER_EXPIRED.execute(connection, parameters | {"limit": limit}):
                loaded = (await claims.LOAD_JOB.execute(connection, {"message_id": row.id})).one()
                jobs.append((claims.claimed(row), claims.job(loaded)))
        if len(jobs) < limit:
            rows = await CLAIM_QUEUED_JOBS.execute(connection, parameters | {"limit": limit - len(jobs)})
            due_order = sorted(rows, key=lambda row: (row.next_attempt_at, row.id))
            jobs.extend((claims.claimed(row), claims.job(row)) for row in due_order)
        return jobs

    async def record_outcomes(
        self, connection: AsyncConnection, attempts: Sequence[FinishedAttempt]
    ) -> list[bool]:
        """The outcomes that set the same columns in one round trip (the usual batch: all sent)."""
        kept: dict[int, bool] = {}
        by_columns: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = {}
        for index, done in enumerate(attempts):
            values = outcome_values(done)
            by_columns.setdefault(values.columns, []).append(
                (index, values.new_values | values.attempt_row | values.event_parameters)
            )
        for columns, group in by_columns.items():
            rows = await outcome_with_attempt(columns).fetch_each(
                connection, [values for _index, values in group]
            )
            kept.update((index, bool(row.kept)) for (index, _values), row in zip(group, rows, strict=True))
        return [kept[index] for index in range(len(attempts))]
