"""Group commit (`Database.group_commit`, store/group_commit.py; used by sends on SQLite and by
delivery outcomes): simultaneous writes share commits, each returns only once its work is committed,
one refused before it changed anything leaves the others be, and when a group's transaction fails
(a member failing after changing rows, or the commit) its members are written again alone, so that
only a member that fails by itself fails. Nothing failed is ever kept, nothing is kept twice."""

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


class Notes:
    """Writes of notes through one group commit, as sends share theirs."""

    def __init__(self, database: Database) -> None:
        self.writes = database.group_commit(self._write)
        self.runs: list[str] = []

    async def _write(self, connection: Any, note: tuple[str, bool, bool]) -> str:
        body, fail, refuse_first = note
        self.runs.append(body)
        if refuse_first:  # as a send refused by its checks: before any write
            raise Refused(body)
        await INSERT.execute(connection, {"body": body})
        if fail:
            raise Refused(body)
        return body

    async def insert(self, body: str, *, fail: bool = False, refuse_first: bool = False) -> str:
        return await self.writes.write((body, fail, refuse_first))


@pytest.fixture
def notes_writes(database: Database) -> Notes:
    return Notes(database)


async def test_simultaneous_writes_share_commits_and_all_land(database, notes_writes, statements):
    results = await asyncio.gather(*(notes_writes.insert(f"n{number:02}") for number in range(40)))

    assert results == [f"n{number:02}" for number in range(40)]
    assert await bodies(database) == [f"n{number:02}" for number in range(40)]
    commits = statements.count("COMMIT")
    assert 1 <= commits < 40  # the forty shared a few commits
    assert statements.count("BEGIN IMMEDIATE") == commits


async def test_a_write_refused_before_changing_anything_leaves_the_others_be(database, notes_writes):
    results = await asyncio.gather(
        *(notes_writes.insert(f"n{number}", refuse_first=number % 3 == 0) for number in range(9)),
        return_exceptions=True,
    )

    assert [type(result).__name__ for result in results] == ["Refused", "str", "str"] * 3
    assert await bodies(database) == sorted(f"n{number}" for number in range(9) if number % 3)
    assert notes_writes.runs.count("n1") == 1  # the group was not written again


async def test_a_write_failing_after_changing_rows_fails_alone(database, notes_writes):
    # Its rows cannot be told from the others': the group's transaction is rolled back, and its
    # members are written again one per transaction. Only the bad one fails; nothing is kept twice.
    results = await asyncio.gather(
        *(notes_writes.insert(f"n{number}", fail=number == 4) for number in range(9)),
        return_exceptions=True,
    )

    assert isinstance(results[4], Refused)
    assert [result for number, result in enumerate(results) if number != 4] == [
        f"n{number}" for number in range(9) if number != 4
    ]
    assert await bodies(database) == sorted(f"n{number}" for number in range(9) if number != 4)
    assert notes_writes.runs.count("n3") == 2  # in the group, then alone


async def test_a_write_returns_only_once_committed(database, notes_writes):
    done = asyncio.create_task(notes_writes.insert("first"))
    await asyncio.sleep(0)  # handed in; its group not yet written

    assert not done.done()
    assert await done == "first"
    assert await bodies(database) == ["first"]


async def test_a_cancelled_caller_s_write_still_lands_with_its_group_once(database, notes_writes):
    # A caller gone (its client disconnected) does not take its write out of a group being formed.
    callers = [asyncio.create_task(notes_writes.insert(f"n{number}")) for number in range(4)]
    await asyncio.sleep(0)  # all four handed in
    callers[1].cancel()
    await notes_writes.writes.flush()

    assert callers[1].cancelled()
    assert [await caller for number, caller in enumerate(callers) if number != 1] == ["n0", "n2", "n3"]
    assert await bodies(database) == ["n0", "n1", "n2", "n3"]


async def test_a_cancelled_caller_s_write_is_written_again_alone_when_its_group_fails(database, notes_writes):
    callers = [
        asyncio.create_task(notes_writes.insert(f"n{number}", fail=number == 3)) for number in range(4)
    ]
    await asyncio.sleep(0)
    callers[1].cancel()
    await notes_writes.writes.flush()

    assert notes_writes.runs.count("n1") == 2  # in the group, then alone
    assert await bodies(database) == ["n0", "n1", "n2"]


async def test_grouped_and_plain_writes_both_land(database, notes_writes):
    grouped = asyncio.create_task(notes_writes.insert("grouped"))
    await asyncio.sleep(0)

    async with database.transaction(write=True) as connection:  # a transaction of its own
        await connection.execute(insert(notes).values(body="plain"))
    await grouped

    assert await bodies(database) == ["grouped", "plain"]


async def test_a_failed_commit_writes_each_member_again_alone(database, notes_writes, monkeypatch):
    original = sqlite_writes.on_driver
    failures = iter([True])  # the first commit fails, the rest succeed

    async def commit_fails_once(driver: Any, statement: str) -> None:
        if statement == "COMMIT" and next(failures, False):
            raise OperationalError(statement, None, RuntimeError("disk I/O error"))
        await original(driver, statement)

    monkeypatch.setattr(sqlite_writes, "on_driver", commit_fails_once)
    results = await asyncio.gather(*(notes_writes.insert(f"n{number}") for number in range(5)))

    assert results == [f"n{number}" for number in range(5)]
    assert await bodies(database) == [f"n{number}" for number in range(5)]  # each once


async def test_a_commit_that_always_fails_fails_every_member_and_keeps_nothing(
    database, notes_writes, monkeypatch
):
    original = sqlite_writes.on_driver

    async def commit_fails(driver: Any, statement: str) -> None:
        if statement == "COMMIT":
            raise OperationalError(statement, None, RuntimeError("disk I/O error"))
        await original(driver, statement)

    monkeypatch.setattr(sqlite_writes, "on_driver", commit_fails)
    results = await asyncio.gather(
        *(notes_writes.insert(f"n{number}") for number in range(5)), return_exceptions=True
    )
    monkeypatch.setattr(sqlite_writes, "on_driver", original)

    assert all(isinstance(result, OperationalError) for result in results), results
    assert await bodies(database) == []
    await notes_writes.insert("after")  # the database goes on
    assert await bodies(database) == ["after"]


async def test_a_member_that_used_sqlalchemy_is_committed_with_its_group(database):
    async def write(connection: Any, body: str) -> None:
        if body == "sqlalchemy":
            await connection.execute(text("INSERT INTO notes (body) VALUES ('sqlalchemy')"))
        else:
            await INSERT.execute(connection, {"body": body})

    writes = database.group_commit(write)
    await asyncio.gather(writes.write("prepared"), writes.write("sqlalchemy"), writes.write("again"))

    assert await bodies(database) == ["again", "prepared", "sqlalchemy"]
    async with database.transaction() as connection:
        assert (await connection.execute(select(func.count()).select_from(notes))).scalar_one() == 3
