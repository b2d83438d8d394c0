"""The database: engine per URL, SQLite tuned for one writer, transactions owned by the caller.

SQLite serialises writers. A write transaction takes the write lock when it begins
(`BEGIN IMMEDIATE`), so a send reads the conversation only once no other writer can change it;
without that, two writers that both read first would collide on upgrade. PostgreSQL gets row locks
(`SELECT ... FOR UPDATE`) on the conversation instead, in the queries themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

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
        self, database_url: str, *, pool_size: int = 10, token_cipher: TokenCipher | None = None
    ) -> None:
        url = async_url(database_url)
        self.url = url
        self._token_cipher = token_cipher
        self.is_sqlite = url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            _configure_sqlite(self.engine)
        else:
            self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits when the block ends and rolls back on any exception."""
        async with self.engine.connect() as connection:
            if write and self.is_sqlite:
                await connection.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            async with connection.begin():
                yield connection

    @property
    def token_cipher(self) -> TokenCipher:
        """Seals the Mercado Libre credentials kept in this database (default: the default key file)."""
        if self._token_cipher is None:
            self._token_cipher = load_token_cipher(None, DEFAULT_TOKEN_KEY_FILE)
        return self._token_cipher

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of the driver's implicit transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))
