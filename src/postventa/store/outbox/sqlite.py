"""The queue on SQLite: claims and outcomes inside the worker's write transaction.

That transaction holds the database's write lock from its start (`BEGIN IMMEDIATE`), so a claim
needs no row locks: no other writer can claim the same message meanwhile. Each statement is a few
microseconds on the loop's thread, so a claim's jobs are read one statement each, and an outcome is
its fenced update then its attempt's row (then, for a sent, moderated or failed message, its webhook
event's fan-out: store/webhook_events.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.store.outbox import claims
from postventa.store.outbox.claims import ClaimedMessage, DeliveryJob
from postventa.store.outbox.outcomes import (
    INSERT_ATTEMPT,
    FinishedAttempt,
    outcome_values,
    prepared_fenced_update,
)
from postventa.store.prepared import Prepared
from postventa.store.tables import messages
from postventa.store.webhook_events import EMIT_FOR_MESSAGE

# Expired leases before queued messages: their worker died mid-attempt, and they are older than
# anything queued since.
_CLAIMS = tuple(
    Prepared(
        claims.claim_update(which, skip_locked=False).returning(
            messages.c.id, messages.c.attempts, messages.c.needs_reconcile
        )
    )
    for which in (claims.lease_expired, claims.queued_due)
)


class SqliteQueue:
    """`outbox.Queue` on SQLite."""

    async def claim_jobs(
        self, connection: AsyncConnection, parameters: dict[str, Any], *, limit: int, expired_leases: bool
    ) -> list[tuple[ClaimedMessage, DeliveryJob]]:
        """Up to `limit` claimed messages (expired leases first, if asked), each with its job."""
        statements = _CLAIMS if expired_leases else _CLAIMS[1:]
        taken: list[ClaimedMessage] = []
        for statement in statements:
            if len(taken) >= limit:
                break
            rows = await statement.execute(connection, parameters | {"limit": limit - len(taken)})
            taken.extend(claims.claimed(row) for row in rows)
        return [(message, await _load_job(connection, message.id)) for message in taken]

    async def record_outcomes(
        self, connection: AsyncConnection, attempts: Sequence[FinishedAttempt]
    ) -> list[bool]:
        """Each outcome's fenced update and attempt row, in order; whether each lease was held."""
        kept_each = []
        for done in attempts:
            values = outcome_values(done)
            fence = {"message_id": done.message_id, "worker": done.worker}
            updated = await prepared_fenced_update(values.columns).execute(
                connection, fence | values.new_values
            )
            kept = updated.rowcount == 1
            outcome = values.attempt_row["outcome"] if kept else "lease_lost"
            await INSERT_ATTEMPT.execute(connection, values.attempt_row | {"outcome": outcome})
            if kept and values.event is not None:  # its webhook event, in the same transaction
                await EMIT_FOR_MESSAGE.execute(connection, values.event_parameters)
            kept_each.append(kept)
        return kept_each


async def _load_job(connection: AsyncConnection, message_id: int) -> DeliveryJob:
    return claims.job((await claims.LOAD_JOB.execute(connection, {"message_id": message_id})).one())
