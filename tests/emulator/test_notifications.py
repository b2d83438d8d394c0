"""Notifications (in-process receiver through `notify_transport`) and automatic buyer replies."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from fastapi import FastAPI

from postventa.emulator import EmulatorConfig
from tests.emulator.world import Receiver, World, emulator_of

RECEIVER = Receiver()
FLAKY_RECEIVER = Receiver(fail_first=2)
NOTIFY_URL = "http://receiver.test/notify"


def config_for(receiver: Receiver, auto_buyer_reply_seconds: float | None = None) -> EmulatorConfig:
    return EmulatorConfig(
        notify_url=NOTIFY_URL,
        notify_transport=httpx2.ASGITransport(app=receiver.app),
        notify_retry_delays_seconds=(0.01, 0.01, 0.01),
        auto_buyer_reply_seconds=auto_buyer_reply_seconds,
    )


@pytest.fixture(autouse=True)
def _clear_receivers() -> None:
    RECEIVER.received.clear()
    FLAKY_RECEIVER.received.clear()


@pytest.mark.parametrize("emulator_config", [config_for(RECEIVER)])
async def test_buyer_message_is_notified(world: World, emulator_app: FastAPI) -> None:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    message_id = await world.buyer_writes(key, "¿Tienen talle M?")
    await emulator_of(emulator_app).drain()
    [payload] = RECEIVER.topics("messages")
    assert payload["resource"] == message_id
    assert payload["user_id"] == seller.id
    assert payload["actions"] == ["created"]
    assert payload["application_id"] == int(seller.client_id)
    assert payload["attempts"] == 1
    assert set(payload) == {
        "id",
        "resource",
        "user_id",
        "topic",
        "actions",
        "application_id",
        "attempts",
        "sent",
        "received",
    }

    message = await world.http.get(
        f"/messages/{message_id}",
        params={"tag": "post_sale"},
        headers={**seller.headers, "x-format-new": "true"},
    )
    shown = message.json()["messages"][0]
    assert shown["from"] == {"user_id": world.buyers[key]}
    assert shown["to"] == {"user_id": seller.id}
    assert shown["text"] == "¿Tienen talle M?"


@pytest.mark.parametrize("emulator_config", [config_for(RECEIVER)])
async def test_orders_v2_on_create_and_change(world: World, emulator_app: FastAPI) -> None:
    seller = await world.seller()
    order_id = (await world.order(seller))["OrderId"]
    await world.http.put(f"/_emulator/orders/{order_id}", json={"Status": "cancelled"})
    await emulator_of(emulator_app).drain()
    notified = RECEIVER.topics("orders_v2")
    assert [payload["resource"] for payload in notified] == [f"/orders/{order_id}"] * 2
    assert {payload["user_id"] for payload in notified} == {seller.id}


@pytest.mark.parametrize("emulator_config", [config_for(FLAKY_RECEIVER)])
async def test_failed_notification_is_retried(world: World, emulator_app: FastAPI) -> None:
    seller = await world.seller()
    await world.order(seller)
    await emulator_of(emulator_app).drain()
    assert [payload["attempts"] for payload in FLAKY_RECEIVER.received] == [1, 2, 3]
    attempts = [entry for entry in (await world.journal())["Entries"] if entry["Method"] == "NOTIFY"]
    assert [(entry["Status"], entry["Applied"]) for entry in attempts] == [
        (500, False),
        (500, False),
        (200, True),
    ]


async def test_no_callback_no_notification(world: World, emulator_app: FastAPI) -> None:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    await world.buyer_writes(key)
    await emulator_of(emulator_app).drain()
    assert not [entry for entry in (await world.journal())["Entries"] if entry["Method"] == "NOTIFY"]


@pytest.mark.parametrize("emulator_config", [config_for(RECEIVER, 0.05)])
async def test_auto_buyer_reply(world: World, emulator_app: FastAPI) -> None:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    sent = await world.option(seller, key, {"option_id": "OTHER", "text": "Hola, ¿qué color querés?"})
    assert sent.status_code == 200
    await asyncio.sleep(0.1)
    await emulator_of(emulator_app).drain()
    conversation = await world.conversation(seller, key)
    assert [message["text"] for message in conversation["messages"]] == [
        "¡Gracias! Recibido.",
        "Hola, ¿qué color querés?",
    ]
    assert RECEIVER.topics("messages")[0]["resource"] == conversation["messages"][0]["id"]
    assert (await world.send(seller, key, "Perfecto")).status_code == 201


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(auto_buyer_reply_seconds=0.05)])
async def test_no_auto_reply_to_a_moderated_message(world: World, emulator_app: FastAPI) -> None:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    await world.option(seller, key, {"option_id": "OTHER", "text": "Escribime a a@b.com"})
    await asyncio.sleep(0.1)
    await emulator_of(emulator_app).drain()
    assert (await world.conversation(seller, key))["paging"]["total"] == 1


async def test_auto_reply_text_through_config(world: World, emulator_app: FastAPI) -> None:
    changed = await world.http.put(
        "/_emulator/config", json={"AutoBuyerReplySeconds": 0, "AutoBuyerReplyText": "Dale, gracias"}
    )
    assert changed.json()["AutoBuyerReplySeconds"] == 0
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    await world.option(seller, key, {"option_id": "OTHER", "text": "Hola"})
    await emulator_of(emulator_app).drain()
    assert (await world.conversation(seller, key))["messages"][0]["text"] == "Dale, gracias"


async def test_bad_config_is_400(world: World) -> None:
    assert (await world.http.put("/_emulator/config", json={"NotifyUrl": "ftp://x"})).status_code == 400
    assert (await world.http.put("/_emulator/config", json={"ReadsPerMinute": 0})).status_code == 400
