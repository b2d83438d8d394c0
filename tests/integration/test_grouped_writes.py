"""Grouped writes on SQLite (`Database.transaction(write=True, grouped=True)`, used by sends):
simultaneous ones share one commit, each returns only once its work is committed, one refused
before it changed anything leaves the others be, one that fails after changing rows fails its whole
group, and a commit that fails fails every member of the group. Nothing failed is ever kept."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, func, insert, select, text
from sqlalchemy.exc import OperationalError

from postventa.store import sqlite_writes
from postventa.store.engine import Database
from postventa.store.prepared import Prepared

notes = Table("notes", MetaData(), Column("id", Integer, primary_key=True), Column("body", String))
INSERT = Prepared(insert(notes).values(body=bindparam("body")))


class Refused(Exception):
    pass


@pytest.fixture
async def database(tmp_path: Path) -> Any:
    database = Database(f"sqlite:///{tmp_path / 'grouped.db'}")
    async with database.transaction(write=True) as connection:
        await connection.run_sync(notes.metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements run straight on the driver (BEGIN, SAVEPOINT, COMMIT…), in order."""
    seen: list[str] = []
    original = sqlite_writes.on_driver

    async def recording(driver: Any, statement: str) -> None:
        seen.append(statement)
        await original(driver, statement)

    monkeypatch.setattr(sqlite_writes, "on_driver", recording)
    return seen


async def bodies(database: Database) -> list[str]:
    async with database.transaction() as connection:
        return sorted((await connection.execute(select(notes.c.body))).scalars())


async def grouped_insert(
    database: Database, body: str, *, fail: bool = False, refuse_first: bool = False
) -> None:
    async with database.transaction(write=True, grouped=True) as connection:
        if refuse_first:  # as a send refused by its checks: before any write
            raise Refused(body)
        await INSERT.execute(connection, {"body": body})
        if fail:
            raise Refused(body)


async def test_simultaneous_writes_share_commits_and_all_land(database, statements):
    await asyncio.gather(*(grouped_insert(database, f"n{number:02}") for number in range(40)))

    assert await bodies(database) == [f"n{number:02}" for number in range(40)]
    commits = statements.count("COMMIT")
    assert 1 <= commits < 40  # the forty shared a few commits
    assert statements.count("BEGIN IMMEDIATE") == commits


async def test_a_write_refused_before_changing_anything_leaves_the_others_be(database):
    results = await asyncio.gather(
        *(grouped_insert(database, f"n{number}", refuse_first=number % 3 == 0) for number in range(9)),
        return_exceptions=True,
    )

    assert [type(result).__name__ for result in results] == ["Refused", "NoneType", "NoneType"] * 3
    assert await bodies(database) == sorted(f"n{number}" for number in range(9) if number % 3)


async def test_a_write_failing_after_changing_rows_fails_its_group_and_keeps_nothing(database):
    # Its rows cannot be told from the others': the group's transaction is rolled back, and every
    # member that had not answered fails with it. Nothing of the group is kept; the next group is fine.
    results = await asyncio.gather(
        *(grouped_insert(database, f"n{number}", fail=number == 4) for number in range(9)),
        return_exceptions=True,
    )
    failed = [number for number, result in enumerate(results) if isinstance(result, Exception)]
    kept = await bodies(database)

    assert isinstance(results[4], Refused)
    assert all(isinstance(results[number], (Refused, OperationalError)) for number in failed)
    assert 4 in failed
    assert len(failed) > 1  # its group's other members failed with it
    assert kept == sorted(f"n{number}" for number in range(9) if number not in failed)
    await grouped_insert(database, "after")
    assert await bodies(database) == sorted([*kept, "after"])


async def test_a_write_returns_only_once_committed(database):
    done = asyncio.create_task(grouped_insert(database, "first"))
    await asyncio.sleep(0)  # its body ran; its group's commit has not yet

    assert not done.done()
    await done
    assert await bodies(database) == ["first"]


async def test_a_plain_write_commits_the_open_group_before_its_own(database):
    grouped = asyncio.create_task(grouped_insert(database, "grouped"))
    await asyncio.sleep(0)  # the group is open, its commit not yet run

    async with database.transaction(write=True) as connection:  # not grouped: its own transaction
        await connection.execute(insert(notes).values(body="plain"))
    await grouped

    assert await bodies(database) == ["grouped", "plain"]


async def test_a_failed_commit_fails_every_member_and_keeps_nothing(database, monkeypatch):
    original = sqlite_writes.on_driver

    async def commit_fails(driver: Any, statement: str) -> None:
        if statement == "COMMIT":
            raise OperationalError(statement, None, RuntimeError("disk I/O error"))
        await original(driver, statement)

    monkeypatch.setattr(sqlite_writes, "on_driver", commit_fails)
    results = await asyncio.gather(
        *(grouped_insert(database, f"n{number}") for number in range(5)), return_exceptions=True
    )
    monkeypatch.setattr(sqlite_writes, "on_driver", original)

    assert all(isinstance(result, OperationalError) for result in results), results
    assert await bodies(database) == []
    await grouped_insert(database, "after")  # the database goes on
    assert await bodies(database) == ["after"]


async def test_a_member_that_used_sqlalchemy_commits_the_group_through_it(database):
    async def through_sqlalchemy() -> None:
        async with database.transaction(write=True, grouped=True) as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('sqlalchemy')"))

    await asyncio.gather(grouped_insert(database, "prepared"), through_sqlalchemy())

    assert await bodies(database) == ["prepared", "sqlalchemy"]
    async with database.transaction() as connection:
        assert (await connection.execute(select(func.count()).select_from(notes))).scalar_one() == 2
