"""INSERT … ON CONFLICT for SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def _dialect_insert(connection: AsyncConnection, table: Table) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def insert_ignoring_conflict(
    connection: AsyncConnection, table: Table, values: dict[str, Any], conflict_columns: list[str]
) -> None:
    """Insert the row unless one with the same conflict columns exists."""
    statement = (
        _dialect_insert(connection, table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict_columns)
    )
    await connection.execute(statement)


async def upsert(
    connection: AsyncConnection,
    table: Table,
    values: dict[str, Any],
    conflict_columns: list[str],
    update_values: dict[str, Any] | None = None,
) -> None:
    """Insert the row, or update the existing one with the same conflict columns."""
    statement = _dialect_insert(connection, table).values(**values)
    changes = (
        update_values
        if update_values is not None
        else {key: value for key, value in values.items() if key not in conflict_columns}
    )
    await connection.execute(statement.on_conflict_do_update(index_elements=conflict_columns, set_=changes))
