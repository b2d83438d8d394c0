"""The database: engine per URL, transactions owned by the caller.

SQLite's writes go through store/sqlite_writes.py (one writer at a time, `BEGIN IMMEDIATE`).
Writes that may share a commit with others of the moment (sends, delivery outcomes) go through
`Database.group_commit` (store/group_commit.py). PostgreSQL's transactions are asyncpg's own
(store/postgresql_connector.py), and its writers take row locks (`SELECT ... FOR UPDATE`) on the
conversation, in the queries themselves.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from postventa.store import postgresql_connector, sqlite_driver
from postventa.store.group_commit import (
    GroupCommit,
    Item,
    OpenTransaction,
    Result,
    WriteAlone,
    WriteMany,
    WriteOne,
    Writes,
)
from postventa.store.sealing import TokenCipher, load_token_cipher
from postventa.store.sqlite_writes import SqliteWrites, driver_of

SQLITE_BUSY_TIMEOUT_MS = 30_000
DEFAULT_TOKEN_KEY_FILE = Path("var") / "token.key"


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
        self._checkpointer = sqlite_driver.Checkpointer(url.database or ":memory:", commits_per_checkpoint)
        self._sqlite_writes: SqliteWrites | None = None
        self.is_sqlite = url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            path = url.database or ":memory:"
            self.engine = create_async_engine(
                url,
                async_creator=lambda: sqlite_driver.connect(path, busy_timeout_seconds=busy_timeout_seconds),
            )
            self._sqlite_writes = SqliteWrites(self.engine, self._checkpointer)
        else:
            self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
        # PostgreSQL: the same pool, its connections in SQLAlchemy's autocommit, so that asyncpg's
        # own transactions (`transaction`) hold the statements of both ways of running them.
        self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._pool_size = pool_size
        # Engines whose connections carry session settings (`statements(settings=...)`), by settings.
        self._engines_with_settings: dict[frozenset[tuple[str, str]], AsyncEngine] = {}

    def transaction(self, *, write: bool = False) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction that commits when the block ends and rolls back on any exception: a read, or
        with `write` a write (on SQLite it holds the write lock from its `BEGIN IMMEDIATE`)."""
        if write and self._sqlite_writes is not None:
            return self._sqlite_writes.transaction()
        return self._transaction()

    def group_commit(
        self,
        write_one: WriteOne[Item, Result],
        *,
        write_many: WriteMany[Item, Result] | None = None,
        open_transaction: OpenTransaction | None = None,
        group_on_postgresql: bool = True,
    ) -> Writes[Item, Result]:
        """Writes of `write_one` grouped several to a transaction (store/group_commit.py, with its rule
        for a member's failure), in write transactions or in `open_transaction`'s. With
        `group_on_postgresql` false, each write on PostgreSQL has a transaction of its own instead."""
        opener = open_transaction or partial(self.transaction, write=True)
        if not self.is_sqlite and not group_on_postgresql:
            return WriteAlone(opener, write_one)
        rows_changed = self._rows_changed if self.is_sqlite else None
        return GroupCommit(opener, write_one, write_many=write_many, rows_changed=rows_changed)

    @staticmethod
    def _rows_changed(connection: AsyncConnection) -> int:
        return driver_of(connection).sqlite.total_changes

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        if self.is_sqlite:  # a read
            async with self.engine.connect() as connection, connection.begin():
                yield connection
            return
        async with self._autocommit_engine.connect() as connection:
            driver = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
            async with postgresql_connector.transaction(driver):
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

    @property
    def token_cipher(self) -> TokenCipher:
        """Seals the Mercado Libre credentials kept in this database (default: the default key file)."""
        if self._token_cipher is None:
            self._token_cipher = load_token_cipher(None, DEFAULT_TOKEN_KEY_FILE)
        return self._token_cipher

    async def dispose(self) -> None:
        """Close every pooled connection."""
        if self._sqlite_writes is not None:
            await self._sqlite_writes.dispose()
        for engine in self._engines_with_settings.values():
            await engine.dispose()
        await self.engine.dispose()


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
