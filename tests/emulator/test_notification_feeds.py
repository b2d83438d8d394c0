"""Notifications as Mercado Libre sends them: the `id` key, `messages` with `created` and `read`,
`orders_v2`, and `GET /missed_feeds` for the ones the callback never took; a buyer reading the
seller's message and a deleted message (control API)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest
from fastapi import FastAPI

from postventa.emulator import EmulatorConfig
from postventa.emulator.notifications import MISSED_FEEDS_KEEP_SECONDS, MissedFeeds
from tests.emulator.live_world import LiveEmulator, eventually, live_emulator
from tests.emulator.world import Receiver, SellerSession, World, emulator_of
from tests.servers import free_port

RECEIVER = Receiver()
NOTIFY_URL = "http://receiver.test/notify"
POST_SALE = {"tag": "post_sale"}
CONFIG = EmulatorConfig(
    notify_url=NOTIFY_URL,
    notify_transport=httpx2.ASGITransport(app=RECEIVER.app),
    notify_retry_delays_seconds=(0.01,),
)


@pytest.fixture(autouse=True)
def _clear_receiver() -> None:
    RECEIVER.received.clear()


async def open_conversation(world: World) -> tuple[SellerSession, int]:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    await world.buyer_writes(key)
    return seller, key


async def seller_message(world: World) -> tuple[SellerSession, int, str]:
    seller, key = await open_conversation(world)
    sent = await world.send(seller, key, "Ya lo despachamos")
    assert sent.status_code == 201, sent.text
    return seller, key, str(sent.json()["id"])


async def message_by_id(world: World, seller: SellerSession, message_id: str) -> httpx2.Response:
    return await world.http.get(
        f"/messages/{message_id}", params=POST_SALE, headers={**seller.headers, "x-format-new": "true"}
    )


@pytest.mark.parametrize("emulator_config", [CONFIG])
async def test_payloads_carry_id_and_actions(world: World, emulator_app: FastAPI) -> None:
    seller = await world.seller()
    created = await world.order(seller)
    message_id = await world.buyer_writes(created["Key"])
    await emulator_of(emulator_app).drain()
    [order] = RECEIVER.topics("orders_v2")
    [message] = RECEIVER.topics("messages")
    for payload in (order, message):
        assert "_id" not in payload
        assert len(payload["id"]) == 36
    assert (order["resource"], order["actions"]) == (f"/orders/{created['OrderId']}", [])
    assert (message["resource"], message["actions"]) == (message_id, ["created"])


@pytest.mark.parametrize("emulator_config", [CONFIG])
async def test_buyer_reads_the_sellers_message(world: World, emulator_app: FastAPI) -> None:
    seller, _key, message_id = await seller_message(world)
    assert (await message_by_id(world, seller, message_id)).json()["messages"][0]["message_date"][
        "read"
    ] is None

    read = await world.http.post(f"/_emulator/messages/{message_id}/read")
    assert read.status_code == 200, read.text
    assert read.json()["MessageId"] == message_id
    shown = (await message_by_id(world, seller, message_id)).json()["messages"][0]
    assert shown["message_date"]["read"] == read.json()["Read"]
    await emulator_of(emulator_app).drain()
    [notified] = [payload for payload in RECEIVER.topics("messages") if payload["actions"] == ["read"]]
    assert (notified["resource"], notified["user_id"]) == (message_id, seller.id)
    assert notified["application_id"] == int(seller.client_id)

    # Reading it again changes nothing and notifies nothing more.
    again = await world.http.post(f"/_emulator/messages/{message_id}/read")
    assert again.json()["Read"] == read.json()["Read"]
    await emulator_of(emulator_app).drain()
    assert len([payload for payload in RECEIVER.topics("messages") if payload["actions"] == ["read"]]) == 1


async def test_read_of_a_buyer_message_or_unknown_message_is_refused(world: World) -> None:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    buyers = await world.buyer_writes(key)
    assert (await world.http.post(f"/_emulator/messages/{buyers}/read")).status_code == 400
    unknown = await world.http.post(f"/_emulator/messages/{'f' * 32}/read")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"


async def test_deleted_message_is_gone_from_storage(world: World) -> None:
    seller, key, message_id = await seller_message(world)
    assert (await world.conversation(seller, key))["paging"]["total"] == 2
    deleted = await world.http.delete(f"/_emulator/messages/{message_id}")
    assert deleted.status_code == 200
    assert deleted.json() == {"MessageId": message_id, "Deleted": True}

    gone = await message_by_id(world, seller, message_id)
    assert gone.status_code == 404
    assert gone.json() == {
        "message": f"The message with id: {message_id} could not be retrieved from storage",
        "error": "not_found",
        "status": 404,
        "cause": [],
    }
    conversation = await world.conversation(seller, key)
    assert conversation["paging"]["total"] == 1
    assert message_id not in [message["id"] for message in conversation["messages"]]
    assert (await world.http.delete(f"/_emulator/messages/{message_id}")).status_code == 404


@pytest.fixture
async def unreachable_callback() -> AsyncIterator[LiveEmulator]:
    """An emulator whose callback URL has nobody listening: every attempt fails at once."""
    config = EmulatorConfig(
        notify_url=f"http://127.0.0.1:{free_port()}/notify", notify_retry_delays_seconds=(0.01, 0.01)
    )
    async with live_emulator(config) as served:
        yield served


async def missed(world: World, seller: SellerSession, **params: str) -> httpx2.Response:
    return await world.http.get(
        "/missed_feeds", params={"app_id": seller.client_id, **params}, headers=seller.headers
    )


async def test_missed_feeds_keep_what_the_callback_never_took(unreachable_callback: LiveEmulator) -> None:
    world = unreachable_callback.world
    seller = await world.seller()
    created = await world.order(seller)
    message_id = await world.buyer_writes(created["Key"])

    async def both_given_up() -> bool:
        return len((await missed(world, seller)).json()["messages"]) == 2

    assert await eventually(both_given_up)
    answer = await missed(world, seller)
    assert answer.status_code == 200
    feeds = answer.json()["messages"]
    assert {(feed["topic"], feed["resource"]) for feed in feeds} == {
        ("orders_v2", f"/orders/{created['OrderId']}"),
        ("messages", message_id),
    }
    for feed in feeds:
        assert feed["attempts"] == 3  # the first try and both retries
        assert feed["user_id"] == seller.id
        assert feed["application_id"] == int(seller.client_id)
        assert set(feed) >= {"id", "resource", "user_id", "topic", "actions", "application_id", "sent"}
    only_messages = (await missed(world, seller, topic="messages")).json()["messages"]
    assert [feed["resource"] for feed in only_messages] == [message_id]
    assert len((await missed(world, seller, offset="1", limit="1")).json()["messages"]) == 1

    other = await world.seller()  # another application sees none of them, and may not ask for them
    assert (await missed(world, other)).json() == {"messages": []}
    foreign = await world.http.get(
        "/missed_feeds", params={"app_id": seller.client_id}, headers=other.headers
    )
    assert foreign.status_code == 403
    assert (await world.http.get("/missed_feeds", params={"app_id": seller.client_id})).status_code == 401
    no_app = await world.http.get("/missed_feeds", headers=seller.headers)
    assert no_app.status_code == 400


def test_missed_feeds_are_kept_two_days() -> None:
    now = [1_000_000.0]
    feeds = MissedFeeds(clock=lambda: now[0])
    payload = {"id": "x", "topic": "messages", "resource": "m"}
    feeds.add("123", payload)
    now[0] += MISSED_FEEDS_KEEP_SECONDS - 1
    assert feeds.of_application("123") == [payload]
    now[0] += 2
    assert feeds.of_application("123") == []
