"""An order synced from Mercado Libre (the emulator) reads with Alephee's fields filled from it: the
sale's closing date (`date_closed`), the shipment id, the buyer's numeric id."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from tests.e2e.conftest import Seller, World

ALEPHEE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def alephee_time(meli_time: str) -> str:
    """Mercado Libre's local time with its offset, as the UTC second postventa writes."""
    return dt.datetime.fromisoformat(meli_time).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def read_order(world: World, seller: Seller, external_order_id: int) -> dict[str, Any]:
    order_id = await world.local_order_id(seller, external_order_id)
    response = await world.api.get(f"/v2/orders/{order_id}", params=seller.credentials())
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_synced_order_carries_date_closed_and_its_shipment(world: World):
    seller = await world.linked_seller("MLA")
    unpaid = await world.emulator_order(seller, Status="payment_required")

    await world.sync(seller)
    before = await read_order(world, seller, unpaid["OrderId"])
    paid = (await world.meli.put(f"/_emulator/orders/{unpaid['OrderId']}", json={"Status": "paid"})).json()
    await world.sync(seller)
    after = await read_order(world, seller, unpaid["OrderId"])

    assert before["DateClosed"] is None  # not paid: the sale has not closed
    assert paid["date_closed"] is not None
    assert after["DateClosed"] == alephee_time(paid["date_closed"])
    assert after["DateCreated"] == alephee_time(paid["date_created"])
    for order in (before, after):
        assert order["Shipping"]["ExternalShippingId"] == paid["shipping"]["id"]
        assert order["Buyer"]["Code"] == unpaid["BuyerId"] == paid["buyer"]["id"]
        assert (order["PackId"], order["IsCancelled"]) == (None, False)
        for written in (order["DateCreated"], order["LastUpdated"]):
            assert ALEPHEE_TIME.match(written)
