"""Mercado Libre as it behaves, end to end through the emulator: a moderation verdict minutes after
the send, the AI agent answering for the buyer, seller messages written in the seller center, read
receipts, deleted messages, missed feeds, and orders of another site."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from postventa.delivery.inbound import InboundProcessor
from postventa.meli.client import MeliClient
from postventa.store.tables import inbound_notifications
from tests.conftest import admin_headers
from tests.e2e.conftest import Seller, World, wait_for
from tests.e2e.test_inbound import sent_order


async def message_where(world: World, seller: Seller, order_id: int, **fields: Any) -> dict[str, Any] | None:
    """The first message of the conversation whose fields have these values."""
    for message in await world.conversation(seller, order_id):
        if all(message.get(key) == value for key, value in fields.items()):
            return message
    return None


async def wait_for_message(world: World, seller: Seller, order_id: int, **fields: Any) -> dict[str, Any]:
    async def found() -> bool:
        return await message_where(world, seller, order_id, **fields) is not None

    await wait_for(found, timeout=30)
    message = await message_where(world, seller, order_id, **fields)
    assert message is not None
    return message


async def notification_row(database, resource: str, user_id: int) -> Any:
    async with database.transaction() as connection:
        return (
            await connection.execute(
                select(inbound_notifications).where(
                    inbound_notifications.c.topic == "messages",
                    inbound_notifications.c.resource == resource,
                    inbound_notifications.c.user_id == user_id,
                )
            )
        ).first()


async def sent_pending(
    world: World, seller_site: str, verdict_after_seconds: float
) -> tuple[Seller, int, dict]:
    """A message sent while moderation judges `verdict_after_seconds` late, seen pending_moderation."""
    seller = await world.linked_seller(seller_site)
    await world.configure(PendingModerationSeconds=verdict_after_seconds)
    try:
        created = await world.emulator_order(seller)
        await world.sync(seller)
        order_id = await world.local_order_id(seller, created["OrderId"])
        response = await world.api.post(
            f"/v2/orders/{order_id}/messages", params=seller.credentials(messageOptions=4, message="Hola")
        )
        assert response.status_code == 200
        pending = await wait_for_message(world, seller, order_id, Status="pending_moderation")
    finally:
        await world.configure(PendingModerationSeconds=None)
    return seller, order_id, pending


async def test_a_pending_message_rejected_minutes_later_becomes_moderated(world: World):
    seller, order_id, pending = await sent_pending(world, "MLA", 600)
    marketplace_id = pending["MarketplaceMessageId"]
    assert marketplace_id
    verdict = await world.meli.post(
        f"/_emulator/messages/{marketplace_id}/moderate", json={"Reason": "AUTOMATIC_MESSAGE"}
    )
    assert verdict.status_code == 200, verdict.text

    moderated = await wait_for_message(world, seller, order_id, Status="moderated")
    assert moderated["Id"] == pending["Id"]
    assert moderated["ModerationReason"] == "AUTOMATIC_MESSAGE"
    assert (moderated["Source"], moderated["Author"]) == ("postventa", "seller")


async def test_a_pending_message_judged_clean_becomes_sent(world: World):
    seller, order_id, pending = await sent_pending(world, "MLA", 3)
    sent = await wait_for_message(world, seller, order_id, Status="sent")
    assert sent["Id"] == pending["Id"]
    assert sent["ModerationReason"] is None


async def test_a_sent_message_rejected_later_becomes_moderated(world: World):
    seller = await world.linked_seller("MLA")
    order_id, _conversation = await sent_order(world, seller)
    (sent,) = await world.conversation(seller, order_id)
    verdict = await world.meli.post(
        f"/_emulator/messages/{sent['MarketplaceMessageId']}/moderate", json={"Reason": "PERSONAL_DATA"}
    )
    assert verdict.status_code == 200, verdict.text
    moderated = await wait_for_message(world, seller, order_id, Status="moderated")
    assert (moderated["Id"], moderated["ModerationReason"]) == (sent["Id"], "PERSONAL_DATA")


async def test_the_ai_agent_answers_for_the_buyer_and_the_seller_answers_it_once(world: World):
    seller = await world.linked_seller("MLB")
    created = await world.emulator_order(seller)
    await world.sync(seller)
    order_id = await world.local_order_id(seller, created["OrderId"])
    pack = created["PackId"] or created["OrderId"]
    started = await world.meli.put(f"/_emulator/packs/{pack}/agent")
    assert started.status_code == 200, started.text
    written = await world.meli.post(
        f"/_emulator/packs/{pack}/agent-messages", json={"Text": "Olá, sou o agente"}
    )
    assert written.status_code == 200, written.text

    agent = await wait_for_message(world, seller, order_id, Direction="inbound")
    assert (agent["Text"], agent["Author"], agent["Source"], agent["Status"]) == (
        "Olá, sou o agente",
        "agent",
        "marketplace",
        "received",
    )
    # The agent's message opens one answer, like a buyer's; the worker writes to the agent.
    answer = await world.api.post(
        f"/v2/orders/{order_id}/messages", params=seller.credentials(messageOptions=4, message="Obrigado")
    )
    assert answer.status_code == 200, answer.text
    await wait_for_message(world, seller, order_id, Direction="outbound", Status="sent")
    again = await world.api.post(
        f"/v2/orders/{order_id}/messages", params=seller.credentials(messageOptions=4, message="Mais uma")
    )
    assert (again.status_code, again.json()["Code"]) == (409, "awaiting_buyer_reply")


async def test_a_seller_center_message_is_recorded_from_the_marketplace(world: World):
    seller = await world.linked_seller("MLA")
    order_id, conversation = await sent_order(world, seller)
    await world.meli.post(f"/_emulator/packs/{conversation}/buyer-messages", json={"Text": "¿Cuándo llega?"})
    await wait_for_message(world, seller, order_id, Direction="inbound")
    written = await world.meli.post(
        f"/_emulator/packs/{conversation}/seller-messages", json={"Text": "Llega el martes"}
    )
    assert written.status_code == 200, written.text

    found = await wait_for_message(world, seller, order_id, Text="Llega el martes")
    assert (found["Direction"], found["Status"], found["Source"], found["Author"]) == (
        "outbound",
        "sent",
        "marketplace",
        "seller",
    )
    assert found["MarketplaceMessageId"] == written.json()["MessageId"]
    messages = await world.conversation(seller, order_id)
    assert [m["Text"] for m in messages].count("Llega el martes") == 1
    # The seller wrote last: the conversation waits for the buyer, whoever the seller wrote through.
    refused = await world.api.post(
        f"/v2/orders/{order_id}/messages", params=seller.credentials(messageOptions=4, message="Otra")
    )
    assert (refused.status_code, refused.json()["Code"]) == (409, "awaiting_buyer_reply")


async def test_a_read_notification_records_when_the_buyer_read_the_message(world: World):
    seller = await world.linked_seller("MLA")
    order_id, _conversation = await sent_order(world, seller)
    (sent,) = await world.conversation(seller, order_id)
    assert sent["ReadAt"] is None
    read = await world.meli.post(f"/_emulator/messages/{sent['MarketplaceMessageId']}/read")
    assert read.status_code == 200, read.text

    async def has_read_time() -> bool:
        (message,) = await world.conversation(seller, order_id)
        return message["ReadAt"] is not None

    await wait_for(has_read_time)
    (message,) = await world.conversation(seller, order_id)
    assert message["ReadAt"][:19] == read.json()["Read"][:19]
    assert message["Status"] == "sent"


async def test_a_notification_of_a_deleted_message_is_done_at_once(world: World, database):
    seller = await world.linked_seller("MLA")
    _order_id, conversation = await sent_order(world, seller)
    await world.configure(NotifyUrl="http://127.0.0.1:9/nowhere")
    try:
        written = await world.meli.post(
            f"/_emulator/packs/{conversation}/buyer-messages", json={"Text": "Borrado"}
        )
        message_id = written.json()["MessageId"]
        deleted = await world.meli.delete(f"/_emulator/messages/{message_id}")
        assert deleted.status_code == 200, deleted.text
    finally:
        await world.configure(NotifyUrl=f"{world.postventa_url}/webhooks/mercadolibre")
    notification = {
        "id": "5e2827f2-0000-4000-8000-000000000001",
        "resource": message_id,
        "user_id": seller.seller_id,
        "topic": "messages",
        "actions": ["created"],
    }
    assert (await world.api.post("/webhooks/mercadolibre", json=notification)).json()["Accepted"] is True

    async def processed() -> bool:
        row = await notification_row(database, message_id, seller.seller_id)
        return row is not None and row.processed_at is not None

    await wait_for(processed)
    row = await notification_row(database, message_id, seller.seller_id)
    assert row.attempts == 1
    assert "could not be retrieved" in row.last_error
    # (Whether the conversation shows "Borrado" is the poll's business, not the notification's: the
    # poll runs on its own schedule and may have read the message in the moment it existed.)


async def test_missed_feeds_are_stored_like_webhook_notifications(world: World, database, emulator):
    seller = await world.linked_seller("MLA")
    order_id, conversation = await sent_order(world, seller)
    await world.configure(NotifyUrl="http://127.0.0.1:9/nowhere")
    try:
        written = await world.meli.post(
            f"/_emulator/packs/{conversation}/buyer-messages", json={"Text": "Perdida"}
        )
        message_id = written.json()["MessageId"]
        meli = MeliClient(emulator.url)
        processor = InboundProcessor(database, meli)
        try:

            async def kept() -> bool:
                await processor.read_missed_feeds()
                return await notification_row(database, message_id, seller.seller_id) is not None

            # The emulator gives up on the callback after its retries (about 8 s).
            await wait_for(kept, timeout=30, every=1.0)
            before = await notification_row(database, message_id, seller.seller_id)
            await processor.read_missed_feeds()  # the same feed again: kept once, not reopened
            after = await notification_row(database, message_id, seller.seller_id)
            assert after.id == before.id
        finally:
            await meli.aclose()
    finally:
        await world.configure(NotifyUrl=f"{world.postventa_url}/webhooks/mercadolibre")
    await wait_for_message(world, seller, order_id, Text="Perdida")


async def test_an_order_of_another_site_is_refused_at_sync_and_on_notification(world: World, database):
    # The link claims another site than the seller's orders come from (an operator's mistake).
    seller = await world.linked_seller("MLB", link_site_id="MLA")
    created = await world.emulator_order(seller)
    response = await world.api.post(
        f"/admin/accounts/{seller.account_id}/mercadolibre/sync", headers=admin_headers(), timeout=300
    )
    assert response.status_code == 400, response.text
    assert response.json()["Code"] == "order_site_mismatch"
    assert str(created["OrderId"]) in response.json()["Message"]
    listed = (await world.api.get("/v2/orders", params=seller.credentials())).json()["Results"]
    assert listed == []

    resource = f"/orders/{created['OrderId']}"
    notification = {"resource": resource, "user_id": seller.seller_id, "topic": "orders_v2"}
    assert (await world.api.post("/webhooks/mercadolibre", json=notification)).json()["Accepted"] is True

    async def processed() -> Any:
        async with database.transaction() as connection:
            row = (
                await connection.execute(
                    select(inbound_notifications).where(
                        inbound_notifications.c.topic == "orders_v2",
                        inbound_notifications.c.resource == resource,
                        inbound_notifications.c.user_id == seller.seller_id,
                    )
                )
            ).first()
        return row if row is not None and row.processed_at is not None else None

    await wait_for(processed)
    row = await processed()
    # Done with its error at the first attempt (the emulator's own notification of the new order may
    # land meanwhile and start the count again: never more than one attempt, never a retry).
    assert row.attempts <= 1
    assert row.last_error.startswith("order_site_mismatch")
    assert (await world.api.get("/v2/orders", params=seller.credentials())).json()["Results"] == []
