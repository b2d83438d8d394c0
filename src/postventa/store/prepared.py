"""Statements of the send and delivery paths, built once, and run straight on the driver.

A send runs half a dozen small statements, a delivery about as many. On SQLite each takes a few
microseconds, but going through SQLAlchemy's execution (a greenlet hop, an execution context, a
result object) costs tens of times that; on PostgreSQL that execution costs more than asyncpg's
own exchange with the server (profiled in docs/performance.md). A `Prepared` statement is compiled
once per dialect by SQLAlchemy itself, with its bind and result processors; it then runs on the
transaction's own driver connection (sqlite3, or asyncpg with its statement cache) with those
processors applied, and on any other driver through `connection.execute` as any statement. One
definition, the same rows, and the errors SQLAlchemy would raise (IntegrityError, OperationalError…).
"""

from __future__ import annotations

import re
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement, Executable, Insert

from postventa.store.sqlite_driver import InLoopConnection, is_busy

Processor = Callable[[Any], Any] | None


class Rows(Protocol):
    """What callers use of a result: SQLAlchemy's `Result` has it, and so has `PreparedRows`."""

    @property
    def rowcount(self) -> int: ...

    def first(self) -> Any: ...

    def one(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...

    def scalar_one(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class PreparedRows:
    """Rows read on the SQLite fast path: named tuples, fetched at once (SQLite has no network)."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return self._rows

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise LookupError(f"expected exactly one row, got {len(self._rows)}")
        return self._rows[0]

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise LookupError(f"expected exactly one row, got {len(self._rows)}")
        return self._rows[0][0]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


@dataclass(frozen=True)
class _Form:
    sql: str
    parameter_names: tuple[str, ...]
    literals: dict[str, Any]  # values written into the statement itself (`status == "sending"`)
    # (position, processor) of the parameters and columns that have one: most have none, and a
    # send runs these for every value of half a dozen statements.
    bind_steps: tuple[tuple[int, Callable[[Any], Any]], ...]
    result_steps: tuple[tuple[int, Callable[[Any], Any]], ...]
    row_type: Any  # a namedtuple class, or None for statements without rows
    # An insert whose one row is its new row id, read from the cursor (`Prepared.inserting`).
    row_from_lastrowid: bool = False


class Prepared:
    """A statement built once; `await prepared.execute(connection, {...})` runs it."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._forms: dict[str, _Form] = {}
        self._sqlite_insert: Insert | None = None

    @classmethod
    def inserting(cls, statement: Insert, new_id: ColumnElement[Any]) -> Prepared:
        """`statement.returning(new_id)`, for a plain insert of one row (no ON CONFLICT) whose
        `new_id` is the table's integer primary key.

        On SQLite the insert runs without RETURNING and its row is the cursor's `lastrowid` (the
        primary key is the row id): RETURNING doubled the cost of a send's insert, 21 µs against
        10.6 µs (docs/performance.md). Elsewhere it runs as written.
        """
        prepared = cls(statement.returning(new_id))
        prepared._sqlite_insert = statement
        return prepared

    async def execute(self, connection: AsyncConnection, parameters: Mapping[str, Any]) -> Rows:
        adapter = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
        # SQLAlchemy's async adapters keep the driver's connection as `_connection` (its public
        # `driver_connection` is three calls away, for every statement).
        driver = getattr(adapter, "_connection", None)
        if not isinstance(driver, InLoopConnection):
            if isinstance(adapter, AsyncAdapt_asyncpg_connection):
                return await self._on_asyncpg(connection.dialect, adapter, parameters)
            result: Rows = await connection.execute(self.statement, dict(parameters))
            return result
        form, values = self._bound(connection.dialect, parameters)
        sqlite = driver.sqlite
        try:
            # Run at once; only a database locked by another process is waited for (a coroutine
            # per statement, when nothing waits, was a percent of a send).
            try:
                cursor = sqlite.execute(form.sql, values)
            except sqlite3.OperationalError as error:
                if not is_busy(error):
                    raise
                cursor = await driver.when_not_busy(sqlite.execute, form.sql, values)
            if form.row_type is None:
                return PreparedRows([], cursor.rowcount)
            if form.row_from_lastrowid:
                return PreparedRows([form.row_type(cursor.lastrowid)], cursor.rowcount)
            return PreparedRows(_rows(form, cursor.fetchall()), cursor.rowcount)
        except sqlite3.Error as error:
            raise DBAPIError.instance(
                form.sql, values, error, sqlite3.Error, ismulti=False, dialect=connection.dialect
            ) from error

    async def _on_asyncpg(
        self, dialect: Dialect, adapter: AsyncAdapt_asyncpg_connection, parameters: Mapping[str, Any]
    ) -> Rows:
        form, values = self._bound(dialect, parameters)
        asyncpg: Any = adapter._connection
        try:
            if adapter._transaction is None:  # SQLAlchemy begins on its first statement: this may be it
                await adapter._start_transaction()  # type: ignore[no-untyped-call]
            if form.row_type is None:
                status = await asyncpg.execute(form.sql, *values)
                counted = _ROW_COUNT.match(status or "")
                return PreparedRows([], int(counted.group(1)) if counted else -1)
            records = await asyncpg.fetch(form.sql, *values)
        except Exception as error:
            raise _as_sqlalchemy_error(dialect, adapter, form.sql, values, error) from error
        return PreparedRows(_rows(form, records), len(records))

    async def fetch_each(self, connection: AsyncConnection, many: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The statement once per parameter set, each returning exactly one row: those rows, in order.

        On PostgreSQL the executions are pipelined in one round trip (asyncpg's `fetchmany`); elsewhere
        they run one after another.
        """
        adapter = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
        if not isinstance(adapter, AsyncAdapt_asyncpg_connection) or len(many) < 2:
            return [(await self.execute(connection, parameters)).one() for parameters in many]
        bound = [self._bound(connection.dialect, parameters) for parameters in many]
        form = bound[0][0]
        asyncpg: Any = adapter._connection
        try:
            if adapter._transaction is None:
                await adapter._start_transaction()  # type: ignore[no-untyped-call]
            records = await asyncpg.fetchmany(form.sql, [values for _form, values in bound])
        except Exception as error:
            raise _as_sqlalchemy_error(connection.dialect, adapter, form.sql, bound[0][1], error) from error
        if len(records) != len(many):
            raise LookupError(f"expected one row per execution, got {len(records)} for {len(many)}")
        return _rows(form, records)

    def _bound(self, dialect: Dialect, parameters: Mapping[str, Any]) -> tuple[_Form, list[Any]]:
        form = self._forms.get(dialect.name) or self._compile(dialect)
        given = {**form.literals, **parameters} if form.literals else parameters
        values = [given[name] for name in form.parameter_names]
        for index, process in form.bind_steps:
            values[index] = process(values[index])
        return form, values

    def _compile(self, dialect: Dialect) -> _Form:
        compiled: Any = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        columns = compiled._result_columns
        from_lastrowid = dialect.name == "sqlite" and self._sqlite_insert is not None
        if from_lastrowid:  # the same insert and row, the row without RETURNING
            compiled = self._sqlite_insert.compile(dialect=dialect)  # type: ignore[union-attr]
        names = tuple(compiled.positiontup or ())
        binds = compiled._bind_processors
        form = self._forms[dialect.name] = _Form(
            sql=compiled.string,
            parameter_names=names,
            literals={
                name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
            },
            bind_steps=_steps(binds.get(name) for name in names),
            result_steps=_steps(column.type._cached_result_processor(dialect, None) for column in columns),
            row_type=namedtuple("PreparedRow", [column.keyname for column in columns], rename=True)
            if columns
            else None,
            row_from_lastrowid=from_lastrowid,
        )
        return form


_ROW_COUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")  # a command tag, as SQLAlchemy reads it


def _rows(form: _Form, raw_rows: Iterable[Any]) -> list[Any]:
    make = form.row_type._make
    if not form.result_steps:
        return [make(raw) for raw in raw_rows]
    rows = []
    for raw in raw_rows:
        row = list(raw)
        for index, process in form.result_steps:
            row[index] = process(row[index])
        rows.append(make(row))
    return rows


def _as_sqlalchemy_error(
    dialect: Dialect, adapter: AsyncAdapt_asyncpg_connection, sql: str, values: list[Any], error: Exception
) -> Exception:
    """asyncpg's exception as SQLAlchemy raises it from `connection.execute`: its adapter's DB-API
    form (asyncpg's UniqueViolationError → IntegrityError), wrapped in SQLAlchemy's class."""
    try:
        adapter._handle_exception(error)
    except Exception as dbapi_error:
        dbapi = dialect.loaded_dbapi
        wrapped = DBAPIError.instance(sql, values, dbapi_error, dbapi.Error, ismulti=False, dialect=dialect)
        return wrapped
    return error


def _steps(processors: Iterable[Processor]) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    return tuple((index, process) for index, process in enumerate(processors) if process is not None)


def in_loop_sqlite(connection: AsyncConnection) -> InLoopConnection | None:
    """The transaction's in-loop SQLite driver connection, or None on any other database."""
    driver = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    return driver if isinstance(driver, InLoopConnection) else None
