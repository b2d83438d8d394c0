"""The whole loop against the emulator: send, delivered once, buyer answers, next message with a file."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import World, wait_for

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def sends(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The journal entries that deliver a message (action guide or /messages)."""
    return [
        entry
        for entry in entries
        if entry["Method"] == "POST"
        and (
            entry["Path"].endswith("/option")
            or ("/messages/packs/" in entry["Path"] and "/sellers/" in entry["Path"])
        )
    ]


async def message_status(world: World, seller, order_id: int, position: int = 0) -> str | None:
    messages = await world.conversation(seller, order_id)
    return messages[position]["Status"] if len(messages) > position else None


async def test_send_reply_and_attachment_reach_mercadolibre_exactly_once(world: World):
    seller = await world.linked_seller("MLA")
    created = await world.emulator_order(seller, Buyer={"Id": 777001, "Nickname": "COMPRADOR"})
    assert await world.sync(seller) >= 1
    order_id = await world.local_order_id(seller, created["OrderId"])
    conversation_id = created["PackId"] or created["OrderId"]
    mark = await world.journal_mark()

    sent = await world.api.post(
        f"/v2/orders/{order_id}/messages",
        params=seller.credentials(messageOptions=4, message="Hola, gracias por tu compra"),
    )
    assert sent.status_code == 200, sent.text

    async def first_is_sent() -> bool:
        return await message_status(world, seller, order_id) == "sent"

    await wait_for(first_is_sent)
    first = (await world.conversation(seller, order_id))[0]
    assert first["MarketplaceMessageId"]
    calls = sends(await world.journal(mark))
    assert [(call["Path"], call["Body"]["option_id"], call["Body"]["text"]) for call in calls] == [
        (f"/messages/action_guide/packs/{conversation_id}/option", "OTHER", "Hola, gracias por tu compra")
    ]

    blocked = await world.api.post(
        f"/v2/orders/{order_id}/messages", params=seller.credentials(messageOptions=4, message="¿Y?")
    )
    assert blocked.status_code == 409
    reply = await world.meli.post(
        f"/_emulator/packs/{conversation_id}/buyer-messages", json={"Text": "¡Gracias!"}
    )
    assert reply.status_code in (200, 201), reply.text

    async def reply_recorded() -> bool:
        return any(m["Direction"] == "inbound" for m in await world.conversation(seller, order_id))

    await wait_for(reply_recorded)
    mark = await world.journal_mark()
    with_file = await world.api.post(
        f"/v2/orders/{order_id}/messages",
        data={
            **{k: str(v) for k, v in seller.credentials().items()},
            "messageOptions": "4",
            "message": "Tu factura",
        },
        files={"file": ("factura.pdf", PDF, "application/pdf")},
    )
    assert with_file.status_code == 200, with_file.text

    async def third_is_sent() -> bool:
        return await message_status(world, seller, order_id, 2) == "sent"

    await wait_for(third_is_sent)
    entries = await world.journal(mark)
    uploads = [e for e in entries if e["Method"] == "POST" and e["Path"] == "/messages/attachments"]
    assert len(uploads) == 1
    calls = sends(entries)
    assert len(calls) == 1
    assert calls[0]["Path"] == f"/messages/packs/{conversation_id}/sellers/{seller.seller_id}"
    assert calls[0]["Body"]["text"] == "Tu factura"
    assert len(calls[0]["Body"]["attachments"]) == 1


async def test_template_reason_goes_by_the_action_guide_with_its_template(world: World):
    seller = await world.linked_seller("MLA")
    created = await world.emulator_order(seller, LogisticType="cross_docking")
    await world.sync(seller)
    order_id = await world.local_order_id(seller, created["OrderId"])
    mark = await world.journal_mark()

    sent = await world.api.post(
        f"/v2/orders/{order_id}/messages", params=seller.credentials(messageOptions=1)
    )
    assert sent.status_code == 200

    async def is_sent() -> bool:
        return await message_status(world, seller, order_id) == "sent"

    await wait_for(is_sent)
    calls = sends(await world.journal(mark))
    assert [(c["Body"]["option_id"], c["Body"]["template_id"]) for c in calls] == [
        ("REQUEST_VARIANTS", "TEMPLATE___REQUEST_VARIANTS___1")
    ]


async def test_contact_data_is_moderated_with_its_reason(world: World):
    seller = await world.linked_seller("MLA")
    created = await world.emulator_order(seller)
    await world.sync(seller)
    order_id = await world.local_order_id(seller, created["OrderId"])

    sent = await world.api.post(
        f"/v2/orders/{order_id}/messages",
        params=seller.credentials(messageOptions=4, message="Escribime a vendedor@example.com"),
    )
    assert sent.status_code == 200

    async def is_moderated() -> bool:
        return await message_status(world, seller, order_id) == "moderated"

    await wait_for(is_moderated)
    message = (await world.conversation(seller, order_id))[0]
    assert message["ModerationReason"]
    assert message["MarketplaceMessageId"]


async def test_permanent_refusal_ends_failed_with_code_and_message(world: World):
    seller = await world.linked_seller("MLA")
    # No notification reaches us from here on (wrong callback): an orders_v2 notification still
    # being processed when the order is cancelled would import the cancellation, and the send
    # would be refused locally instead of by Mercado Libre.
    await world.configure(NotifyUrl="http://127.0.0.1:9/nowhere")
    created = await world.emulator_order(seller)
    await world.sync(seller)
    order_id = await world.local_order_id(seller, created["OrderId"])
    # Mercado Libre cancels the order.
    changed = await world.meli.put(f"/_emulator/orders/{created['OrderId']}", json={"Status": "cancelled"})
    assert changed.status_code == 200, changed.text
    # Its caps (0 once blocked) cannot be read: the local rules accept, Mercado Libre refuses later.
    await world.faults([{"Route": "GET /messages/action_guide/packs/*/caps_available", "Kind": "500"}])

    sent = await world.api.post(
        f"/v2/orders/{order_id}/messages", params=seller.credentials(messageOptions=4, message="Hola")
    )
    assert sent.status_code == 200

    async def is_failed() -> bool:
        return await message_status(world, seller, order_id) == "failed"

    await wait_for(is_failed)
    message = (await world.conversation(seller, order_id))[0]
    assert message["ErrorCode"] == "conversation_blocked"
    assert "403" in message["ErrorMessage"]
    assert message["DateFailed"]


async def test_orders_v2_notification_imports_a_new_order(world: World):
    seller = await world.linked_seller("MLB")
    created = await world.emulator_order(
        seller,
        LogisticType="self_service",
        DeliveryWindow={"Date": "2030-01-02", "FromHour": 9, "ToHour": 18},
    )

    async def imported() -> bool:
        page = (await world.api.get("/v2/orders", params=seller.credentials())).json()
        return any(order["ExternalOrderId"] == str(created["OrderId"]) for order in page["Results"])

    await wait_for(imported)
    order_id = await world.local_order_id(seller, created["OrderId"])
    order = (await world.api.get(f"/v2/orders/{order_id}", params=seller.credentials())).json()
    assert order["SiteId"] == "MLB"
    assert order["Shipping"]["LogisticType"] == {"Key": 6, "Value": "flex"}
    assert order["Shipping"]["EstimatedDelivery"] == {"Date": "2030-01-02", "FromHour": 9, "ToHour": 18}
    assert order["Buyer"]["Code"] == created["BuyerId"]  # Alephee's Code is an integer
