"""Inbound: the webhook answers at once, notifications are processed once, polling catches misses."""

from __future__ import annotations

import statistics
import time

from tests.e2e.conftest import World, wait_for


async def sent_order(world: World, seller) -> tuple[int, int]:
    """An order whose first message is delivered; returns (local order id, conversation id)."""
    created = await world.emulator_order(seller)
    await world.sync(seller)
    order_id = await world.local_order_id(seller, created["OrderId"])
    response = await world.api.post(
        f"/v2/orders/{order_id}/messages", params=seller.credentials(messageOptions=4, message="Hola")
    )
    assert response.status_code == 200

    async def is_sent() -> bool:
        return (await world.conversation(seller, order_id))[0]["Status"] == "sent"

    await wait_for(is_sent)
    return order_id, created["PackId"] or created["OrderId"]


async def inbound_texts(world: World, seller, order_id: int) -> list[str]:
    return [m["Text"] for m in await world.conversation(seller, order_id) if m["Direction"] == "inbound"]


async def test_webhook_answers_well_under_500_ms(world: World):
    seller = await world.linked_seller("MLA")
    notification = {
        "resource": "0123456789abcdef0123456789abcdef",
        "user_id": seller.seller_id,
        "topic": "messages",
    }
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        response = await world.api.post("/webhooks/mercadolibre", json=notification)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
        assert response.json()["Accepted"] is True
    assert statistics.median(timings) < 0.5


async def test_notifications_of_unknown_sellers_are_ignored_and_malformed_ones_refused(world: World):
    unknown = await world.api.post(
        "/webhooks/mercadolibre", json={"resource": "abc", "user_id": 1, "topic": "messages"}
    )
    assert (unknown.status_code, unknown.json()["Accepted"]) == (200, False)
    for body in ({"topic": "messages"}, {"resource": "x", "user_id": "me", "topic": "messages"}, []):
        refused = await world.api.post("/webhooks/mercadolibre", json=body)
        assert refused.status_code == 400
        assert refused.json()["Code"] == "malformed_notification"


async def test_a_repeated_notification_records_the_buyer_message_once(world: World):
    seller = await world.linked_seller("MLA")
    order_id, conversation = await sent_order(world, seller)
    written = await world.meli.post(
        f"/_emulator/packs/{conversation}/buyer-messages", json={"Text": "Recibido"}
    )
    message_id = written.json()["MessageId"]

    async def recorded() -> bool:
        return await inbound_texts(world, seller, order_id) == ["Recibido"]

    await wait_for(recorded)
    again = {"resource": message_id, "user_id": seller.seller_id, "topic": "messages", "actions": ["created"]}
    mark = await world.journal_mark()
    for _ in range(3):
        assert (await world.api.post("/webhooks/mercadolibre", json=again)).status_code == 200

    async def reprocessed() -> bool:
        return any(e["Path"] == f"/messages/{message_id}" for e in await world.journal(mark))

    await wait_for(reprocessed)
    assert await inbound_texts(world, seller, order_id) == ["Recibido"]


async def test_polling_records_a_reply_whose_notification_was_lost(world: World):
    seller = await world.linked_seller("MLA")
    order_id, conversation = await sent_order(world, seller)
    await world.configure(NotifyUrl="http://127.0.0.1:9/nowhere")
    await world.meli.post(f"/_emulator/packs/{conversation}/buyer-messages", json={"Text": "¿Llega mañana?"})

    async def recorded() -> bool:
        return await inbound_texts(world, seller, order_id) == ["¿Llega mañana?"]

    await wait_for(recorded, timeout=15)  # the e2e server polls every 2 s
