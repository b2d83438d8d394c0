"""SQLite's writers in this process: one at a time, on one shared connection, commits grouped.

SQLite serialises writers. A write transaction takes the write lock when it begins (`BEGIN
IMMEDIATE`), so a send reads the conversation only once no other writer can change it; without
that, two writers that both read first would collide on upgrade. This process's writers queue on an
asyncio lock, in order, rather than polling the database's lock (other processes still meet there),
and share one connection, so a write costs no pool checkout. BEGIN and COMMIT go straight to the
driver: most writes run only hot statements (store/prepared.py), and SQLAlchemy's own begin and
commit (a greenlet hop each, events, a transaction object) cost more than the rest of a send's SQL.

Group commit (`SqliteWrites.grouped`, used by sends): the writes of the moment share one
transaction and one commit. The rule for a member's failure: a member that raises before changing
anything (a refused send: every check comes before a send's first write) leaves the group as it
was; one that raises after changing rows, or a commit that fails, fails every member of its group,
and nothing of that group is kept (their changes cannot be told apart, and none has answered yet).
A send's writes cannot conflict under the lock, so in practice only a failed commit does that; the
rule replaced a savepoint per member, two statements of every send (docs/performance.md).
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
class _Group:
    """Grouped writes sharing one SQLite transaction; `committed` settles when it commits or fails."""

    committed: asyncio.Future[None]
    commit_task: asyncio.Task[None] | None = None
    members: int = 0


@dataclass
class _LoopWriters:
    """The write lock of one event loop, the connection its writers share, and the open group."""

    loop: asyncio.AbstractEventLoop
    lock: WriterLock
    connection: AsyncConnection | None = None
    group: _Group | None = None


class SqliteWrites:
    """The write transactions of one SQLite engine (`Database.transaction(write=True)`)."""

    def __init__(self, engine: AsyncEngine, checkpointer: Checkpointer) -> None:
        self.engine = engine
        self.checkpointer = checkpointer
        self._writers: _LoopWriters | None = None
        _configure(engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction of its own: the open group commits first."""
        writers = self._current()
        async with writers.lock:
            connection = await self._connection(writers)
            driver = driver_of(connection)
            await self._close_group(writers, driver)
            async with _driver_transaction(connection, driver):
                yield connection
            self.checkpointer.after_commit(writers.lock)

    def grouped(self) -> GroupedWrite:
        """A write that may share its transaction and commit with the others of the moment."""
        return GroupedWrite(self)

    async def dispose(self) -> None:
        """Let the open group commit, and close the shared connection."""
        writers, self._writers = self._writers, None
        if writers is None:
            return
        if writers.group is not None and writers.group.commit_task is not None:
            await asyncio.gather(writers.group.commit_task, return_exceptions=True)
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

    async def _join_group(self, writers: _LoopWriters, driver: InLoopConnection) -> _Group:
        """The open group, or a new one (its transaction begun, its commit scheduled). Holding the lock."""
        if writers.group is not None and not writers.group.committed.done():
            writers.group.members += 1
            return writers.group
        await on_driver(driver, "BEGIN IMMEDIATE")
        group = writers.group = _Group(writers.loop.create_future(), members=1)
        # The commit runs once the tasks ready now have had their turn: the sends among them whose
        # requests were read meanwhile join this transaction instead of each committing its own.
        group.commit_task = writers.loop.create_task(self._commit_group(writers, group, driver))
        return group

    async def _commit_group(self, writers: _LoopWriters, group: _Group, driver: InLoopConnection) -> None:
        async with writers.lock:
            await self._close_group(writers, driver, group)

    async def _close_group(
        self, writers: _LoopWriters, driver: InLoopConnection, group: _Group | None = None
    ) -> None:
        """Commit the open group (holding the lock), settling its members' wait either way."""
        open_group = writers.group
        if open_group is None or (group is not None and open_group is not group):
            return
        writers.group = None
        if open_group.committed.done():  # already ended (rolled back with a member through SQLAlchemy)
            return
        try:
            await on_driver(driver, "COMMIT")
        except BaseException as error:
            if driver.sqlite.in_transaction:
                driver.sqlite.rollback()
            _settle(open_group, error)
            if not isinstance(error, Exception):
                raise
            return
        open_group.committed.set_result(None)
        self.checkpointer.after_commit(writers.lock, open_group.members)


class GroupedWrite:
    """One grouped write: the writer lock, in the open group's transaction (the module's rule for a
    member's failure). Leaving the block releases the lock and waits for the group's commit. A block
    that ran SQLAlchemy statements ends the group's transaction through SQLAlchemy (committing or
    rolling back every member's work), since SQLAlchemy's own bookkeeping must end with it.

    A class, not a generator-based context manager: a send enters one per request, and generators
    cost measurably more (docs/performance.md).
    """

    __slots__ = ("_changes", "_connection", "_driver", "_group", "_writers", "_writes")

    def __init__(self, writes: SqliteWrites) -> None:
        self._writes = writes

    async def __aenter__(self) -> AsyncConnection:
        writes = self._writes
        writers = self._writers = writes._current()
        await writers.lock.acquire()
        try:
            connection = self._connection = await writes._connection(writers)
            driver = self._driver = driver_of(connection)
            self._group = await writes._join_group(writers, driver)
            self._changes = driver.sqlite.total_changes  # rows changed before this block
        except BaseException:
            writers.lock.release()
            raise
        return connection

    async def __aexit__(self, kind: Any, error: BaseException | None, traceback: Any) -> bool:
        connection, driver, group = self._connection, self._driver, self._group
        try:
            if error is not None:
                if connection.in_transaction():
                    await connection.rollback()
                elif driver.sqlite.total_changes != self._changes:
                    driver.sqlite.rollback()
                else:
                    return False  # it changed nothing: the group goes on
                rolled_back = RuntimeError("rolled back with another write")
                _settle(group, OperationalError("ROLLBACK", None, rolled_back))
                return False
            if connection.in_transaction():
                try:
                    await connection.commit()
                except BaseException as commit_error:
                    _settle(group, commit_error)
                    raise
                _settle(group, None)
        finally:
            self._writers.lock.release()
        # Out of the lock (the group's commit needs it); shielded: the commit is every member's.
        await asyncio.shield(group.committed)
        return False


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


def _settle(group: _Group, error: BaseException | None) -> None:
    if group.committed.done():
        return
    if error is None:
        group.committed.set_result(None)
        return
    group.committed.set_exception(
        error if isinstance(error, Exception) else OperationalError("COMMIT", None, RuntimeError(repr(error)))
    )
    group.committed.exception()  # retrieved here: each member re-raises it


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
