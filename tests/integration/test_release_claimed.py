"""A stopping worker hands back the messages it claimed and never attempted: queued and due at once,
the claim's attempt not counted, and only while it still holds their lease."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from postventa.store import outbox
from postventa.store.tables import messages
from tests.integration.test_outbox import claim, queued_messages


@pytest.fixture
def database(isolated_database):
    """Claims take every due message: these tests get a database no running worker shares."""
    return isolated_database


async def test_claimed_messages_are_handed_back_due_with_their_attempt_uncounted(client, database):
    ids = await queued_messages(client, database, 3)
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    claimed = await claim(database, "stopping", at=now, limit=3)
    assert sorted(message.id for message in claimed) == sorted(ids)
    async with database.transaction(write=True) as connection:
        assert await outbox.release_claimed(connection, ids[:2], "another", now) == 0  # not its lease
        assert await outbox.release_claimed(connection, ids[:2], "stopping", now) == 2
        rows = (await connection.execute(select(messages).where(messages.c.id.in_(ids)))).all()
    state = {row.id: (row.status, row.attempts, row.lease_owner) for row in rows}
    assert state == {
        ids[0]: ("queued", 0, None),
        ids[1]: ("queued", 0, None),
        ids[2]: ("sending", 1, "stopping"),
    }
    again = await claim(database, "next", at=now, limit=3)
    assert sorted(message.id for message in again) == sorted(ids[:2])  # due at once, for any worker
