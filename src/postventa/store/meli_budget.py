"""Mercado Libre's call budget in the database: a `limits` storage, for every process of an
application to share one budget when no Redis is configured (meli/pacing.py).

A storage of `limits`' own kind (registered under `async+postventa-sql` as `limits` registers custom
storages), so the budget runs the same moving-window strategy on memory, Redis and the database:

- the moving window (`acquire_entry`): one row per reserved block in `meli_call_window`. Reserving
  is one write transaction: on PostgreSQL an advisory lock on the key serialises it (a count then
  an insert is only atomic under one), on SQLite the write transaction's own lock does. Blocks of
  calls keep this to one transaction per several calls;
- counters that expire (`incr`, `get`, `get_expiry`): one row per key in `meli_call_counters`,
  counted by one atomic upsert (the cool-down after a 429).

On SQLite its writes take the process's writer lock, so a call made while the same task holds a
write transaction would wait for itself: there the wiring keeps the budget in memory (one process
serves a SQLite database); the storage itself works on both databases.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, ClassVar

from limits.aio.storage import MovingWindowSupport, Storage
from sqlalchemy import case, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.store.engine import Database
from postventa.store.tables import meli_call_counters, meli_call_window

STALE_AFTER_SECONDS = 3600  # rows of keys no longer used are swept once this old
SWEEP_EVERY_RESERVATIONS = 200
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:lock_id)")


class SqlBudgetStorage(Storage, MovingWindowSupport):
    """`limits`' moving window and expiring counters, in this project's database."""

    STORAGE_SCHEME: ClassVar[list[str] | None] = ["async+postventa-sql"]  # type: ignore[misc]

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = True, *, database: Database, **options: Any
    ) -> None:
        """`database` holds the tables (`storage_from_string("async+postventa-sql://", database=...)`
        builds one too). Errors are wrapped in `limits`' StorageError by default: the caller tells
        "the budget cannot be checked" from a fault of its own."""
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.database = database
        self._reservations = 0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (SQLAlchemyError, OSError, TimeoutError)

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Add `amount` calls now unless that would put more than `limit` in the last `expiry` seconds."""
        if amount > limit:
            return False
        now = time.time()
        since = now - expiry
        window = meli_call_window
        async with self.database.transaction(write=True) as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(_ADVISORY_LOCK, {"lock_id": _lock_id(key)})
            await connection.execute(delete(window).where(window.c.key == key, window.c.taken_at <= since))
            used = await connection.scalar(
                select(func.coalesce(func.sum(window.c.amount), 0)).where(
                    window.c.key == key, window.c.taken_at > since
                )
            )
            if int(used or 0) + amount > limit:
                return False
            await connection.execute(window.insert().values(key=key, taken_at=now, amount=amount))
            await self._sweep_now_and_then(connection, now)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """(When the oldest call in the window was reserved, how many calls it holds); (now, 0) if none."""
        now = time.time()
        window = meli_call_window
        async with self.database.transaction() as connection:
            oldest, used = (
                await connection.execute(
                    select(func.min(window.c.taken_at), func.coalesce(func.sum(window.c.amount), 0)).where(
                        window.c.key == key, window.c.taken_at > now - expiry
                    )
                )
            ).one()
        return (float(oldest), int(used)) if oldest is not None else (now, 0)

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add `amount` to the key's counter (a new one, or one whose time ran out, starts at zero and
        runs `expiry` seconds); its count after. One statement, atomic on both databases."""
        now = time.time()
        counters = meli_call_counters
        async with self.database.statements() as connection:
            expired = counters.c.expires_at <= now
            statement = (
                _insert(connection, counters)
                .values(key=key, count=amount, expires_at=now + expiry)
                .on_conflict_do_update(
                    index_elements=["key"],
                    set_={
                        "count": case((expired, amount), else_=counters.c.count + amount),
                        "expires_at": case((expired, now + expiry), else_=counters.c.expires_at),
                    },
                )
                .returning(counters.c.count)
            )
            count = await connection.scalar(statement)
        return int(count or 0)

    async def get(self, key: str) -> int:
        """The key's count while its time runs, else 0."""
        counters = meli_call_counters
        async with self.database.transaction() as connection:
            count = await connection.scalar(
                select(counters.c.count).where(counters.c.key == key, counters.c.expires_at > time.time())
            )
        return int(count or 0)

    async def get_expiry(self, key: str) -> float:
        """When the key's counter runs out (epoch seconds); now when it has."""
        now = time.time()
        counters = meli_call_counters
        async with self.database.transaction() as connection:
            expires_at = await connection.scalar(
                select(counters.c.expires_at).where(counters.c.key == key, counters.c.expires_at > now)
            )
        return float(expires_at) if expires_at is not None else now

    async def check(self) -> bool:
        """Whether the database answers."""
        try:
            async with self.database.transaction() as connection:
                await connection.execute(select(1))
        except self.base_exceptions:
            return False
        return True

    async def reset(self) -> int | None:
        """Forget every window and counter; how many rows went."""
        async with self.database.transaction(write=True) as connection:
            windows = await connection.execute(delete(meli_call_window))
            counters = await connection.execute(delete(meli_call_counters))
        return int(windows.rowcount or 0) + int(counters.rowcount or 0)

    async def clear(self, key: str) -> None:
        """Forget the key's window and counter."""
        async with self.database.transaction(write=True) as connection:
            await connection.execute(delete(meli_call_window).where(meli_call_window.c.key == key))
            await connection.execute(delete(meli_call_counters).where(meli_call_counters.c.key == key))

    async def _sweep_now_and_then(self, connection: AsyncConnection, now: float) -> None:
        """Drop the rows of keys no longer used (each reservation only cleans its own key)."""
        self._reservations += 1
        if self._reservations % SWEEP_EVERY_RESERVATIONS:
            return
        stale = now - STALE_AFTER_SECONDS
        await connection.execute(delete(meli_call_window).where(meli_call_window.c.taken_at <= stale))
        await connection.execute(delete(meli_call_counters).where(meli_call_counters.c.expires_at <= stale))


def _insert(connection: AsyncConnection, table: Any) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _lock_id(key: str) -> int:
    """A stable 64-bit advisory lock id for the key."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
