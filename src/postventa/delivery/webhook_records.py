"""Webhook attempts recorded several to a commit (issue 20).

Each attempt's record is a write (its row, the delivery's new state, the endpoint's streak), and a
write transaction apiece was most of a delivery's cost (on SQLite, one writer at a time). Attempts
that end while a commit is under way share the next one. If a shared commit fails, each of its
records is written again alone, so that one bad record (its endpoint deleted meanwhile) costs only
its own: a record never written is not lost work, since its lease runs out and the delivery is
attempted again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain import webhooks as rules
from postventa.store import webhook_deliveries as store
from postventa.store.engine import Database
from postventa.store.webhook_deliveries import AttemptRecord


@dataclass(frozen=True)
class FinishedAttempt:
    """An attempt to record, with the delivery's new status and next time."""

    record: AttemptRecord
    status: str
    next_attempt_at: dt.datetime | None
    success: bool
    now: dt.datetime


@dataclass(frozen=True)
class Recorded:
    """What recording found: whether the lease was still held, and whether the endpoint was
    disabled by this failure (5 days failing)."""

    kept: bool
    disabled: bool


class AttemptWriter:
    """Writes finished attempts, those waiting together in one transaction."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._waiting: list[tuple[FinishedAttempt, asyncio.Future[Recorded]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, finished: FinishedAttempt) -> Recorded:
        """Record one attempt; returns once it is committed (raises if it could not be)."""
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._waiting.append((finished, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        return await asyncio.shield(future)

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self.database.transaction(write=True) as connection:
                    results = [await _write_one(connection, finished) for finished, _future in batch]
            except Exception as error:
                if len(batch) == 1:
                    _fail(batch, error)
                    continue
                for one in batch:  # each alone: only a bad one fails
                    await self._write_alone(one)
                continue
            for (_finished, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _write_alone(self, one: tuple[FinishedAttempt, asyncio.Future[Recorded]]) -> None:
        finished, future = one
        try:
            async with self.database.transaction(write=True) as connection:
                result = await _write_one(connection, finished)
        except Exception as error:
            _fail([one], error)
            return
        if not future.done():
            future.set_result(result)


def _fail(batch: list[tuple[FinishedAttempt, asyncio.Future[Recorded]]], error: Exception) -> None:
    """Hand the error to each waiting caller."""
    for _finished, future in batch:
        if not future.done():
            future.set_exception(error)


async def _write_one(connection: AsyncConnection, finished: FinishedAttempt) -> Recorded:
    record, now = finished.record, finished.now
    kept = await store.record_attempt(
        connection, record, status=finished.status, next_attempt_at=finished.next_attempt_at, now=now
    )
    endpoint_id = record.delivery.endpoint_id
    if finished.success:
        await store.endpoint_succeeded(connection, endpoint_id, now)
        return Recorded(kept, disabled=False)
    failing_since = await store.endpoint_failed(connection, endpoint_id, now)
    if not rules.should_disable(failing_since, now):
        return Recorded(kept, disabled=False)
    since = failing_since.isoformat(timespec="seconds") if failing_since is not None else "?"
    reason = f"failing since {since} with no success for {rules.DISABLE_AFTER_FAILING.days} days"
    await store.disable_endpoint(connection, endpoint_id, reason, now)
    return Recorded(kept, disabled=True)
