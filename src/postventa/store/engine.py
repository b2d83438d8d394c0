"""The database: engine per URL, SQLite tuned for one writer, transactions owned by the caller.

SQLite serialises writers. A write transaction takes the write lock when it begins
(`BEGIN IMMEDIATE`), so a send reads the conversation only once no other writer can change it;
without that, two writers that both read first would collide on upgrade. PostgreSQL gets row locks
(`SELECT ... FOR UPDATE`) on the conversation instead, in the queries themselves.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DatabaseError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import await_

from postventa.store import postgresql_connector, sqlite_driver
from postventa.store.sealing import TokenCipher, load_token_cipher

SQLITE_BUSY_TIMEOUT_MS = 30_000
DEFAULT_TOKEN_KEY_FILE = Path("var") / "token.key"
_BEGIN_OPTION = "postventa_sqlite_begin"


def async_url(database_url: str) -> URL:
    """sqlite:///x.db → sqlite+inloop:///x.db (store/sqlite_driver.py), postgresql://… →
    postgresql+asyncpg://…"""
    url = make_url(database_url)
    if url.drivername in ("sqlite", "sqlite+aiosqlite", f"sqlite+{sqlite_driver.DRIVER_NAME}"):
        return url.set(drivername=f"sqlite+{sqlite_driver.DRIVER_NAME}")
    if url.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        return url.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported database URL scheme '{url.drivername}': use sqlite:/// or postgresql://")


class Database:
    """One engine and the way to open transactions on it."""

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int = 10,
        token_cipher: TokenCipher | None = None,
        busy_timeout_seconds: float = SQLITE_BUSY_TIMEOUT_MS / 1000,
        commits_per_checkpoint: int = sqlite_driver.COMMITS_PER_CHECKPOINT,
    ) -> None:
        url = async_url(database_url)
        self.url = url
        self._token_cipher = token_cipher
        self._writer: _SqliteWriter | None = None
        self._checkpointer = sqlite_driver.Checkpointer(url.database or ":memory:", commits_per_checkpoint)
        self.is_sqlite = url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            path = url.database or ":memory:"
            self.engine = create_async_engine(
                url,
                async_creator=lambda: sqlite_driver.connect(path, busy_timeout_seconds=busy_timeout_seconds),
            )
            _configure_sqlite(self.engine)
        else:
            self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
        # PostgreSQL: the same pool, its connections in SQLAlchemy's autocommit, so that asyncpg's
        # own transactions (`transaction`) hold the statements of both ways of running them.
        self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._pool_size = pool_size
        # Engines whose connections carry session settings (`statements(settings=...)`), by settings.
        self._engines_with_settings: dict[frozenset[tuple[str, str]], AsyncEngine] = {}

    def transaction(
        self, *, write: bool = False, grouped: bool = False
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction that commits when the block ends and rolls back on any exception.

        `grouped` (SQLite; for blocks that run prepared statements only, as a send does): the block
        may share its commit with the other grouped writes of the moment (`_join_group`). Either
        way it returns only once its work is committed, and raises if it could not be.
        """
        if write and grouped and self.is_sqlite:
            return _GroupedWrite(self)
        return self._transaction(write=write)

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        if write and self.is_sqlite:
            async with self._sqlite_writer() as connection:
                driver = _in_loop_driver(connection)
                if driver is None:
                    async with connection.begin():
                        yield connection
                else:
                    await self._close_group(driver)
                    async with _sqlite_transaction(connection, driver):
                        yield connection
                self._checkpointer.after_commit(self._writer_lock())
            return
        if self.is_sqlite:
            async with self.engine.connect() as connection, connection.begin():
                yield connection
            return
        async with self._autocommit_engine.connect() as connection:
            async with postgresql_connector.transaction(_driver_connection(connection)):
                yield connection

    @asynccontextmanager
    async def statements(
        self, *, settings: Mapping[str, str] | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A connection whose statements each commit on their own (PostgreSQL's autocommit): for
        writes that are whole in one statement, it saves the transaction's `BEGIN` and `COMMIT`
        round trips. A pipelined run of statements (`Prepared.fetch_each`) is still one implicit
        transaction. On SQLite, a write transaction.

        `settings` (PostgreSQL): session settings the connection is opened with. Such connections
        are a small pool of their own, so a setting meant for some statements never reaches the
        others, and it costs no round trip (it travels in the connection's startup message). The
        settings are in the connection's execution options, under "session_settings".
        """
        if self.is_sqlite:
            async with self.transaction(write=True) as connection:
                yield connection
            return
        if settings:  # a pool whose connections are autocommit and carry the option already
            async with self._engine_with(settings).connect() as connection:
                yield connection
            return
        async with self._autocommit_engine.connect() as connection:
            yield await connection.execution_options(session_settings={})

    def _engine_with(self, settings: Mapping[str, str]) -> AsyncEngine:
        key = frozenset(settings.items())
        engine = self._engines_with_settings.get(key)
        if engine is None:
            # Two kept open: their one user so far, the delivery worker, claims and records outcomes
            # one batch at a time each. Autocommit for the whole pool, set once per connection rather
            # than on every checkout (and undone on every return): the worker takes one for each
            # claim and each batch of outcomes.
            engine = create_async_engine(
                self.url,
                pool_size=2,
                max_overflow=self._pool_size,
                isolation_level="AUTOCOMMIT",
                connect_args={"server_settings": dict(settings)},
            )
            engine = self._engines_with_settings[key] = engine.execution_options(
                session_settings=dict(settings)
            )
        return engine

    def _writer_lock(self) -> sqlite_driver.WriterLock:
        assert self._writer is not None
        return self._writer.lock

    async def _join_group(self, driver: sqlite_driver.InLoopConnection) -> _Group:
        """The open group, or a new one (its transaction begun, its commit scheduled). Holding the lock."""
        assert self._writer is not None
        writer = self._writer
        if writer.group is not None and not writer.group.committed.done():
            writer.group.members += 1
            return writer.group
        await _on_driver(driver, "BEGIN IMMEDIATE")
        group = writer.group = _Group(writer.loop.create_future(), members=1)
        # The commit runs once the tasks ready now have had their turn: the sends among them whose
        # requests were read meanwhile join this transaction instead of each committing its own.
        group.commit_task = writer.loop.create_task(self._commit_group(group, driver))
        return group

    async def _commit_group(self, group: _Group, driver: sqlite_driver.InLoopConnection) -> None:
        async with self._writer_lock():
            await self._close_group(driver, group)

    async def _close_group(self, driver: sqlite_driver.InLoopConnection, group: _Group | None = None) -> None:
        """Commit the open group (holding the lock), settling its members' wait either way."""
        assert self._writer is not None
        writer = self._writer
        open_group = writer.group
        if open_group is None or (group is not None and open_group is not group):
            return
        writer.group = None
        if open_group.committed.done():  # already ended (rolled back with a member through SQLAlchemy)
            return
        try:
            await _on_driver(driver, "COMMIT")
        except BaseException as error:
            if driver.sqlite.in_transaction:
                driver.sqlite.rollback()
            _settle(open_group, error)
            if not isinstance(error, Exception):
                raise
            return
        open_group.committed.set_result(None)
        self._checkpointer.after_commit(writer.lock, open_group.members)

    @asynccontextmanager
    async def _sqlite_writer(self) -> AsyncIterator[AsyncConnection]:
        """SQLite has one writer at a time: this process's writers queue on a lock, in order, rather
        than polling the database's lock (other processes still meet there), and share one
        connection, so a write costs no pool checkout."""
        writer = self._current_writer()
        async with writer.lock:
            yield await self._writer_connection(writer)

    def _current_writer(self) -> _SqliteWriter:
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer.loop is not loop:
            self._writer = _SqliteWriter(loop, sqlite_driver.WriterLock())
        return self._writer

    async def _writer_connection(self, writer: _SqliteWriter) -> AsyncConnection:
        """The writers' shared connection (opened anew if it was closed). Holding the lock."""
        connection = writer.connection
        if connection is None or connection.closed or connection.invalidated:
            connection = await self.engine.connect()
            await connection.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            writer.connection = connection
        return connection

    @property
    def token_cipher(self) -> TokenCipher:
        """Seals the Mercado Libre credentials kept in this database (default: the default key file)."""
        if self._token_cipher is None:
            self._token_cipher = load_token_cipher(None, DEFAULT_TOKEN_KEY_FILE)
        return self._token_cipher

    async def dispose(self) -> None:
        """Close every pooled connection."""
        group = self._writer.group if self._writer is not None else None
        if group is not None and group.commit_task is not None:
            await asyncio.gather(group.commit_task, return_exceptions=True)
        await self._checkpointer.wait()
        writer, self._writer = self._writer, None
        if writer is not None and writer.connection is not None and writer.loop is asyncio.get_running_loop():
            await writer.connection.close()
        for engine in self._engines_with_settings.values():
            await engine.dispose()
        await self.engine.dispose()


@asynccontextmanager
async def _sqlite_transaction(
    connection: AsyncConnection, driver: sqlite_driver.InLoopConnection
) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE and COMMIT straight on the driver: most writes run only prepared statements
    (store/prepared.py), and SQLAlchemy's own begin and commit (a greenlet hop each, events, a
    transaction object) cost more than the rest of a send's SQL. A statement run through SQLAlchemy
    inside the block joins this transaction (`_on_begin` sees it open) and is then committed or
    rolled back through SQLAlchemy, which ends its own bookkeeping with it."""
    await _on_driver(driver, "BEGIN IMMEDIATE")
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
        await _on_driver(driver, "COMMIT")
    except BaseException:
        if driver.sqlite.in_transaction:
            driver.sqlite.rollback()
        raise


async def _on_driver(driver: sqlite_driver.InLoopConnection, statement: str) -> None:
    try:
        try:
            driver.sqlite.execute(statement)
        except sqlite3.OperationalError as error:
            if not sqlite_driver.is_busy(error):
                raise
            await driver.when_not_busy(driver.sqlite.execute, statement)
    except sqlite3.OperationalError as error:  # as SQLAlchemy would have raised them
        raise OperationalError(statement, None, error) from error
    except sqlite3.Error as error:
        raise DatabaseError(statement, None, error) from error


@dataclass
class _Group:
    """Grouped writes sharing one SQLite transaction; `committed` settles when it commits or fails."""

    committed: asyncio.Future[None]
    commit_task: asyncio.Task[None] | None = None
    members: int = 0


@dataclass
class _SqliteWriter:
    """The write lock of one event loop, the connection its writers share, and the open group."""

    loop: asyncio.AbstractEventLoop
    lock: sqlite_driver.WriterLock
    connection: AsyncConnection | None = None
    group: _Group | None = None


class _GroupedWrite:
    """One grouped write: the writer lock, in the open group's transaction.

    A block that raises before changing anything (a refused send: every check comes before a
    send's first write) leaves the group as it was. One that raises after changing rows rolls back
    the whole group, whose other members then fail too (nothing of theirs answered yet, and
    nothing is kept): its changes cannot be told from theirs. That never happens to a send in
    practice (its writes cannot conflict under the lock); it replaced a savepoint per block, two
    statements of every send, 3% of its CPU (docs/performance.md). Leaving the block releases the
    lock and waits for the group's commit. A block that ran SQLAlchemy statements after all ends
    the group's transaction through SQLAlchemy (committing or rolling back every member's work),
    since SQLAlchemy's own bookkeeping must end with it.

    A class, not a generator-based context manager: a send enters one per request, and the three
    nested generators it replaces cost about 2% of a send's CPU.
    """

    __slots__ = ("_changes", "_connection", "_database", "_driver", "_group", "_plain", "_writer")

    def __init__(self, database: Database) -> None:
        self._database = database
        self._plain: AbstractAsyncContextManager[AsyncConnection] | None = None

    async def __aenter__(self) -> AsyncConnection:
        database = self._database
        writer = self._writer = database._current_writer()
        await writer.lock.acquire()
        try:
            connection = self._connection = await database._writer_connection(writer)
            driver = _in_loop_driver(connection)
            if driver is None:  # not this project's driver: a write of its own
                writer.lock.release()
                self._plain = database._transaction(write=True)
                return await self._plain.__aenter__()
            self._driver = driver
            self._group = await database._join_group(driver)
            self._changes = driver.sqlite.total_changes  # rows changed before this block
        except BaseException:
            if self._plain is None:
                writer.lock.release()
            raise
        return connection

    async def __aexit__(self, kind: Any, error: BaseException | None, traceback: Any) -> bool:
        if self._plain is not None:
            return bool(await self._plain.__aexit__(kind, error, traceback))
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
            self._writer.lock.release()
        # Out of the lock (the group's commit needs it); shielded: the commit is every member's.
        await asyncio.shield(group.committed)
        return False


def _driver_connection(connection: AsyncConnection) -> Any:
    return connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]


def _in_loop_driver(connection: AsyncConnection) -> sqlite_driver.InLoopConnection | None:
    driver = _driver_connection(connection)
    return driver if isinstance(driver, sqlite_driver.InLoopConnection) else None


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


# SQLSTATE classes and codes that say the database cannot serve now, not that the statement is wrong:
# connection exceptions, insufficient resources (too many clients), shutting down or starting up.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53")
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def database_unavailable(error: BaseException) -> bool:
    """Whether a database error means "try again shortly" (the database is away, full or locked)
    rather than a fault in the request or the code."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES
    # SQLite: still locked by another process when the busy timeout ran out.
    return (
        isinstance(original, sqlite3.OperationalError)
        and getattr(original, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
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

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        begin = connection.get_execution_options().get(_BEGIN_OPTION, "BEGIN")
        driver = connection.connection.driver_connection
        if isinstance(driver, sqlite_driver.InLoopConnection):
            if driver.sqlite.in_transaction:  # begun on the driver by Database.transaction
                return
            await_(_on_driver(driver, begin))  # straight to the driver: a statement's cost
        else:
            connection.exec_driver_sql(begin)
