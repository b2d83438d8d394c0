"""Against a real uvicorn server: dropped connections reach the client as transport errors, and
notifications reach a real callback server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest

from postventa.emulator import EmulatorConfig, create_emulator_app
from tests.emulator.world import LiveServer, Receiver, SellerSession, World


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, LiveServer]]:
    callback = Receiver()
    with LiveServer(callback.app) as server:
        yield callback, server


@pytest.fixture(scope="module")
def live_emulator(receiver: tuple[Receiver, LiveServer]) -> Iterator[LiveServer]:
    config = EmulatorConfig(notify_url=f"{receiver[1].url}/notify")
    with LiveServer(create_emulator_app(config)) as server:
        yield server


@pytest.fixture
async def live(live_emulator: LiveServer) -> AsyncIterator[World]:
    async with httpx2.AsyncClient(base_url=live_emulator.url, timeout=5) as http:
        yield World(http)
        await http.put("/_emulator/faults", json={"Faults": []})


async def open_conversation(world: World) -> tuple[SellerSession, int]:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    await world.buyer_writes(key)
    return seller, key


async def test_reset_drops_the_connection_without_applying(live: World) -> None:
    seller, key = await open_conversation(live)
    await live.faults({"Route": f"POST /messages/packs/{key}/*", "Kind": "reset"})
    with pytest.raises(httpx2.TransportError):
        await live.send(seller, key, "Hola")
    entry = await live.last_entry("POST", f"/messages/packs/{key}/sellers/{seller.id}")
    assert (entry["Status"], entry["Fault"], entry["Applied"]) == (None, "reset", False)
    await live.faults()
    assert (await live.conversation(seller, key))["paging"]["total"] == 1


async def test_lost_response_applies_then_drops(live: World) -> None:
    seller, key = await open_conversation(live)
    await live.faults({"Route": f"POST /messages/packs/{key}/*", "Kind": "lost_response"})
    with pytest.raises(httpx2.TransportError):
        await live.send(seller, key, "¿Llegó bien?")
    entry = await live.last_entry("POST", f"/messages/packs/{key}/sellers/{seller.id}")
    assert (entry["Status"], entry["Fault"], entry["Applied"]) == (None, "lost_response", True)
    await live.faults()
    newest = (await live.conversation(seller, key))["messages"][0]
    assert newest["text"] == "¿Llegó bien?"


async def test_client_keeps_working_after_a_drop(live: World) -> None:
    seller = await live.seller()
    await live.faults({"Route": "GET /users/me", "Kind": "reset", "Rate": 1})
    with pytest.raises(httpx2.TransportError):
        await live.http.get("/users/me", headers=seller.headers)
    await live.faults()
    assert (await live.http.get("/users/me", headers=seller.headers)).status_code == 200


async def test_notifications_reach_a_live_callback(
    live: World, receiver: tuple[Receiver, LiveServer]
) -> None:
    callback = receiver[0]
    seller = await live.seller()
    created = await live.order(seller)
    message_id = await live.buyer_writes(created["Key"])
    for _ in range(100):
        if any(payload["resource"] == message_id for payload in callback.received):
            break
        await asyncio.sleep(0.02)
    mine = [payload for payload in callback.received if payload["user_id"] == seller.id]
    assert {(payload["topic"], payload["resource"]) for payload in mine} == {
        ("orders_v2", f"/orders/{created['OrderId']}"),
        ("messages", message_id),
    }
