"""INSERT … ON CONFLICT DO NOTHING for SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_ignoring_conflict(
    connection: AsyncConnection, table: Table, values: dict[str, Any], conflict_columns: list[str]
) -> None:
    """Insert the row unless one with the same conflict columns exists."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict_columns)
    await connection.execute(statement)
