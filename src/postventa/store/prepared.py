"""The hot statements: built once with SQLAlchemy Core, run as plain SQL on the driver.

A send runs half a dozen small statements, a delivery about as many. On SQLite each takes a few
microseconds, and SQLAlchemy's execution around it (a greenlet hop, an execution context, a result
object) costs tens of times that; on PostgreSQL it costs more than asyncpg's own exchange with the
server (docs/performance.md). So these statements are written once in Core (one definition for
both databases: the claim's `WHERE` is the same text for both), compiled once per dialect through
SQLAlchemy's public compiler API (`compile()`, `positiontup`, `binds`, each type's processors), and
run on the transaction's driver connection by the backend's connector, the way procrastinate talks
to PostgreSQL: `sqlite_connector` (sqlite3) and `postgresql_connector` (asyncpg), each behind the
small `Connector` interface (store/connector.py). Everything else (schema, migrations, cold
paths) goes through SQLAlchemy's own execution.

The connectors raise SQLAlchemy's exception classes (IntegrityError, OperationalError…), so callers
handle one family of errors whichever way a statement ran.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement, Executable, Insert

from postventa.store import postgresql_connector, sqlite_connector
from postventa.store.connector import Connector

Processor = Callable[[Any], Any] | None


CONNECTORS: dict[str, Connector] = {
    "sqlite": sqlite_connector.CONNECTOR,
    "postgresql": postgresql_connector.CONNECTOR,
}


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
    """A hot statement's rows: named tuples, all fetched (a few rows each)."""

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
        return self.one()[0]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


@dataclass(frozen=True)
class _Form:
    """A statement compiled for one dialect, with what binding and reading its rows need."""

    sql: str
    connector: Connector
    parameter_names: tuple[str, ...]
    literals: dict[str, Any]  # values written into the statement itself (`status == "sending"`)
    # (position, processor) of the parameters and columns that have one: most have none, and these
    # run for every value of every hot statement.
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
        primary key is the row id): inside SQLite, RETURNING doubles the cost of a small insert.
        """
        prepared = cls(statement.returning(new_id))
        prepared._sqlite_insert = statement
        return prepared

    async def execute(self, connection: AsyncConnection, parameters: Mapping[str, Any]) -> Rows:
        """Run the statement in the connection's transaction (or, on a `Database.statements()`
        connection, as a statement of its own)."""
        form, values = self._bound(connection.dialect, parameters)
        driver = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
        returns_rows = form.row_type is not None
        try:
            raw = form.connector.run_now(driver, form.sql, values, returns_rows)
            if raw is None:
                raw = await form.connector.run(driver, form.sql, values, returns_rows=returns_rows)
        except DBAPIError as error:
            await _invalidate_if_gone(connection, error)
            raise
        if form.row_type is None:
            return PreparedRows([], raw.rowcount)
        if form.row_from_lastrowid:
            return PreparedRows([form.row_type(raw.lastrowid)], raw.rowcount)
        return PreparedRows(_rows(form, raw.rows), raw.rowcount)

    async def fetch_each(self, connection: AsyncConnection, many: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The statement once per parameter set, each returning exactly one row: those rows, in order.

        On PostgreSQL the executions are pipelined in one round trip; on SQLite they run one after
        another (there is no round trip to save).
        """
        if not many:
            return []
        bound = [self._bound(connection.dialect, parameters) for parameters in many]
        form = bound[0][0]
        try:
            records = await form.connector.fetch_each(
                _driver(connection), form.sql, [values for _form, values in bound]
            )
        except DBAPIError as error:
            await _invalidate_if_gone(connection, error)
            raise
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
        columns = list(_returned_columns(self.statement))
        from_lastrowid = dialect.name == "sqlite" and self._sqlite_insert is not None
        source = self._sqlite_insert if from_lastrowid and self._sqlite_insert is not None else self.statement
        compiled = source.compile(dialect=dialect)  # type: ignore[attr-defined]
        names = tuple(compiled.positiontup or ())
        binds = compiled.binds
        form = self._forms[dialect.name] = _Form(
            sql=compiled.string,
            connector=CONNECTORS[dialect.name],
            parameter_names=names,
            literals={name: bind.effective_value for name, bind in binds.items() if not bind.required},
            bind_steps=_steps(
                binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
            ),
            result_steps=_steps(
                column.type.dialect_impl(dialect).result_processor(dialect, None) for _key, column in columns
            ),
            row_type=namedtuple("PreparedRow", [key for key, _column in columns], rename=True)
            if columns
            else None,
            row_from_lastrowid=from_lastrowid,
        )
        return form


def _returned_columns(statement: Executable) -> Iterable[tuple[str, Any]]:
    """The (key, column) of each column the statement returns: a select's, or an insert's or
    update's RETURNING; none for a statement without rows."""
    exported = getattr(statement, "exported_columns", None)
    return exported.items() if exported is not None else ()


def _driver(connection: AsyncConnection) -> Any:
    """The driver's own connection under the transaction (sqlite3's or asyncpg's)."""
    return connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]


async def _invalidate_if_gone(connection: AsyncConnection, error: DBAPIError) -> None:
    """A connection the statement found gone is not handed out again (as SQLAlchemy does)."""
    if error.connection_invalidated and not connection.invalidated:
        await connection.invalidate(error)


def in_loop_sqlite(connection: AsyncConnection) -> Any:
    """The transaction's sqlite3 connection (store/sqlite_driver.py), or None on another database."""
    return _driver(connection) if connection.dialect.name == "sqlite" else None


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


def _steps(processors: Iterable[Processor]) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    return tuple((index, process) for index, process in enumerate(processors) if process is not None)
