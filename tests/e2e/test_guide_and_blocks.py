"""The action guide's caps and the conversation blocks, as Mercado Libre (the emulator) applies them,
through postventa's send, /options, the worker and the reads, over real HTTP."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Seller, World, wait_for

CAPS_UNREADABLE = [{"Route": "GET /messages/action_guide/packs/*/caps_available", "Kind": "500"}]


async def order_of(world: World, seller: Seller, **fields: Any) -> tuple[int, int]:
    """(postventa's order id, the conversation's Mercado Libre key) of a new synced order."""
    created = await world.emulator_order(seller, **fields)
    await world.sync(seller)
    key = created["PackId"] or created["OrderId"]
    return await world.local_order_id(seller, created["OrderId"]), int(key)


async def send(world: World, seller: Seller, order_id: int, **parameters: Any) -> Any:
    return await world.api.post(f"/v2/orders/{order_id}/messages", params=seller.credentials(**parameters))


async def options(world: World, seller: Seller, order_id: int) -> dict[str, Any]:
    response = await world.api.get(f"/v2/orders/{order_id}/messages/options", params=seller.credentials())
    assert response.status_code == 200, response.text
    return dict(response.json())


def option(body: dict[str, Any], reason: int) -> dict[str, Any]:
    return next(item for item in body["Results"] if item["Reason"]["Key"] == reason)


async def latest(world: World, seller: Seller, order_id: int) -> dict[str, Any]:
    return (await world.conversation(seller, order_id))[-1]


async def test_a_cap_of_zero_at_mercadolibre_refuses_the_send_and_shows_in_options(world: World):
    seller = await world.linked_seller("MLA")
    order_id, pack = await order_of(world, seller)
    forced = await world.meli.put(f"/_emulator/packs/{pack}/caps", json={"OTHER": 0})
    assert forced.status_code == 200, forced.text

    body = await options(world, seller, order_id)
    refused = await send(world, seller, order_id, messageOptions=4, message="Hola")

    assert body["MarketplaceCaps"]["Source"] == "mercadolibre"
    assert body["MarketplaceCaps"]["Caps"]["OTHER"] == 0
    assert option(body, 4)["Available"] is False
    assert option(body, 4)["Code"] == "marketplace_cap_exhausted"
    assert option(body, 1)["Available"] is True  # REQUEST_VARIANTS keeps its cap
    assert refused.status_code == 409
    assert refused.json()["Code"] == "marketplace_cap_exhausted"
    assert await world.conversation(seller, order_id) == []


async def test_when_mercadolibre_cannot_be_asked_the_local_rules_decide_and_say_so(world: World):
    seller = await world.linked_seller("MLA")
    order_id, _pack = await order_of(world, seller)
    await world.faults(CAPS_UNREADABLE)

    body = await options(world, seller, order_id)
    accepted = await send(world, seller, order_id, messageOptions=4, message="Hola")

    assert body["MarketplaceCaps"]["Source"] == "local_rules"
    assert body["MarketplaceCaps"]["Note"]
    assert option(body, 4)["Available"] is True
    assert accepted.status_code == 200, accepted.text


async def test_an_excepted_pack_is_messaged_through_messages(world: World):
    seller = await world.linked_seller("MLA")
    order_id, pack = await order_of(world, seller)
    assert (await world.meli.put(f"/_emulator/packs/{pack}/excepted")).status_code == 200
    mark = await world.journal_mark()

    body = await options(world, seller, order_id)
    accepted = await send(world, seller, order_id, messageOptions=4, message="Hola")
    assert accepted.status_code == 200, accepted.text

    async def is_sent() -> bool:
        return (await latest(world, seller, order_id))["Status"] == "sent"

    await wait_for(is_sent)
    assert body["MarketplaceCaps"]["Excepted"] is True
    posts = [
        entry for entry in await world.journal(mark) if entry["Method"] == "POST" and entry["Status"] == 201
    ]
    assert [entry["Path"] for entry in posts] == [f"/messages/packs/{pack}/sellers/{seller.seller_id}"]


async def test_an_unpaid_order_is_refused_412_and_reads_show_the_payment_block(world: World):
    seller = await world.linked_seller("MLA")
    order_id, _pack = await order_of(world, seller, Status="payment_required")

    refused = await send(world, seller, order_id, messageOptions=4, message="Hola")
    read = await world.api.get(f"/v2/orders/{order_id}/messages", params=seller.credentials())

    assert refused.status_code == 412
    assert refused.json()["Code"] == "order_payment_pending"
    assert read.json()["ConversationStatus"]["Status"] == "blocked"
    assert read.json()["ConversationStatus"]["Substatus"] == "blocked_by_payment"


async def test_a_payment_block_met_at_delivery_waits_and_the_message_goes_once_it_lifts(world: World):
    seller = await world.linked_seller("MLA")
    order_id, pack = await order_of(world, seller)
    await world.faults(CAPS_UNREADABLE)  # so that postventa accepts what Mercado Libre will refuse
    assert (
        await world.meli.put(f"/_emulator/packs/{pack}/block", json={"Reason": "blocked_by_payment"})
    ).status_code == 200

    accepted = await send(world, seller, order_id, messageOptions=4, message="Hola")
    assert accepted.status_code == 200, accepted.text

    async def is_waiting() -> bool:
        message = await latest(world, seller, order_id)
        return message["Status"] == "queued" and message["ErrorCode"] == "conversation_blocked_by_payment"

    await wait_for(is_waiting)
    waiting = await latest(world, seller, order_id)
    assert (await world.meli.delete(f"/_emulator/packs/{pack}/block")).status_code == 200

    async def is_sent() -> bool:
        return (await latest(world, seller, order_id))["Status"] == "sent"

    await wait_for(is_sent)
    assert waiting["Attempts"] == 0  # waiting never used up an attempt


async def test_a_buyer_block_fails_the_message_with_its_own_code(world: World):
    seller = await world.linked_seller("MLA")
    order_id, pack = await order_of(world, seller)
    await world.faults(CAPS_UNREADABLE)
    assert (
        await world.meli.put(f"/_emulator/packs/{pack}/block", json={"Reason": "blocked_by_buyer"})
    ).status_code == 200

    accepted = await send(world, seller, order_id, messageOptions=4, message="Hola")
    assert accepted.status_code == 200, accepted.text

    async def is_failed() -> bool:
        return (await latest(world, seller, order_id))["Status"] == "failed"

    await wait_for(is_failed)
    assert (await latest(world, seller, order_id))["ErrorCode"] == "conversation_blocked_by_buyer"


async def test_a_deactivated_buyer_fails_the_message_as_451_says(world: World):
    seller = await world.linked_seller("MLA")
    order_id, pack = await order_of(world, seller)
    await world.faults(CAPS_UNREADABLE)
    blocked = await world.meli.put(
        f"/_emulator/packs/{pack}/block", json={"Reason": "blocked_by_deactivated_account"}
    )
    assert blocked.status_code == 200

    accepted = await send(world, seller, order_id, messageOptions=4, message="Hola")
    assert accepted.status_code == 200, accepted.text

    async def is_failed() -> bool:
        return (await latest(world, seller, order_id))["Status"] == "failed"

    await wait_for(is_failed)
    assert (await latest(world, seller, order_id))["ErrorCode"] == "buyer_account_deactivated"


async def test_other_cannot_open_a_delivered_orders_conversation_in_mexico(world: World):
    seller = await world.linked_seller("MLM")
    order_id, _pack = await order_of(world, seller, ShipmentStatus="delivered")

    refused = await send(world, seller, order_id, messageOptions=4, message="Hola")

    assert refused.status_code == 409
    assert refused.json()["Code"] == "reason_closed_after_delivery"
