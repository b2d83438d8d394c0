"""A seller revokes the application on Mercado Libre (the emulator over real HTTP): the refresh is
refused with invalid_grant, the account needs relinking and its message waits queued, the service
stays ready; the seller authorises again, the operator links the account again, the message goes."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import admin_headers
from tests.e2e.conftest import Seller, World, wait_for

ADMIN = admin_headers()


async def token_answers(world: World, since: int) -> list[int]:
    """The statuses of Mercado Libre's answers to token requests since the journal mark."""
    return [e["Status"] for e in await world.journal(since) if e["Path"] == "/oauth/token"]


async def account(world: World, seller: Seller) -> dict[str, Any]:
    response = await world.api.get(f"/admin/accounts/{seller.account_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def message_status(world: World, seller: Seller, order_id: int, message_id: int) -> str:
    [message] = [m for m in await world.conversation(seller, order_id) if m["Id"] == message_id]
    return str(message["Status"])


async def needs_relink_gauge(world: World, seller: Seller) -> str | None:
    series = f'postventa_marketplace_link_needs_relink{{account_id="{seller.account_id}"}} '
    for line in (await world.api.get("/metrics")).text.splitlines():
        if line.startswith(series):
            return line.removeprefix(series)
    return None


async def test_a_revoked_seller_waits_queued_until_linked_again_then_the_message_goes(world: World, database):
    seller = await world.linked_seller("MLA")
    created = await world.emulator_order(seller)
    await world.sync(seller)
    order_id = await world.local_order_id(seller, created["OrderId"])
    mark = await world.journal_mark()

    revoked = await world.meli.post(f"/_emulator/sellers/{seller.seller_id}/revoke")
    assert revoked.status_code == 200, revoked.text
    sent = await world.api.post(
        f"/v2/orders/{order_id}/messages", params=seller.credentials(messageOptions=4, message="Hola")
    )
    assert sent.status_code == 200, sent.text
    message_id = int(sent.json())

    async def needs_relink() -> bool:
        link = (await account(world, seller))["MercadoLibre"]
        return link is not None and link["Status"] == "needs_relink"

    await wait_for(needs_relink)
    # Long enough for the worker's retries (0.2 s base) and the inbound poll (2 s) to come back, if
    # anything still asked Mercado Libre for this seller's tokens.
    await asyncio.sleep(3)
    assert await token_answers(world, mark) == [400]  # one refused refresh, never retried
    assert await message_status(world, seller, order_id, message_id) == "queued"
    link = (await account(world, seller))["MercadoLibre"]
    assert (link["SellerId"], link["Status"]) == (seller.seller_id, "needs_relink")
    assert "invalid_grant" in link["StatusReason"]
    assert await needs_relink_gauge(world, seller) == "1.0"
    ready = await world.api.get("/readyz")
    assert ready.status_code == 200, ready.text

    await world.relink(seller, database)

    async def is_sent() -> bool:
        return await message_status(world, seller, order_id, message_id) == "sent"

    await wait_for(is_sent)
    link = (await account(world, seller))["MercadoLibre"]
    assert (link["Status"], link["StatusReason"]) == ("active", None)
    assert await needs_relink_gauge(world, seller) == "0.0"
    options = [
        e["Status"]
        for e in await world.journal(mark)
        if e["Path"].endswith("/option") and e["SellerId"] == seller.seller_id
    ]
    assert options[-1] == 200
    assert options.count(200) == 1  # delivered once
