"""Recording the outcomes of attempts, several to a transaction.

Each delivery ends with a write: the message's new state and a row of its attempt history. One
transaction each made the commit the worker's slowest step on PostgreSQL, where every commit waits
for the log to reach the disk (docs/performance.md). Here the outcomes that finish while a commit is
under way are written together in the next transaction: nothing waits for company (a lone outcome
is written at once), and under load a commit carries as many outcomes as finished meanwhile.

Each caller still learns its own result (whether the lease was still held) only once it is
committed. If a shared transaction fails, its outcomes are written again one per transaction, so
that one bad outcome fails only its own caller. An outcome never written is not lost work: its
message's lease runs out and the next claim reconciles with Mercado Libre before trying again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.store import outbox
from postventa.store.engine import Database
from postventa.store.outbox import FinishedAttempt, Outcome


@dataclass(frozen=True)
class _Finished:
    """One attempt's outcome, waiting to be written."""

    attempt: FinishedAttempt
    written: asyncio.Future[bool]


class OutcomeRecorder:
    """Writes outcomes for one worker, as many per transaction as are waiting."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._waiting: list[_Finished] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(
        self,
        message_id: int,
        worker: str,
        attempt: int,
        outcome: Outcome,
        started: dt.datetime,
        finished: dt.datetime,
    ) -> bool:
        """Write the outcome (`outbox.record_outcome`); True if the lease was still held. Returns once
        committed; raises if it could not be written."""
        loop = asyncio.get_running_loop()
        written: asyncio.Future[bool] = loop.create_future()
        finished_attempt = FinishedAttempt(message_id, worker, attempt, outcome, started, finished)
        self._waiting.append(_Finished(finished_attempt, written))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_waiting())
        # Shielded: a caller cancelled at shutdown leaves its outcome to be written all the same.
        return await asyncio.shield(written)

    async def flush(self) -> None:
        """Wait until every outcome handed in so far is written (or has failed)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            if len(batch) == 1:
                await self._write_alone(batch[0])
                continue
            try:
                # Each outcome is one statement on PostgreSQL, whole by itself: no transaction around
                # them, and the batch's go in one round trip (outbox.record_outcomes).
                async with outbox.queue_statements(self.database) as connection:
                    kept = await outbox.record_outcomes(connection, [finished.attempt for finished in batch])
            except Exception:  # one of them, or the commit: each on its own, so only a bad one fails
                for finished in batch:
                    await self._write_alone(finished)
                continue
            for finished, was_kept in zip(batch, kept, strict=True):
                _settle(finished.written, result=was_kept)

    async def _write_alone(self, finished: _Finished) -> None:
        try:
            async with outbox.queue_statements(self.database) as connection:
                kept = await _write(connection, finished)
        except Exception as error:
            _settle(finished.written, error=error)
        else:
            _settle(finished.written, result=kept)


async def _write(connection: AsyncConnection, finished: _Finished) -> bool:
    [kept] = await outbox.record_outcomes(connection, [finished.attempt])
    return kept


def _settle(
    written: asyncio.Future[bool], *, result: bool = False, error: BaseException | None = None
) -> None:
    if written.done():
        return
    if error is not None:
        written.set_exception(error)
    else:
        written.set_result(result)
