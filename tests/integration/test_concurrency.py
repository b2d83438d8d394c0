"""Simultaneous sends over real TCP, on SQLite and PostgreSQL (contract §3.5: "of N simultaneous sends
on one conversation, exactly one is accepted").

Each request travels on its own connection to the real server, so the sends truly overlap in the
server's event loop and in the database. The server runs without the embedded delivery worker: a
message the worker fails while the race is still running would no longer count as sent (§3.5) and
let a late sender in, which is the worker's business, not the lock's.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest

from tests.conftest import LiveServer, make_settings
from tests.factories import Tenant, buyer_replies, make_order, make_tenant

SENDERS = 20


@pytest.fixture(scope="module")
def server(database_url: str, database) -> Iterator[LiveServer]:
    """The live server of the backend (real uvicorn, real TCP), without the delivery worker."""
    with LiveServer(make_settings(database_url, embedded_worker=False)) as live:
        yield live


@pytest.fixture
async def http(server) -> AsyncIterator[httpx2.AsyncClient]:
    limits = httpx2.Limits(max_connections=50, max_keepalive_connections=0)
    async with httpx2.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
        yield client


async def send_all(http: httpx2.AsyncClient, tenant: Tenant, order_ids: list[int]) -> list[httpx2.Response]:
    """One free-text send per order id, all at once."""

    async def send(index: int, order_id: int) -> httpx2.Response:
        params = tenant.credentials(messageOptions="OTHER", message=f"Hola {index}")
        return await http.post(f"/v2/orders/{order_id}/messages", params=params)

    return list(await asyncio.gather(*(send(index, order_id) for index, order_id in enumerate(order_ids))))


async def conversation(http: httpx2.AsyncClient, tenant: Tenant, order_id: int) -> list[dict[str, object]]:
    response = await http.get(f"/v2/orders/{order_id}/messages", params=tenant.credentials())
    assert response.status_code == 200, response.text
    results: list[dict[str, object]] = response.json()["Results"]
    return results


def assert_one_accepted(responses: list[httpx2.Response]) -> httpx2.Response:
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 409: len(responses) - 1}, [(r.status_code, r.text) for r in responses]
    for response in responses:
        assert response.headers["content-type"].startswith("application/json")
        if response.status_code == 409:
            body = response.json()
            assert set(body) == {"Status", "Message", "Code"}
            assert body["Status"] == 409
            assert body["Code"] in {"awaiting_buyer_reply", "conversation_busy"}
    return next(response for response in responses if response.status_code == 200)


async def test_simultaneous_sends_on_one_conversation_accept_exactly_one(http, database):
    tenant = await make_tenant(database, name="Race")
    order_id = await make_order(database, tenant)

    responses = await send_all(http, tenant, [order_id] * SENDERS)

    accepted = assert_one_accepted(responses)
    stored = await conversation(http, tenant, order_id)
    assert [message["Id"] for message in stored] == [int(accepted.json())]
    assert stored[0]["Direction"] == "outbound"
    assert stored[0]["Status"] == "queued"
    winner = next(r for r in responses if r.status_code == 200)
    assert stored[0]["Text"] == f"Hola {responses.index(winner)}"


async def test_simultaneous_sends_on_different_orders_all_succeed(http, database):
    tenant = await make_tenant(database, name="Many orders")
    order_ids = [await make_order(database, tenant) for _ in range(SENDERS)]

    responses = await send_all(http, tenant, order_ids)

    assert [response.status_code for response in responses] == [200] * SENDERS, [r.text for r in responses]
    assert len({response.json() for response in responses}) == SENDERS
    for order_id, response in zip(order_ids, responses, strict=True):
        assert [message["Id"] for message in await conversation(http, tenant, order_id)] == [
            int(response.json())
        ]


async def test_simultaneous_sends_on_pack_mates_accept_exactly_one(http, database):
    tenant = await make_tenant(database, name="Pack")
    pack_id = secrets.randbelow(2**53) + 1
    first = await make_order(database, tenant, PackId=pack_id)
    second = await make_order(database, tenant, PackId=pack_id)

    responses = await send_all(http, tenant, [first, second] * (SENDERS // 2))

    accepted = assert_one_accepted(responses)
    for order_id in (first, second):
        stored = await conversation(http, tenant, order_id)
        assert [message["Id"] for message in stored] == [int(accepted.json())]


async def test_simultaneous_sends_after_a_buyer_reply_still_accept_exactly_one(http, database):
    tenant = await make_tenant(database, name="Second round")
    order_id = await make_order(database, tenant)
    assert_one_accepted(await send_all(http, tenant, [order_id] * 2))
    await buyer_replies(database, order_id)

    responses = await send_all(http, tenant, [order_id] * SENDERS)

    assert_one_accepted(responses)
    directions = [message["Direction"] for message in await conversation(http, tenant, order_id)]
    assert directions == ["outbound", "inbound", "outbound"]
