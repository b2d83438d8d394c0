"""The one small interface through which the hot statements reach a database's driver.

`store/prepared.py` builds each hot statement once and hands its SQL and positional values to the
backend's connector: `sqlite_connector` (sqlite3, on the event loop's thread) or
`postgresql_connector` (asyncpg). A connector runs plain SQL and raises SQLAlchemy's exception
classes, so callers meet the same errors as from SQLAlchemy's own execution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol


class RawResult(NamedTuple):
    """What a connector hands back: the rows as the driver gave them, and the cursor's counts (a
    named tuple: one is made per statement, and a dataclass costs several times more to make)."""

    rows: Sequence[Sequence[Any]]
    rowcount: int
    lastrowid: int | None = None


class Connector(Protocol):
    """How a backend runs plain SQL on its driver connection (sqlite3's or asyncpg's)."""

    def run_now(
        self, driver: Any, sql: str, values: Sequence[Any], returns_rows: bool, /
    ) -> RawResult | None:
        """Run `sql` at once if the driver answers without waiting (SQLite, unless another process
        holds the lock); None when it must be awaited (`run`). A coroutine per statement costs more
        than most of SQLite's statements."""
        ...

    async def run(self, driver: Any, sql: str, values: Sequence[Any], *, returns_rows: bool) -> RawResult:
        """Run `sql` once with positional `values`; its rows when `returns_rows`."""
        ...

    async def fetch_each(
        self, driver: Any, sql: str, many: Sequence[Sequence[Any]]
    ) -> Sequence[Sequence[Any]]:
        """Run `sql` once per set of values, each returning exactly one row: those rows, in order."""
        ...
