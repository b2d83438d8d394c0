"""The in-loop SQLite driver (store/sqlite_driver.py): another process's lock is waited for without
blocking the event loop, a lock held too long is an error, and checkpoints keep the log small."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from postventa.store.engine import Database


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "driver.db"


async def _make_table(database: Database) -> None:
    async with database.transaction(write=True) as connection:
        await connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as far as SQLite can tell: its own connection in a write transaction."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_a_locked_database_is_waited_for_while_the_loop_runs(sqlite_path):
    database = Database(f"sqlite:///{sqlite_path}")
    await _make_table(database)
    other = _hold_write_lock(sqlite_path)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def write() -> None:
        async with database.transaction(write=True) as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('after the lock')"))

    ticking = asyncio.create_task(ticker())
    writing = asyncio.create_task(write())
    await asyncio.sleep(0.4)
    assert not writing.done()
    assert ticks >= 10  # the loop kept running while the write waited
    other.rollback()
    await asyncio.wait_for(writing, timeout=5)
    ticking.cancel()
    async with database.transaction() as connection:
        assert (await connection.execute(text("SELECT body FROM notes"))).scalars().all() == [
            "after the lock"
        ]
    other.close()
    await database.dispose()


async def test_a_lock_held_past_the_busy_timeout_is_an_error(sqlite_path):
    database = Database(f"sqlite:///{sqlite_path}", busy_timeout_seconds=0.3)
    await _make_table(database)
    other = _hold_write_lock(sqlite_path)
    started = time.monotonic()
    with pytest.raises(OperationalError, match="locked"):
        async with database.transaction(write=True) as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('never')"))
    assert 0.25 <= time.monotonic() - started < 3
    other.close()
    await database.dispose()


async def test_writers_of_one_process_take_turns(sqlite_path):
    database = Database(f"sqlite:///{sqlite_path}")
    await _make_table(database)

    async def write(number: int) -> None:
        async with database.transaction(write=True) as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES (:body)"), {"body": str(number)})
            await asyncio.sleep(0)  # yield inside the transaction: the others must wait their turn

    await asyncio.gather(*(write(number) for number in range(50)))
    async with database.transaction() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 50
    await database.dispose()


async def _write_log(path: Path, commits_per_checkpoint: int, commits: int) -> int:
    database = Database(f"sqlite:///{path}", commits_per_checkpoint=commits_per_checkpoint)
    await _make_table(database)
    reader = sqlite3.connect(path)  # keeps the log file from being removed when the pool closes
    for number in range(commits):
        async with database.transaction(write=True) as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES (:body)"), {"body": "x" * 500})
        if number % 50 == 0:
            await asyncio.sleep(0.01)  # let a checkpoint thread get on
    await database._checkpointer.wait()
    size = Path(f"{path}-wal").stat().st_size
    await database.dispose()
    reader.close()
    return size


async def test_checkpoints_keep_the_log_small(tmp_path):
    checkpointed = await _write_log(tmp_path / "with.db", commits_per_checkpoint=50, commits=1000)
    never = await _write_log(tmp_path / "without.db", commits_per_checkpoint=10**9, commits=1000)
    assert checkpointed * 3 < never


async def test_the_in_loop_driver_is_a_dialect_sqlalchemy_knows(tmp_path):
    """`sqlite+inloop://` opens with SQLAlchemy's own `create_async_engine`, as any registered
    driver does: plain statements, streamed results and a transaction that rolls back."""
    from sqlalchemy.ext.asyncio import create_async_engine

    import postventa.store.sqlite_driver  # noqa: F401  (registers the dialect)

    engine = create_async_engine(f"sqlite+inloop:///{tmp_path / 'plain.db'}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))
            await connection.execute(text("INSERT INTO t VALUES (1), (2), (3)"))
        async with engine.connect() as connection:
            transaction = await connection.begin()
            await connection.execute(text("INSERT INTO t VALUES (4)"))
            await transaction.rollback()
        async with engine.connect() as connection:
            streamed = [row.n async for row in await connection.stream(text("SELECT n FROM t ORDER BY n"))]
        assert engine.dialect.driver == "inloop"
        assert streamed == [1, 2, 3]
    finally:
        await engine.dispose()
