"""The database: engine per URL, SQLite tuned for one writer, transactions owned by the caller.

SQLite serialises writers. A write transaction takes the write lock when it begins
(`BEGIN IMMEDIATE`), so a send reads the conversation only once no other writer can change it;
without that, two writers that both read first would collide on upgrade. PostgreSQL gets row locks
(`SELECT ... FOR UPDATE`) on the conversation instead, in the queries themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from postventa.store import sqlite_driver
from postventa.store.sealing import TokenCipher, load_token_cipher

SQLITE_BUSY_TIMEOUT_MS = 30_000
DEFAULT_TOKEN_KEY_FILE = Path("var") / "token.key"
_BEGIN_OPTION = "postventa_sqlite_begin"


def async_url(database_url: str) -> URL:
    """sqlite:///x.db → sqlite+aiosqlite:///x.db, postgresql://… → postgresql+asyncpg://…"""
    url = make_url(database_url)
    if url.drivername in ("sqlite", "sqlite+aiosqlite"):
        return url.set(drivername="sqlite+aiosqlite")
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
        self._write_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
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

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits when the block ends and rolls back on any exception."""
        async with self._writer_turn(write), self.engine.connect() as connection:
            if write and self.is_sqlite:
                await connection.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            async with connection.begin():
                yield connection
        if write and self.is_sqlite:
            self._checkpointer.after_commit()

    def _writer_turn(self, write: bool) -> AbstractAsyncContextManager[object]:
        """SQLite has one writer at a time: this process's writers queue here, in order, rather
        than polling the database's lock (other processes still meet at the lock)."""
        if not (write and self.is_sqlite):
            return nullcontext()
        loop = asyncio.get_running_loop()
        if self._write_lock is None or self._write_lock[0] is not loop:
            self._write_lock = (loop, asyncio.Lock())
        return self._write_lock[1]

    @property
    def token_cipher(self) -> TokenCipher:
        """Seals the Mercado Libre credentials kept in this database (default: the default key file)."""
        if self._token_cipher is None:
            self._token_cipher = load_token_cipher(None, DEFAULT_TOKEN_KEY_FILE)
        return self._token_cipher

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self._checkpointer.wait()
        await self.engine.dispose()


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
        connection.exec_driver_sql(connection.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))
