"""The hot statements on SQLite: plain SQL on the in-loop sqlite3 connection (store/sqlite_driver.py).

A statement runs at once on the loop's thread; only a database locked by another process is
waited for, with `asyncio.sleep` (creating a coroutine per statement when nothing waits would cost
more than most of these statements).
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

    async def run(
        self, driver: InLoopConnection, sql: str, values: Sequence[Any], *, returns_rows: bool
    ) -> RawResult:
        """Run `sql` with `values`; SQLite's errors raised as SQLAlchemy's."""
        try:
            sqlite = driver.sqlite
            try:
                cursor = sqlite.execute(sql, values)
            except sqlite3.OperationalError as error:
                if not is_busy(error):
                    raise
                cursor = await driver.when_not_busy(sqlite.execute, sql, values)
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
            rows.extend((await self.run(driver, sql, values, returns_rows=True)).rows)
        return rows


CONNECTOR = SqliteConnector()
