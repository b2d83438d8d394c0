"""Statements of the send path, built once, and on SQLite run straight on the driver.

A send runs half a dozen small statements. On SQLite each takes a few microseconds, but going
through SQLAlchemy's execution (a greenlet hop, an execution context, a result object) costs
tens of times that (profiled in docs/performance.md). A `Prepared` statement is compiled once per
dialect by SQLAlchemy itself, with its bind and result processors; on the in-loop SQLite driver
it then runs on the transaction's own sqlite3 connection with those processors applied, and
elsewhere (PostgreSQL) through `connection.execute` as any statement. One definition, two ways
to run it, the same rows.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from postventa.store.sqlite_driver import InLoopConnection

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
class _SqliteForm:
    sql: str
    parameter_names: tuple[str, ...]
    literals: dict[str, Any]  # values written into the statement itself (`status == "sending"`)
    # (position, processor) of the parameters and columns that have one: most have none, and a
    # send runs these for every value of half a dozen statements.
    bind_steps: tuple[tuple[int, Callable[[Any], Any]], ...]
    result_steps: tuple[tuple[int, Callable[[Any], Any]], ...]
    row_type: Any  # a namedtuple class, or None for statements without rows


class Prepared:
    """A statement built once; `await prepared.execute(connection, {...})` runs it."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._sqlite: _SqliteForm | None = None

    async def execute(self, connection: AsyncConnection, parameters: Mapping[str, Any]) -> Rows:
        driver = in_loop_sqlite(connection)
        if driver is None:
            result: Rows = await connection.execute(self.statement, dict(parameters))
            return result
        form = self._sqlite or self._compile(connection.dialect)
        given = {**form.literals, **parameters} if form.literals else parameters
        values = [given[name] for name in form.parameter_names]
        for index, process in form.bind_steps:
            values[index] = process(values[index])
        cursor = driver.sqlite.cursor()
        try:
            await driver.when_not_busy(cursor.execute, form.sql, values)
            if form.row_type is None:
                return PreparedRows([], cursor.rowcount)
            make = form.row_type._make
            if not form.result_steps:
                return PreparedRows([make(raw) for raw in cursor.fetchall()], cursor.rowcount)
            rows = []
            for raw in cursor.fetchall():
                row = list(raw)
                for index, process in form.result_steps:
                    row[index] = process(row[index])
                rows.append(make(row))
            return PreparedRows(rows, cursor.rowcount)
        finally:
            cursor.close()

    def _compile(self, dialect: Dialect) -> _SqliteForm:
        compiled: Any = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        names = tuple(compiled.positiontup or ())
        binds = compiled._bind_processors
        columns = compiled._result_columns
        self._sqlite = _SqliteForm(
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
        )
        return self._sqlite


def _steps(processors: Iterable[Processor]) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    return tuple((index, process) for index, process in enumerate(processors) if process is not None)


def in_loop_sqlite(connection: AsyncConnection) -> InLoopConnection | None:
    """The transaction's in-loop SQLite driver connection, or None on any other database."""
    driver = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    return driver if isinstance(driver, InLoopConnection) else None
