"""Sends sharing a commit on SQLite (store/group_commit.py): when the group's commit fails, every
send of it is written again alone and answered 200, each message is stored once, and each request
counts once against its key's rate limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from postventa.store import sqlite_writes
from postventa.store.engine import Database
from postventa.store.migrate import upgrade
from postventa.store.tables import messages
from postventa.wiring import create_app, meli_client
from tests.conftest import make_settings
from tests.factories import make_order, make_tenant

SEND_LIMIT = 5


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'group.db'}")
    await upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
async def client(database: Database) -> AsyncIterator[httpx2.AsyncClient]:
    settings = make_settings(
        database.url.render_as_string(), rate_limits=f"send={SEND_LIMIT}/minute,read=100/minute"
    )
    meli = meli_client(settings)
    app = create_app(settings, database=database, meli=meli)
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://postventa.test"
        ) as http:
            yield http
    finally:
        await meli.aclose()


def fail_commit_number(monkeypatch: pytest.MonkeyPatch, failing: int) -> list[int]:
    """The `failing`-th COMMIT from now fails, as a full disk would; the others go through. The list
    returned holds the number of each COMMIT tried."""
    original = sqlite_writes.on_driver
    tried: list[int] = []

    async def on_driver(driver: Any, statement: str) -> None:
        if statement == "COMMIT":
            tried.append(len(tried) + 1)
            if tried[-1] == failing:
                raise OperationalError(statement, None, RuntimeError("disk I/O error"))
        await original(driver, statement)

    monkeypatch.setattr(sqlite_writes, "on_driver", on_driver)
    return tried


async def test_a_failed_group_commit_answers_every_send_once_and_counts_each_once(
    client, database, monkeypatch
):
    tenant = await make_tenant(database)
    order_ids = [await make_order(database, tenant) for _ in range(6)]

    async def send(order_id: int) -> httpx2.Response:
        params = tenant.credentials(messageOptions="OTHER", message="Hola")
        return await client.post(f"/v2/orders/{order_id}/messages", params=params)

    # The test holds the write lock while four sends arrive: they wait as one group, whose commit
    # (the second from now) fails.
    commits = fail_commit_number(monkeypatch, 2)
    async with database.transaction(write=True):  # commit 1
        sends = [asyncio.create_task(send(order_id)) for order_id in order_ids[:4]]
        await asyncio.sleep(0.5)
    answers = await asyncio.gather(*sends)

    assert [answer.status_code for answer in answers] == [200] * 4, [answer.text for answer in answers]
    assert commits == [1, 2, 3, 4, 5, 6]  # the test's, the group's (failed), then each send alone
    async with database.transaction() as connection:
        stored = await connection.execute(
            select(messages.c.order_id, func.count()).group_by(messages.c.order_id)
        )
        assert {order_id: count for order_id, count in stored} == dict.fromkeys(order_ids[:4], 1)
    # Four requests counted, not eight: the fifth is within the limit, the sixth is not.
    assert (await send(order_ids[4])).status_code == 200
    assert (await send(order_ids[5])).status_code == 429
