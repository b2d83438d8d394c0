"""SQLite's writers in this process: one at a time, on one shared connection.

SQLite serialises writers. A write transaction takes the write lock when it begins (`BEGIN
IMMEDIATE`), so a send reads the conversation only once no other writer can change it; without
that, two writers that both read first would collide on upgrade. This process's writers queue on an
asyncio lock, in order, rather than polling the database's lock (other processes still meet there),
and share one connection, so a write costs no pool checkout. BEGIN and COMMIT go straight to the
driver: most writes run only hot statements (store/prepared.py), and SQLAlchemy's own begin and
commit (a greenlet hop each, events, a transaction object) cost more than the rest of a send's SQL.

Writes that may share their commit with others of the moment (sends, delivery outcomes) are grouped
above this, by store/group_commit.py, each group in one of these transactions.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from postventa.store import sqlite_driver
from postventa.store.sqlite_driver import Checkpointer, InLoopConnection, WriterLock


@dataclass
class _LoopWriters:
    """The write lock of one event loop and the connection its writers share."""

    loop: asyncio.AbstractEventLoop
    lock: WriterLock
    connection: AsyncConnection | None = None


class SqliteWrites:
    """The write transactions of one SQLite engine (`Database.transaction(write=True)`)."""

    def __init__(self, engine: AsyncEngine, checkpointer: Checkpointer) -> None:
        self.engine = engine
        self.checkpointer = checkpointer
        self._writers: _LoopWriters | None = None
        _configure(engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, holding this process's write lock."""
        writers = self._current()
        async with writers.lock:
            connection = await self._connection(writers)
            driver = driver_of(connection)
            async with _driver_transaction(connection, driver):
                yield connection
            self.checkpointer.after_commit(writers.lock)

    async def dispose(self) -> None:
        """Close the shared connection."""
        writers, self._writers = self._writers, None
        if writers is None:
            return
        await self.checkpointer.wait()
        if writers.connection is not None and writers.loop is asyncio.get_running_loop():
            await writers.connection.close()

    def _current(self) -> _LoopWriters:
        loop = asyncio.get_running_loop()
        if self._writers is None or self._writers.loop is not loop:
            self._writers = _LoopWriters(loop, WriterLock())
        return self._writers

    async def _connection(self, writers: _LoopWriters) -> AsyncConnection:
        """The writers' shared connection (opened anew if it was closed). Holding the lock."""
        connection = writers.connection
        if connection is None or connection.closed or connection.invalidated:
            connection = await self.engine.connect()
            driver_of(connection).begin_statement = "BEGIN IMMEDIATE"
            writers.connection = connection
        return connection


def driver_of(connection: AsyncConnection) -> InLoopConnection:
    """The in-loop sqlite3 connection under an engine connection (store/sqlite_driver.py)."""
    driver = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    assert isinstance(driver, InLoopConnection)
    return driver


@asynccontextmanager
async def _driver_transaction(connection: AsyncConnection, driver: InLoopConnection) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE and COMMIT straight on the driver. A statement run through SQLAlchemy inside
    the block joins this transaction (the dialect's `do_begin` sees it open) and is then committed or
    rolled back through SQLAlchemy, which ends its own bookkeeping with it."""
    await on_driver(driver, "BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if connection.in_transaction():
            await connection.rollback()
        elif driver.sqlite.in_transaction:
            driver.sqlite.rollback()
        raise
    if connection.in_transaction():
        await connection.commit()
        return
    try:
        await on_driver(driver, "COMMIT")
    except BaseException:
        if driver.sqlite.in_transaction:
            driver.sqlite.rollback()
        raise


async def on_driver(driver: InLoopConnection, statement: str) -> None:
    """Run a statement without parameters (BEGIN, COMMIT) on the driver, waiting out another
    process's lock; SQLite's errors raised as SQLAlchemy would raise them."""
    try:
        try:
            driver.sqlite.execute(statement)
        except sqlite3.OperationalError as error:
            if not sqlite_driver.is_busy(error):
                raise
            await driver.when_not_busy(driver.sqlite.execute, statement)
    except sqlite3.OperationalError as error:
        raise OperationalError(statement, None, error) from error
    except sqlite3.Error as error:
        raise DatabaseError(statement, None, error) from error


def _configure(engine: AsyncEngine) -> None:
    """Every connection in WAL mode, its checkpoints left to `Checkpointer`."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver opens connections in autocommit mode, so SQLAlchemy emits BEGIN itself (below),
        # and with a busy timeout of 0: it waits for other processes' locks without blocking the loop.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Checkpoints copy the log into the database and fsync it: Checkpointer runs them on a thread
        # instead of on whichever request's commit crossed the threshold.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()
