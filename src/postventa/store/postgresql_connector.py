"""The hot statements on PostgreSQL: plain SQL on the transaction's asyncpg connection.

asyncpg prepares each statement once per connection and caches it, so a hot statement is one
round trip with its values. Transactions are asyncpg's own (`transaction`, used by
`Database.transaction`), with SQLAlchemy's connection set to autocommit so that it never opens
one of its own: statements run through SQLAlchemy inside the block share the same transaction.
asyncpg's exceptions are raised as SQLAlchemy's classes (a unique violation is an IntegrityError),
with the original, and its SQLSTATE, as `orig`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc

from postventa.store.connector import RawResult

_ROW_COUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")  # a command tag's row count


class PostgresqlConnector:
    """`Connector` for asyncpg."""

    def run_now(
        self, driver: asyncpg.Connection, sql: str, values: Sequence[Any], returns_rows: bool, /
    ) -> RawResult | None:
        """Never: every statement is a round trip to the server (`run`)."""
        return None

    async def run(
        self, driver: asyncpg.Connection, sql: str, values: Sequence[Any], *, returns_rows: bool
    ) -> RawResult:
        """Run `sql` with `values` (one round trip); asyncpg's errors raised as SQLAlchemy's."""
        try:
            if returns_rows:
                records = await driver.fetch(sql, *values)
                return RawResult(records, len(records))
            status = await driver.execute(sql, *values)
        except Exception as error:
            raise as_sqlalchemy_error(sql, values, error) from error
        counted = _ROW_COUNT.match(status or "")
        return RawResult((), int(counted.group(1)) if counted else -1)

    async def fetch_each(
        self, driver: asyncpg.Connection, sql: str, many: Sequence[Sequence[Any]]
    ) -> Sequence[Sequence[Any]]:
        """The executions pipelined in one round trip (asyncpg's `fetchmany`)."""
        try:
            return list(await driver.fetchmany(sql, list(many)))
        except Exception as error:
            raise as_sqlalchemy_error(sql, many[0] if many else (), error) from error


CONNECTOR = PostgresqlConnector()


@asynccontextmanager
async def transaction(driver: asyncpg.Connection) -> AsyncIterator[None]:
    """BEGIN … COMMIT on the asyncpg connection, rolled back on any exception; errors of BEGIN and
    COMMIT raised as SQLAlchemy's."""
    try:
        begun = driver.transaction()
        await begun.start()
    except Exception as error:
        raise as_sqlalchemy_error("BEGIN", (), error) from error
    try:
        yield
    except BaseException:
        if not driver.is_closed():
            try:
                await begun.rollback()
            except Exception:  # the connection broke: the block's own error says more
                pass
        raise
    try:
        await begun.commit()
    except Exception as error:
        raise as_sqlalchemy_error("COMMIT", (), error) from error


# asyncpg's errors, most specific first, and the SQLAlchemy class each is raised as.
_CLASSES: tuple[tuple[type[BaseException], type[exc.DBAPIError]], ...] = (
    (asyncpg.IntegrityConstraintViolationError, exc.IntegrityError),
    (asyncpg.SyntaxOrAccessError, exc.ProgrammingError),
    (asyncpg.DataError, exc.DataError),
    (asyncpg.PostgresError, exc.DatabaseError),
    (asyncpg.InterfaceError, exc.InterfaceError),
)
# Errors that mean the connection is gone: the pool must not hand it out again.
_DISCONNECTS = (asyncpg.PostgresConnectionError, asyncpg.ConnectionDoesNotExistError, OSError)


def as_sqlalchemy_error(sql: str, values: Any, error: Exception) -> Exception:
    """asyncpg's (or the network's) exception as the SQLAlchemy class `connection.execute` raises."""
    if isinstance(error, exc.DBAPIError):
        return error
    if isinstance(error, _DISCONNECTS):
        return exc.OperationalError(sql, values, error, connection_invalidated=True)
    for driver_class, sqlalchemy_class in _CLASSES:
        if isinstance(error, driver_class):
            return sqlalchemy_class(sql, values, error)
    return error
