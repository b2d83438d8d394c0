"""Copying a whole database to another one: from the embedded SQLite to PostgreSQL, or back.

The target's schema is brought to this version's head first; then every table of the declared
schema is copied in foreign-key order, in batches, in one transaction on the target, so a copy
that fails leaves the target as empty as it was. The source is read in one snapshot (a
REPEATABLE READ transaction on PostgreSQL, one read transaction on SQLite). PostgreSQL id
sequences are then moved past the copied ids, so new rows do not collide with copied ones.

Mercado Libre credentials are copied as stored (sealed): the target must be served with the
token key the source was served with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Column, LargeBinary, Table, func, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.errors import invalid
from postventa.store.engine import Database
from postventa.store.migrate import current_revision, head_revision, upgrade
from postventa.store.tables import metadata

ROWS_PER_BATCH = 1_000
# Rows with binary columns (attachments up to 25 MiB each) are copied a few at a time.
BINARY_ROWS_PER_BATCH = 8


async def copy_database(source: Database, target: Database) -> dict[str, int]:
    """Copy every row of `source` into the empty `target`; returns the rows copied per table.

    Refuses (nothing written) when the source is not at this version's schema or when the target
    already holds rows in any table.
    """
    head = head_revision()
    if await current_revision(source) != head:
        raise invalid(
            "source_not_current", f"the source database is not at revision {head}: upgrade it first"
        )
    await _refuse_unless_empty(target)
    await upgrade(target)
    async with _snapshot(source) as reader, target.transaction(write=True) as writer:
        await _refuse_if_rows(writer)
        copied = {table.name: await _copy_table(reader, writer, table) for table in _data_tables()}
        if writer.dialect.name == "postgresql":
            await _reset_sequences(writer)
    return copied


async def _refuse_unless_empty(target: Database) -> None:
    # Checked before the schema is touched, so a refused copy writes nothing at all.
    async with target.engine.connect() as connection:
        existing = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        if existing:
            await _refuse_if_rows(connection, only=existing)


async def _refuse_if_rows(connection: AsyncConnection, *, only: set[str] | None = None) -> None:
    filled = []
    for table in _data_tables():
        if only is not None and table.name not in only:
            continue
        if (await connection.execute(select(func.count()).select_from(table))).scalar_one():
            filled.append(table.name)
    if filled:
        raise invalid(
            "target_not_empty",
            f"the target database already holds rows ({', '.join(filled)}): copy only into an empty database",
        )


@asynccontextmanager
async def _snapshot(source: Database) -> AsyncIterator[AsyncConnection]:
    async with source.engine.connect() as connection:
        if not source.is_sqlite:
            connection = await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            yield connection


async def _copy_table(reader: AsyncConnection, writer: AsyncConnection, table: Table) -> int:
    batch_rows = BINARY_ROWS_PER_BATCH if _has_binary(table) else ROWS_PER_BATCH
    query = select(table).order_by(*table.primary_key.columns).execution_options(yield_per=batch_rows)
    copied = 0
    result = await reader.stream(query)
    async for rows in result.partitions():
        batch: list[dict[str, Any]] = [dict(row._mapping) for row in rows]
        await writer.execute(insert(table), batch)
        copied += len(batch)
    expected = (await reader.execute(select(func.count()).select_from(table))).scalar_one()
    written = (await writer.execute(select(func.count()).select_from(table))).scalar_one()
    if not copied == expected == written:
        raise RuntimeError(
            f"{table.name}: {expected} rows in the source, {copied} read, {written} in the target"
        )
    return copied


def _has_binary(table: Table) -> bool:
    return any(isinstance(column.type, LargeBinary) for column in table.columns)


async def _reset_sequences(writer: AsyncConnection) -> None:
    # Copied rows kept their ids; each table's next generated id must come after the largest.
    for table in _data_tables():
        column: Column[Any] | None = table.autoincrement_column
        if column is None:
            continue
        sequence = (
            await writer.execute(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": column.name},
            )
        ).scalar()
        if sequence is None:
            continue
        next_id = (await writer.execute(select(func.coalesce(func.max(column), 0) + 1))).scalar_one()
        await writer.execute(
            text("SELECT setval(CAST(:sequence AS regclass), :next_id, false)"),
            {"sequence": sequence, "next_id": next_id},
        )


def _data_tables() -> list[Table]:
    """The tables a copy carries, in foreign-key order: all but the ephemeral ones (Mercado Libre's
    call budget of the last minute)."""
    return [table for table in metadata.sorted_tables if not table.info.get("ephemeral")]
