"""The hot statements on SQLite: plain SQL on the in-loop sqlite3 connection (store/sqlite_driver.py).

A statement runs at once on the loop's thread (`run_now`); only a database locked by another
process is waited for, with `asyncio.sleep` (`run`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError

from postventa.store.connector import RawResult
from postventa.store.sqlite_driver import InLoopConnection, is_busy


class SqliteConnector:
    """`Connector` for sqlite3: the rows fetched at once (there is no network to stream from)."""

    def run_now(
        self, driver: InLoopConnection, sql: str, values: Sequence[Any], returns_rows: bool, /
    ) -> RawResult | None:
        """Run `sql` with `values` now; None if another process holds the lock (`run` waits)."""
        try:
            cursor = driver.sqlite.execute(sql, values)
            return RawResult(cursor.fetchall() if returns_rows else (), cursor.rowcount, cursor.lastrowid)
        except sqlite3.OperationalError as error:
            if is_busy(error):
                return None
            raise DBAPIError.instance(sql, values, error, sqlite3.Error, ismulti=False) from error
        except sqlite3.Error as error:
            raise DBAPIError.instance(sql, values, error, sqlite3.Error, ismulti=False) from error

    async def run(
        self, driver: InLoopConnection, sql: str, values: Sequence[Any], *, returns_rows: bool
    ) -> RawResult:
        """Run `sql` with `values`, waiting out another process's lock; SQLite's errors raised as
        SQLAlchemy's."""
        try:
            cursor = await driver.when_not_busy(driver.sqlite.execute, sql, values)
            rows = cursor.fetchall() if returns_rows else ()
        except sqlite3.Error as error:
            raise DBAPIError.instance(sql, values, error, sqlite3.Error, ismulti=False) from error
        return RawResult(rows, cursor.rowcount, cursor.lastrowid)

    async def fetch_each(
        self, driver: InLoopConnection, sql: str, many: Sequence[Sequence[Any]]
    ) -> Sequence[Sequence[Any]]:
        """One execution after another: on SQLite there is no round trip to save."""
        rows: list[Sequence[Any]] = []
        for values in many:
            raw = self.run_now(driver, sql, values, True)
            if raw is None:
                raw = await self.run(driver, sql, values, returns_rows=True)
            rows.extend(raw.rows)
        return rows


CONNECTOR = SqliteConnector()
