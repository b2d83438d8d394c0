"""The delivery commands: link an account and sync its orders from the CLI, requeue a failed message."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from postventa.store.engine import Database
from tests.conftest import admin_headers
from tests.e2e.conftest import EmulatorServer, World, wait_for
from tests.factories import PEPPER

POSTVENTA = str(Path(sys.executable).parent / "postventa")


async def cli(database: Database, emulator_url: str, *args: object) -> Any:
    """Run `postventa ARGS` on the test database and the emulator; its one JSON line."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("POSTVENTA_")}
    env.update(
        POSTVENTA_DATABASE_URL=database.url.render_as_string(hide_password=False),
        POSTVENTA_MELI_API_URL=emulator_url,
        POSTVENTA_API_KEY_PEPPER=PEPPER,
    )
    command = [POSTVENTA, *map(str, args)]
    result = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_link_and_sync_from_the_command_line(
    world: World, database: Database, emulator: EmulatorServer
):
    seller = (await world.meli.post("/_emulator/sellers", json={"SiteId": "MCO"})).json()
    for logistic in ("cross_docking", "fulfillment"):
        body = {"SellerId": seller["SellerId"], "SiteId": "MCO", "LogisticType": logistic}
        assert (await world.meli.post("/_emulator/orders", json=body)).status_code == 200
    account = await cli(database, emulator.url, "accounts", "create", "Tienda CO")

    linked = await cli(
        database, emulator.url, "accounts", "link", account["Id"],
        "--seller-id", seller["SellerId"], "--site-id", "MCO", "--client-id", seller["ClientId"],
        "--client-secret", seller["ClientSecret"], "--refresh-token", seller["RefreshToken"],
    )  # fmt: skip
    synced = await cli(database, emulator.url, "orders", "sync", account["Id"])

    assert linked == {"AccountId": account["Id"], "Linked": True}
    assert synced == {"Imported": 2}
    key = (
        await world.api.post("/admin/api-keys", json={"AccountIds": [account["Id"]]}, headers=admin_headers())
    ).json()
    page = (
        await world.api.get("/v2/orders", params={"API_KEY": key["ApiKey"], "accountId": account["Id"]})
    ).json()
    assert sorted(o["Shipping"]["LogisticType"]["Value"] for o in page["Results"]) == [
        "cross_docking",
        "fulfillment",
    ]
    assert {o["SiteId"] for o in page["Results"]} == {"MCO"}


async def test_a_failed_message_is_requeued_and_then_delivered(
    world: World, database: Database, emulator: EmulatorServer
):
    seller = await world.linked_seller("MLA")
    # We will not hear of the changes, not even late: an orders_v2 notification still in flight
    # when the order is cancelled would import the cancellation and the send would be refused.
    await world.configure(NotifyUrl="http://127.0.0.1:9/nowhere")
    created = await world.emulator_order(seller)
    await world.sync(seller)
    order_id = await world.local_order_id(seller, created["OrderId"])
    await world.meli.put(f"/_emulator/orders/{created['OrderId']}", json={"Status": "cancelled"})
    # Its caps (0 once blocked) cannot be read: the local rules accept, Mercado Libre refuses later.
    await world.faults([{"Route": "GET /messages/action_guide/packs/*/caps_available", "Kind": "500"}])
    sent = await world.api.post(
        f"/v2/orders/{order_id}/messages", params=seller.credentials(messageOptions=4, message="Hola")
    )
    message_id = int(sent.json())

    async def status_is(expected: str) -> bool:
        return (await world.conversation(seller, order_id))[0]["Status"] == expected

    await wait_for(lambda: status_is("failed"))
    await world.meli.put(f"/_emulator/orders/{created['OrderId']}", json={"Status": "paid"})

    requeued = await cli(database, emulator.url, "messages", "requeue", message_id)

    assert requeued == {"Requeued": 1}
    await wait_for(lambda: status_is("sent"), timeout=30)
    message = (await world.conversation(seller, order_id))[0]
    assert message["ErrorCode"] is None
