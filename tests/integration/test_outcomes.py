"""Outcomes written several to a transaction (`outbox.outcome_writes`, store/group_commit.py): each caller
still learns its own result once committed, a bad outcome fails only its own caller, and nothing is
left unwritten."""

from __future__ import annotations

import asyncio
import datetime as dt
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select

from postventa.store import outbox
from postventa.store.tables import delivery_attempts, messages
from tests.integration.test_outbox import claim, queued_messages


def sent(message_id: int) -> outbox.Outcome:
    """Sent, with its own Mercado Libre id (unique per account)."""
    return outbox.Outcome(
        status="sent", attempt_outcome="sent", route="action_guide", marketplace_message_id=f"m{message_id}"
    )


def finished(message_id: int, now: dt.datetime, *, worker: str = "w") -> outbox.FinishedAttempt:
    """A first attempt that ended sent."""
    return outbox.FinishedAttempt(message_id, worker, 1, sent(message_id), now, now)


@pytest.fixture
def database(isolated_database):
    """Claims take every due message: these tests get a database no running worker shares."""
    return isolated_database


def count_write_transactions(database, monkeypatch) -> list[int]:
    """A list that grows by one at each write transaction the database opens."""
    opened: list[int] = []
    transaction = database.transaction

    @asynccontextmanager
    async def counted(*, write: bool = False):
        if write:
            opened.append(1)
        async with transaction(write=write) as connection:
            yield connection

    monkeypatch.setattr(database, "transaction", counted)
    return opened


async def statuses(database, ids: list[int]) -> dict[int, str]:
    async with database.transaction() as connection:
        rows = await connection.execute(
            select(messages.c.id, messages.c.status).where(messages.c.id.in_(ids))
        )
        return {row.id: row.status for row in rows}


async def test_outcomes_finished_together_share_a_commit(client, database, monkeypatch):
    ids = await queued_messages(client, database, 6)
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    await claim(database, "w", at=now, limit=10)
    recorder = outbox.outcome_writes(database)
    opened = count_write_transactions(database, monkeypatch)

    kept = await asyncio.gather(*(recorder.write(finished(i, now)) for i in ids))

    assert kept == [True] * 6
    assert len(opened) < len(ids)  # the first alone, the five that waited behind it in one
    assert set((await statuses(database, ids)).values()) == {"sent"}
    async with database.transaction() as connection:
        attempts = (
            await connection.execute(
                select(func.count())
                .select_from(delivery_attempts)
                .where(delivery_attempts.c.message_id.in_(ids))
            )
        ).scalar_one()
    assert attempts == 6


async def test_a_bad_outcome_fails_only_its_own_caller(client, database):
    ids = await queued_messages(client, database, 3)
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    await claim(database, "w", at=now, limit=10)
    recorder = outbox.outcome_writes(database)
    missing_message = 2**62  # its attempt row breaks the foreign key: the shared transaction fails

    results = await asyncio.gather(
        recorder.write(finished(ids[0], now)),
        recorder.write(finished(ids[1], now)),
        recorder.write(finished(missing_message, now)),
        recorder.write(finished(ids[2], now)),
        return_exceptions=True,
    )

    assert results[:2] == [True, True]
    assert isinstance(results[2], Exception)
    assert results[3] is True
    assert set((await statuses(database, ids)).values()) == {"sent"}


async def test_a_lost_lease_is_reported_to_its_caller(client, database):
    ids = await queued_messages(client, database, 2)
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    await claim(database, "w", at=now, limit=10)
    recorder = outbox.outcome_writes(database)

    kept = await asyncio.gather(
        recorder.write(finished(ids[0], now)),
        recorder.write(finished(ids[1], now, worker="other")),
    )

    assert kept == [True, False]
    assert await statuses(database, ids) == {ids[0]: "sent", ids[1]: "sending"}


async def test_a_cancelled_caller_still_gets_its_outcome_written(client, database):
    ids = await queued_messages(client, database, 2)
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    await claim(database, "w", at=now, limit=10)
    recorder = outbox.outcome_writes(database)

    callers = [asyncio.create_task(recorder.write(finished(i, now))) for i in ids]
    await asyncio.sleep(0)
    for caller in callers:
        caller.cancel()
    await recorder.flush()

    assert set((await statuses(database, ids)).values()) == {"sent"}
