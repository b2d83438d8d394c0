"""The migrations build exactly the schema of store/tables.py, on SQLite and PostgreSQL alike.

Each test migrates a brand-new empty database of its own (a SQLite file, or a PostgreSQL database
created and dropped here), so the shared test databases play no part.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import LargeBinary, column, insert, inspect, table

from postventa.store.engine import Database
from postventa.store.messages import attachment_content
from postventa.store.migrate import alembic_config, current_revision, head_revision, upgrade
from postventa.store.tables import UtcDateTime, metadata
from tests.conftest import BACKENDS, POSTGRES_ADMIN_URL, _postgres_admin

COMPARE_OPTIONS = {"compare_type": True, "compare_server_default": True}


@pytest.fixture(params=BACKENDS)
async def empty_database(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_available: bool
) -> AsyncIterator[Database]:
    """A new, empty database of the backend, gone after the test."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
        yield database
        await database.dispose()
        return
    if not postgres_available:
        pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")
    name = f"postventa_migrations_{uuid.uuid4().hex[:12]}"
    await _postgres_admin(f'CREATE DATABASE "{name}"')
    database = Database(f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    try:
        yield database
    finally:
        await database.dispose()
        await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def schema_differences(database: Database) -> list[Any]:
    """What autogenerate would still write: [] when the database matches tables.py."""

    def compare(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts=COMPARE_OPTIONS)
        return list(compare_metadata(context, metadata))

    async with database.engine.connect() as connection:
        return await connection.run_sync(compare)


async def table_names(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_a_new_database_starts_without_a_revision(empty_database):
    assert await current_revision(empty_database) is None
    assert await table_names(empty_database) == set()


async def test_upgrade_builds_exactly_the_declared_schema(empty_database):
    await upgrade(empty_database)

    assert await schema_differences(empty_database) == []
    assert await table_names(empty_database) == set(metadata.tables) | {"alembic_version"}


async def test_upgrade_reaches_the_head_revision(empty_database):
    await upgrade(empty_database)

    head = head_revision()
    assert head is not None
    assert await current_revision(empty_database) == head


async def test_upgrading_twice_changes_nothing(empty_database):
    await upgrade(empty_database)
    await upgrade(empty_database)

    assert await current_revision(empty_database) == head_revision()
    assert await schema_differences(empty_database) == []


async def test_the_comparison_notices_a_schema_that_drifted(empty_database):
    """The check above is not vacuous: a missing index is reported."""
    await upgrade(empty_database)
    index = sorted(metadata.tables["orders"].indexes, key=lambda ix: str(ix.name))[0]
    async with empty_database.engine.begin() as connection:
        await connection.exec_driver_sql(f'DROP INDEX "{index.name}"')

    differences = await schema_differences(empty_database)

    assert [(kind, found.name) for kind, found in differences] == [("add_index", index.name)]


async def test_attachment_bytes_move_to_their_own_table_intact(empty_database):
    """0004 moves every attachment's bytes out of `attachments`, unchanged, on both databases."""

    def upgrade_to(revision: str) -> Any:
        def run(connection: Any) -> None:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

        return run

    content = bytes(range(256)) * 40
    at = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    # The tables as revision 0003 left them (store/tables.py describes the newest schema).
    accounts_0003 = table("accounts", column("id"), column("name"), column("created_at", UtcDateTime()))
    attachments_0003 = table(
        "attachments",
        *(column(name) for name in ("id", "account_id", "name", "extension", "size", "sha256")),
        column("content", LargeBinary()),
        column("created_at", UtcDateTime()),
    )
    async with empty_database.engine.begin() as connection:
        await connection.run_sync(upgrade_to("0003"))
        await connection.execute(insert(accounts_0003).values(id=1, name="A", created_at=at))
        await connection.execute(
            insert(attachments_0003).values(
                id=7,
                account_id=1,
                name="f",
                extension="pdf",
                size=len(content),
                sha256="x",
                content=content,
                created_at=at,
            )
        )
    await upgrade(empty_database)

    assert await schema_differences(empty_database) == []
    async with empty_database.transaction() as connection:
        assert await attachment_content(connection, 7) == content


async def test_every_partial_index_has_its_condition(empty_database):
    """The comparison above does not look at an index's WHERE: read each back from the database."""
    await upgrade(empty_database)
    async with empty_database.engine.connect() as connection:
        if empty_database.is_sqlite:
            rows = await connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
            )
        else:
            rows = await connection.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes")
        definitions = {name: definition or "" for name, definition in rows}
    dialect = "sqlite" if empty_database.is_sqlite else "postgresql"
    partial = [
        index
        for declared in metadata.tables.values()
        for index in declared.indexes
        if index.dialect_options[dialect]["where"] is not None
    ]

    assert [index.name for index in partial] == ["uq_messages_account_id_marketplace_message_id"]
    for index in partial:
        assert "WHERE" in definitions[str(index.name)].upper(), definitions[str(index.name)]
        assert "marketplace_message_id IS NOT NULL" in definitions[str(index.name)]
