"""SQLite for SQLAlchemy's asyncio engine, run on the event loop's own thread.

aiosqlite sends every statement to a thread of its own and back: a send is a dozen statements of
a few microseconds each, and each round trip costs far more than the statement (profiled in
docs/performance.md). This driver runs each statement at once, on the caller's thread, the way a
plain `sqlite3` program would. It is a dialect of its own, `sqlite+inloop` (`InLoopSQLiteDialect`,
registered with SQLAlchemy's dialect registry): SQLAlchemy's pysqlite dialect for the SQL, and
SQLAlchemy's generic asyncio adapter (`sqlalchemy.connectors.asyncio`) around a connection that
offers the asyncio DB-API interface that adapter is written for.

Nothing may block the loop for long, so the connection never waits inside SQLite: its busy
timeout is 0, and a statement that finds the database locked by another process (SQLITE_BUSY) is
tried again after an `asyncio.sleep`, until `busy_timeout_seconds` have passed. Retrying is safe:
a statement refused with SQLITE_BUSY did nothing. Within one process, write transactions queue on
an asyncio lock instead (store/engine.py), so they do not poll each other.

The write-ahead log's checkpoints (copying the log into the database, with an fsync) are the one
slow thing SQLite does on a commit; connections turn them off (`wal_autocheckpoint=0`) and a
`Checkpointer` runs them on a thread every so many commits, between two writes.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import time
from collections.abc import Sequence
from typing import Any, Self

from sqlalchemy import pool
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection, AsyncAdapt_dbapi_module
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.base import SQLiteExecutionContext
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.util.concurrency import await_

# Plain SQLITE_BUSY and BUSY_RECOVERY clear by themselves; BUSY_SNAPSHOT (a stale read snapshot
# asked to write) never does, so it is raised at once.
_RETRIED_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_BUSY | (1 << 8)})
FIRST_RETRY_SECONDS = 0.0005
# SQLite checkpoints every 1,000 log pages by default. Counted in writes here (a send writes about
# five pages, fewer in a group): each checkpoint copies the pages changed since the last one once,
# so a longer interval copies the often-changed ones (index edges, the table's last page) less
# often; a much longer one lengthens the pauses (docs/performance.md has the measurements).
COMMITS_PER_CHECKPOINT = 1000
LONGEST_RETRY_SECONDS = 0.05
DEFAULT_BUSY_TIMEOUT_SECONDS = 30.0
DRIVER_NAME = "inloop"


class InLoopCursor:
    """A sqlite3 cursor behind the awaitable methods SQLAlchemy calls."""

    def __init__(self, connection: InLoopConnection) -> None:
        self._owner = connection
        self._cursor = connection.sqlite.cursor()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, operation: str, parameters: Any = ()) -> Self:
        await self._owner.when_not_busy(self._cursor.execute, operation, parameters)
        return self

    async def executemany(self, operation: str, seq_of_parameters: Any) -> Self:
        await self._owner.when_not_busy(self._cursor.executemany, operation, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> Sequence[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def setinputsizes(self, *_sizes: Any) -> None:
        return None

    async def nextset(self) -> None:
        return None


class InLoopConnection:
    """A sqlite3 connection (autocommit: BEGIN is emitted explicitly) with the awaitable methods of
    SQLAlchemy's asyncio DB-API interface (`sqlalchemy.connectors.asyncio.AsyncIODBAPIConnection`)."""

    def __init__(self, sqlite: sqlite3.Connection, busy_timeout_seconds: float) -> None:
        self.sqlite = sqlite
        self.busy_timeout_seconds = busy_timeout_seconds
        self.closed = False
        # What the dialect's begin sends: the writers' shared connection takes the write lock at
        # once (store/sqlite_writes.py), readers take none until they read.
        self.begin_statement = "BEGIN"

    @property
    def isolation_level(self) -> str | None:
        return self.sqlite.isolation_level

    def cursor(self) -> InLoopCursor:
        return InLoopCursor(self)

    async def commit(self) -> None:
        await self.when_not_busy(self.sqlite.commit)

    async def rollback(self) -> None:
        self.sqlite.rollback()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sqlite.close()

    async def when_not_busy(self, run: Any, *args: Any) -> Any:
        """Run `run(*args)`; while SQLite answers SQLITE_BUSY, wait without blocking the loop."""
        deadline: float | None = None
        pause = FIRST_RETRY_SECONDS
        while True:
            try:
                return run(*args)
            except sqlite3.OperationalError as error:
                if not is_busy(error):
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self.busy_timeout_seconds
                if now >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_RETRY_SECONDS)


def is_busy(error: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (`when_not_busy` retries it)."""
    return getattr(error, "sqlite_errorcode", None) in _RETRIED_CODES


async def connect(path: str, *, busy_timeout_seconds: float) -> InLoopConnection:
    """Open `path` (autocommit, busy timeout 0: waits happen in `when_not_busy`)."""
    sqlite = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    return InLoopConnection(sqlite, busy_timeout_seconds)


class InLoopDBAPI(AsyncAdapt_dbapi_module):
    """The dialect's DB-API module: sqlite3's names and exceptions, and `connect` through the
    engine's `async_creator` (store/engine.py opens connections with their busy timeout)."""

    def __init__(self) -> None:
        super().__init__(sqlite3, dbapi_module=sqlite3)
        self.paramstyle = "qmark"
        for name in (
            *("Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError"),
            *("IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError"),
            *("sqlite_version", "sqlite_version_info", "PARSE_COLNAMES", "PARSE_DECLTYPES", "Binary"),
        ):
            setattr(self, name, getattr(sqlite3, name))

    def connect(self, *args: Any, **kwargs: Any) -> InLoopAdaptedConnection:
        """Open a connection: the engine's `async_creator`, or `connect(path)` with the default
        busy timeout."""
        creator = kwargs.pop("async_creator_fn", None)
        if creator is None:
            path = args[0] if args else kwargs["database"]
            creator = lambda: connect(path, busy_timeout_seconds=DEFAULT_BUSY_TIMEOUT_SECONDS)  # noqa: E731
        return InLoopAdaptedConnection(self, await_(creator()))


class InLoopAdaptedConnection(AsyncAdapt_dbapi_connection):
    """SQLAlchemy's generic asyncio adapter around an `InLoopConnection`, with the two things the
    pysqlite dialect asks of a sqlite3 connection besides the DB-API: its isolation level and
    `create_function`."""

    __slots__ = ()

    @property
    def isolation_level(self) -> str | None:
        return self.driver_connection.sqlite.isolation_level  # type: ignore[no-any-return]

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self.driver_connection.sqlite.isolation_level = value

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.driver_connection.sqlite.create_function(*args, **kwargs)


class InLoopExecutionContext(SQLiteExecutionContext):
    """Streamed results (`AsyncConnection.stream`, as `postventa db copy` reads) on the adapter's
    server-side cursor."""

    def create_server_side_cursor(self) -> Any:
        """The adapter's cursor that fetches as it is read."""
        return self.root_connection.connection.dbapi_connection.cursor(server_side=True)  # type: ignore[union-attr]


class InLoopSQLiteDialect(SQLiteDialect_pysqlite):
    """`sqlite+inloop://`: SQLAlchemy's pysqlite dialect, its statements run on the event loop's
    thread through SQLAlchemy's asyncio adapter (`create_async_engine`)."""

    driver = DRIVER_NAME
    is_async = True
    supports_statement_cache = True
    supports_server_side_cursors = True
    execution_ctx_cls = InLoopExecutionContext

    @classmethod
    def import_dbapi(cls) -> InLoopDBAPI:
        """sqlite3, as an asyncio DB-API module."""
        return InLoopDBAPI()

    def do_begin(self, dbapi_connection: Any) -> None:
        """BEGIN (the connection's `begin_statement`) on the driver, unless a transaction was begun
        there already: sqlite3 runs in autocommit mode, so nothing else would open one."""
        driver: InLoopConnection = dbapi_connection.driver_connection
        if not driver.sqlite.in_transaction:
            await_(driver.when_not_busy(driver.sqlite.execute, driver.begin_statement))

    def get_driver_connection(self, connection: Any) -> InLoopConnection:
        """The `InLoopConnection` inside SQLAlchemy's adapter (what `driver_connection` gives)."""
        return connection.driver_connection  # type: ignore[no-any-return]

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        """The asyncio queue pool for a file; one shared connection for an in-memory database."""
        if url.database and url.database != ":memory:":
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool


registry.register(f"sqlite.{DRIVER_NAME}", __name__, "InLoopSQLiteDialect")


BLOB_CHUNK_BYTES = 1 << 20


def write_blob(connection: InLoopConnection, table: str, column: str, rowid: int, content: bytes) -> None:
    """Write `content` into a row's blob (created zero-filled, of its size) in chunks, without a copy.

    Runs in the caller's transaction; SQLite's incremental blob I/O writes the pages directly.
    """
    view = memoryview(content)
    with connection.sqlite.blobopen(table, column, rowid) as blob:
        for start in range(0, len(view), BLOB_CHUNK_BYTES):
            blob.write(view[start : start + BLOB_CHUNK_BYTES])


class WriterLock:
    """The lock this process's SQLite writers take: whoever asks while it is free gets it.

    asyncio.Lock hands a released lock to the longest waiter, which takes it one turn of the event
    loop later; meanwhile everyone else who asks queues behind. After a checkpoint held writers off
    for a few milliseconds the queue it built drained one writer per turn of a busy loop while new
    writers kept joining it: a convoy that held some sends back for long under load. A write seldom
    waits while holding the lock (its statements run on the loop's thread, without yielding), so a
    woken waiter that lost the lock to a newcomer mostly finds it free again at its turn. Mutual
    exclusion is the same; only the order differs.
    """

    def __init__(self) -> None:
        self._locked = False
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def locked(self) -> bool:
        return self._locked

    async def acquire(self) -> None:
        while self._locked:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if self._waiters and waiter in self._waiters:
                    self._waiters.remove(waiter)
                if waiter.done() and not waiter.cancelled() and not self._locked:
                    self._wake_one()  # it was woken and will not use its turn: pass it on
                raise
        self._locked = True

    def release(self) -> None:
        self._locked = False
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *_exc: object) -> None:
        self.release()


class Checkpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on a worker thread every `every` commits, holding this
    process's write lock meanwhile.

    The event loop goes on serving (sqlite3 releases the GIL inside SQLite); only this process's
    writers wait, a few milliseconds. Holding them off is what lets a checkpoint catch up with the
    log, so that the next write starts the log over: a checkpoint running beside a steady stream of
    writes never reaches the log's end, and the log would grow for as long as the stream lasts. A
    process that stops before the next one leaves the log to the last connection's close, which
    checkpoints it.
    """

    def __init__(self, path: str, every: int = COMMITS_PER_CHECKPOINT) -> None:
        self.path = path
        self.every = every
        self._commits = 0
        self._running: asyncio.Task[None] | None = None

    def after_commit(self, write_lock: WriterLock, writes: int = 1) -> None:
        """Count `writes` committed writes (a group's members count one each: what the log holds
        grows with them, not with the commits)."""
        self._commits += writes
        if self._commits < self.every or self.path == ":memory:":
            return
        if self._running is not None and not self._running.done():
            return
        self._commits = 0
        self._running = asyncio.get_running_loop().create_task(self._checkpoint_holding(write_lock))

    async def wait(self) -> None:
        """Let a running checkpoint finish (before the connections close)."""
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)

    async def _checkpoint_holding(self, write_lock: WriterLock) -> None:
        async with write_lock:
            await asyncio.to_thread(self._checkpoint)

    def _checkpoint(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError:
            pass  # busy (another process's checkpoint or log reset): the next one catches up
        finally:
            connection.close()
