"""Late moderation (pending, then judged; a verdict after the fact), AI-agent threads, messages the
seller wrote outside the API, and the flat `GET /messages/{id}` shape."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI

from postventa.emulator import EmulatorConfig
from postventa.emulator.agents import AGENT_IDS
from postventa.emulator.moderation import MODERATION_REASONS
from tests.emulator.test_action_guide import assert_guide_error, other
from tests.emulator.world import Receiver, SellerSession, World, emulator_of

POST_SALE = {"tag": "post_sale"}
RECEIVER = Receiver()
PENDING_SECONDS = 0.3
PENDING_MODERATION = {"status": "pending", "reason": None, "source": "online", "moderation_date": None}


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        notify_url="http://receiver.test/notify",
        notify_transport=httpx2.ASGITransport(app=RECEIVER.app),
        notify_retry_delays_seconds=(0.01,),
    )


@pytest.fixture(autouse=True)
def _clear_receiver() -> None:
    RECEIVER.received.clear()


async def open_conversation(world: World, site: str = "MLA") -> tuple[SellerSession, int]:
    seller = await world.seller(site)
    key = (await world.order(seller))["Key"]
    await world.buyer_writes(key)
    return seller, key


async def read_message(world: World, seller: SellerSession, message_id: str, *, new: bool) -> dict[str, Any]:
    headers = {**seller.headers, "x-format-new": "true"} if new else seller.headers
    answer = await world.http.get(f"/messages/{message_id}", params=POST_SALE, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body["messages"][0] if new else body


async def in_conversation(world: World, seller: SellerSession, key: int, message_id: str) -> dict[str, Any]:
    messages = (await world.conversation(seller, key, mark_as_read="false"))["messages"]
    [found] = [message for message in messages if message["id"] == message_id]
    return found


async def set_config(world: World, **fields: Any) -> dict[str, Any]:
    answer = await world.http.put("/_emulator/config", json=fields)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def seller_notifications(seller: SellerSession) -> list[dict[str, Any]]:
    return [payload for payload in RECEIVER.topics("messages") if payload["user_id"] == seller.id]


async def test_pending_moderation_then_clean(world: World) -> None:
    seller, key = await open_conversation(world)
    assert (await set_config(world, PendingModerationSeconds=PENDING_SECONDS))[
        "PendingModerationSeconds"
    ] == 0.3
    sent = await world.send(seller, key, "Tu paquete sale hoy.")
    assert sent.status_code == 201, sent.text
    message = sent.json()
    assert message["status"] == "pending"
    assert message["message_date"]["available"] is None
    assert message["message_moderation"] == PENDING_MODERATION
    assert (await read_message(world, seller, message["id"], new=True))["status"] == "pending"
    flat = await read_message(world, seller, message["id"], new=False)
    assert (flat["status"], flat["moderation"]["status"], flat["date_available"]) == (
        "pending",
        "pending",
        None,
    )
    assert flat["moderation"]["date_moderated"] is None

    await asyncio.sleep(PENDING_SECONDS + 0.1)
    shown = await in_conversation(world, seller, key, message["id"])
    assert shown["status"] == "available"
    assert shown["message_date"]["available"] is not None
    assert shown["message_moderation"]["status"] == "clean"
    assert shown["message_moderation"]["moderation_date"] is not None
    flat = await read_message(world, seller, message["id"], new=False)
    assert (flat["status"], flat["moderation"]["status"]) == ("available", "clean")


async def test_pending_moderation_then_rejected(world: World) -> None:
    seller = await world.seller("MLA")
    key = (await world.order(seller))["Key"]
    await set_config(world, PendingModerationSeconds=PENDING_SECONDS)
    sent = await world.option(seller, key, other("Escribime a juan@example.com"))
    assert sent.status_code == 200, sent.text
    assert (sent.json()["status"], sent.json()["message_moderation"]) == ("pending", PENDING_MODERATION)
    await asyncio.sleep(PENDING_SECONDS + 0.1)
    shown = await read_message(world, seller, sent.json()["id"], new=True)
    assert shown["status"] == "moderated"
    assert shown["message_date"]["available"] is None
    assert (shown["message_moderation"]["status"], shown["message_moderation"]["reason"]) == (
        "rejected",
        "PERSONAL_DATA",
    )


async def test_pending_moderation_off_again_judges_at_once(world: World) -> None:
    seller, key = await open_conversation(world)
    await set_config(world, PendingModerationSeconds=PENDING_SECONDS)
    assert (await set_config(world, PendingModerationSeconds=None))["PendingModerationSeconds"] is None
    sent = await world.send(seller, key, "Sale hoy.")
    assert sent.json()["status"] == "available"


@pytest.mark.parametrize("reason", sorted(MODERATION_REASONS))
async def test_late_verdict_is_seen_on_the_next_read_and_not_notified(
    world: World, emulator_app: FastAPI, reason: str
) -> None:
    seller, key = await open_conversation(world)
    sent = await world.send(seller, key, "¡Gracias por tu compra!")
    message_id = sent.json()["id"]
    assert sent.json()["status"] == "available"
    await emulator_of(emulator_app).drain()
    before = len(seller_notifications(seller))

    answer = await world.http.post(f"/_emulator/messages/{message_id}/moderate", json={"Reason": reason})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "moderated"
    await emulator_of(emulator_app).drain()
    assert len(seller_notifications(seller)) == before

    shown = await in_conversation(world, seller, key, message_id)
    assert shown["status"] == "moderated"
    assert shown["message_moderation"]["status"] == "rejected"
    assert shown["message_moderation"]["reason"] == reason
    assert shown["message_date"]["available"] is None
    flat = await read_message(world, seller, message_id, new=False)
    assert (flat["status"], flat["moderation"]["status"]) == ("moderated", "rejected")


async def test_late_verdict_refuses_other_reasons_and_buyer_messages(world: World) -> None:
    seller, key = await open_conversation(world)
    message_id = (await world.send(seller, key, "Hola")).json()["id"]
    for reason in ("SPAM", "automatic_message", ""):
        answer = await world.http.post(f"/_emulator/messages/{message_id}/moderate", json={"Reason": reason})
        assert answer.status_code == 400, reason
    buyer_message = await world.buyer_writes(key)
    answer = await world.http.post(
        f"/_emulator/messages/{buyer_message}/moderate", json={"Reason": "AUTOMATIC_MESSAGE"}
    )
    assert answer.status_code == 400
    missing = await world.http.post(
        f"/_emulator/messages/{'0' * 32}/moderate", json={"Reason": "PERSONAL_DATA"}
    )
    assert missing.status_code == 404


async def agent_send(world: World, seller: SellerSession, key: int, to: int, text: str) -> httpx2.Response:
    body = {"from": {"user_id": seller.id}, "to": {"user_id": to}, "text": text}
    return await world.http.post(
        f"/messages/packs/{key}/sellers/{seller.id}", params=POST_SALE, json=body, headers=seller.headers
    )


async def test_agent_thread(world: World, emulator_app: FastAPI) -> None:
    seller = await world.seller("MLB")
    key = (await world.order(seller, logistic_type="fulfillment", ShipmentStatus="delivered"))["Key"]
    agent = AGENT_IDS["MLB"]
    started = await world.http.put(f"/_emulator/packs/{key}/agent")
    assert (started.status_code, started.json()["AgentId"]) == (200, 3037675074)
    status = (await world.conversation(seller, key))["conversation_status"]
    assert status["path"] == f"/packs/{key}/sellers/{seller.id}/conversations/agent"

    refused = await world.option(seller, key, other())
    assert_guide_error(refused, 403, "forbidden", "The conversation is blocked")
    assert refused.json()["cause"] == "blocked_by_ai_assistant"
    first = await agent_send(world, seller, key, agent, "Olá")
    assert (first.status_code, first.json()["message"]) == (
        403,
        "blocked_conversation_send_message_forbidden",
    )

    written = await world.http.post(f"/_emulator/packs/{key}/agent-messages", json={"Text": "Onde está?"})
    assert written.status_code == 200, written.text
    agent_message = written.json()["MessageId"]
    await emulator_of(emulator_app).drain()
    assert [payload["resource"] for payload in seller_notifications(seller)] == [agent_message]
    shown = await read_message(world, seller, agent_message, new=True)
    assert (shown["from"]["user_id"], shown["to"]["user_id"]) == (agent, seller.id)

    to_buyer = await agent_send(world, seller, key, world.buyers[key], "Olá")
    assert (to_buyer.status_code, to_buyer.json()["message"]) == (
        403,
        f"Receiver does not belong to order {key}",
    )
    answered = await agent_send(world, seller, key, agent, "Chegou ontem.")
    assert answered.status_code == 201, answered.text
    assert answered.json()["to"]["user_id"] == agent
    second = await agent_send(world, seller, key, agent, "Mais alguma coisa?")
    assert (second.status_code, second.json()["message"]) == (
        403,
        "blocked_conversation_send_message_forbidden",
    )
    await world.http.post(f"/_emulator/packs/{key}/agent-messages", json={"Text": "Obrigado"})
    assert (await agent_send(world, seller, key, agent, "De nada.")).status_code == 201

    assert (await world.http.delete(f"/_emulator/packs/{key}/agent")).json()["AgentId"] is None
    status = (await world.conversation(seller, key))["conversation_status"]
    assert status["path"] == f"/packs/{key}/sellers/{seller.id}"


@pytest.mark.parametrize("site", ["MPE", "MEC"])
async def test_no_agent_on_sites_without_one(world: World, site: str) -> None:
    seller = await world.seller(site)
    key = (await world.order(seller))["Key"]
    assert (await world.http.put(f"/_emulator/packs/{key}/agent")).status_code == 400


async def test_agent_message_needs_an_agent_thread(world: World) -> None:
    seller = await world.seller("MLC")
    key = (await world.order(seller))["Key"]
    answer = await world.http.post(f"/_emulator/packs/{key}/agent-messages", json={"Text": "Hola"})
    assert answer.status_code == 400


async def test_seller_center_message_uses_the_guide_without_notifying(
    world: World, emulator_app: FastAPI
) -> None:
    seller = await world.seller("MLA")
    key = (await world.order(seller))["Key"]
    written = await world.http.post(
        f"/_emulator/packs/{key}/seller-messages", json={"Text": "Hola, ¿todo bien?"}
    )
    assert written.status_code == 200, written.text
    message_id = written.json()["MessageId"]
    await emulator_of(emulator_app).drain()
    assert seller_notifications(seller) == []

    caps = (await world.guide(seller, key)).json()["options"]
    assert {option["cap_available"] for option in caps} == {0}
    shown = await in_conversation(world, seller, key, message_id)
    assert (shown["from"]["user_id"], shown["client_id"], shown["status"]) == (seller.id, None, "available")
    assert (await read_message(world, seller, message_id, new=False))["text"]["plain"] == "Hola, ¿todo bien?"
    again = await world.http.post(f"/_emulator/packs/{key}/seller-messages", json={"Text": "¿Hola?"})
    assert again.status_code == 400
    assert (await world.option(seller, key, other())).status_code == 403


async def test_seller_center_message_in_an_open_conversation_is_moderated(world: World) -> None:
    seller, key = await open_conversation(world)
    written = await world.http.post(
        f"/_emulator/packs/{key}/seller-messages", json={"Text": "Llamame al 11 4444 5555"}
    )
    assert written.status_code == 200, written.text
    shown = await in_conversation(world, seller, key, written.json()["MessageId"])
    assert (shown["status"], shown["message_moderation"]["reason"]) == ("moderated", "PERSONAL_DATA")
    assert (await world.send(seller, key, "Perdón, escribime acá.")).status_code == 201


async def test_seller_center_message_refused_when_blocked(world: World) -> None:
    seller, key = await open_conversation(world)
    await world.http.put(f"/_emulator/packs/{key}/block", json={"Reason": "blocked_by_buyer"})
    written = await world.http.post(f"/_emulator/packs/{key}/seller-messages", json={"Text": "Hola"})
    assert written.status_code == 400
    assert "blocked_by_buyer" in written.json()["message"]
    assert (await world.conversation(seller, key))["paging"]["total"] == 1


async def test_flat_message_carries_the_order_and_the_read_date(world: World) -> None:
    seller = await world.seller("MLA")
    created = await world.order(seller)
    key = created["Key"]
    message_id = await world.buyer_writes(key)
    unread = await read_message(world, seller, message_id, new=False)
    assert (unread["resource"], unread["resource_id"], unread["date_read"]) == (
        "orders",
        created["OrderId"],
        None,
    )
    await world.conversation(seller, key)
    read = await read_message(world, seller, message_id, new=False)
    assert read["date_read"] is not None
    assert (await read_message(world, seller, message_id, new=True))["message_date"]["read"] == read[
        "date_read"
    ]
