"""`postventa demo`: a fresh embedded database with orders that show every rule, then the server.

Each demo order demonstrates a row of the reasons table or a precondition; the table printed at
start says which, with a curl that works as printed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table

from postventa.api.app import create_app
from postventa.api.server import run_server
from postventa.cli.runtime import console
from postventa.config import Settings
from postventa.logs import configure_logging
from postventa.services import admin
from postventa.store.engine import Database
from postventa.store.migrate import upgrade

DEMO_DATABASE = Path("var") / "demo.db"


@dataclass(frozen=True)
class DemoOrder:
    """An order to seed and what it shows."""

    external_id: str
    fields: dict[str, Any]
    shows: str


def demo_orders(today_ar: dt.date) -> list[DemoOrder]:
    """Orders covering every row of the reasons table and every precondition."""
    tomorrow, in_three_days, yesterday = (today_ar + dt.timedelta(days=days) for days in (1, 3, -1))

    def window(day: dt.date) -> dict[str, Any]:
        return {"Date": day.isoformat(), "FromHour": 9, "ToHour": 18}

    return [
        DemoOrder(
            "D-1001",
            {"SiteId": "MLA", "LogisticType": "cross_docking"},
            "AR cross docking: REQUEST_VARIANTS (es), REQUEST_BILLING_INFO (AR), OTHER",
        ),
        DemoOrder(
            "D-1002",
            {"SiteId": "MLB", "LogisticType": "drop_off"},
            "BR drop off: REQUEST_VARIANTS in Portuguese; billing not available in Brazil (412)",
        ),
        DemoOrder(
            "D-1003",
            {"SiteId": "MLM", "LogisticType": "custom"},
            "MX: SEND_INVOICE_LINK, REQUEST_BILLING_INFO (RFC); variants refused for custom (412)",
        ),
        DemoOrder(
            "D-1004",
            {"SiteId": "MCO", "LogisticType": "cross_docking"},
            "CO: REQUEST_VARIANTS, REQUEST_BILLING_INFO with the Colombian fields",
        ),
        DemoOrder(
            "D-1005",
            {"SiteId": "MLU", "LogisticType": "default"},
            "UY me1: REQUEST_BILLING_INFO (Cédula); variants refused for me1 (412)",
        ),
        DemoOrder(
            "D-1006",
            {"SiteId": "MLC", "LogisticType": "self_service", "EstimatedDelivery": window(tomorrow)},
            "CL flex with a window tomorrow: DELIVERY_PROMISE ('mañana'); billing not in Chile (412)",
        ),
        DemoOrder(
            "D-1007",
            {"SiteId": "MLA", "LogisticType": 15, "EstimatedDelivery": window(in_three_days)},
            "AR flex-turbo with a window in three days: DELIVERY_PROMISE ('el dd/mm/yyyy')",
        ),
        DemoOrder(
            "D-1008",
            {"SiteId": "MLA", "LogisticType": "self_service"},
            "AR flex without a delivery window: DELIVERY_PROMISE refused (412)",
        ),
        DemoOrder(
            "D-1009",
            {"SiteId": "MLB", "LogisticType": "self_service", "EstimatedDelivery": window(yesterday)},
            "BR flex whose window is past: DELIVERY_PROMISE refused (412)",
        ),
        DemoOrder(
            "D-1010",
            {"SiteId": "MPE", "LogisticType": "drop_off"},
            "PE: only OTHER; REQUEST_VARIANTS not available in Peru (412)",
        ),
        DemoOrder("D-1011", {"SiteId": "MEC", "LogisticType": "custom"}, "EC: only OTHER"),
        DemoOrder(
            "D-1012",
            {"SiteId": "MLA", "LogisticType": "cross_docking", "Status": 90},
            "cancelled order: every reason refused (412)",
        ),
        DemoOrder(
            "D-1013",
            {"SiteId": "MLA", "LogisticType": "fulfillment", "Status": 20},
            "fulfillment, shipped, not delivered: refused until delivery (412)",
        ),
        DemoOrder(
            "D-1014",
            {"SiteId": "MLA", "LogisticType": "fulfillment", "Status": 80},
            "fulfillment, delivered: OTHER allowed",
        ),
        DemoOrder(
            "D-1015",
            {"SiteId": "MLA", "LogisticType": "drop_off", "PackId": 2000000001},
            "pack 2000000001 (1/2): shares one conversation with D-1016",
        ),
        DemoOrder(
            "D-1016",
            {"SiteId": "MLA", "LogisticType": "drop_off", "PackId": 2000000001},
            "pack 2000000001 (2/2): a message on D-1015 shows here too",
        ),
        DemoOrder(
            "D-1017", {"Marketplace": "Dafiti", "Status": 10}, "not a Mercado Libre order: refused (412)"
        ),
    ]


async def seed(
    database: Database, pepper: str, now: dt.datetime
) -> tuple[int, str, list[tuple[int, DemoOrder]]]:
    """The demo account, its key, and the demo orders; returns their ids."""
    today_ar = now.astimezone(ZoneInfo("America/Argentina/Buenos_Aires")).date()
    orders = demo_orders(today_ar)
    payload = {
        "Orders": [
            {
                "ExternalOrderId": order.external_id,
                "Buyer": {
                    "Code": f"B{index + 1:03}",
                    "Nickname": f"COMPRADOR{index + 1}",
                    "Name": "Demo Buyer",
                },
                **order.fields,
            }
            for index, order in enumerate(orders)
        ]
    }
    async with database.transaction(write=True) as connection:
        account = await admin.create_account(connection, "Demo seller", now)
        key = await admin.create_api_key(connection, [account.id], pepper, now)
        imported = await admin.import_orders(connection, account.id, payload, now)
    return account.id, key.api_key, [(item.id, order) for item, order in zip(imported, orders, strict=True)]


def run(host: str, port: int) -> None:
    """Reset the demo database, seed it, print how to try it, serve until interrupted."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DEMO_DATABASE}{suffix}").unlink(missing_ok=True)
    admin_token = os.environ.get("POSTVENTA_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    settings = Settings(database_url=f"sqlite:///{DEMO_DATABASE}", admin_token=admin_token)
    configure_logging("warning")

    async def prepare() -> tuple[int, str, list[tuple[int, DemoOrder]]]:
        database = Database(settings.database_url)
        try:
            await upgrade(database)
            return await seed(database, settings.api_key_pepper, dt.datetime.now(dt.UTC))
        finally:
            await database.dispose()

    account_id, api_key, orders = asyncio.run(prepare())
    _print_guide(f"http://{host}:{port}", account_id, api_key, admin_token, orders)
    run_server(create_app(settings), host, port, "warning")


def _print_guide(
    base: str, account_id: int, api_key: str, admin_token: str, orders: list[tuple[int, DemoOrder]]
) -> None:
    table = Table(title="Demo orders", show_lines=False)
    table.add_column("Id", justify="right")
    table.add_column("External")
    table.add_column("What it shows")
    for order_id, order in orders:
        table.add_row(str(order_id), order.external_id, order.shows)
    console.print(table)
    first = orders[0][0]
    credentials = f"API_KEY={api_key}&accountId={account_id}"
    console.print(f"\n[bold]Database[/bold]    {DEMO_DATABASE} (fresh each run)")
    console.print(f"[bold]Account[/bold]     {account_id}")
    console.print(f"[bold]API key[/bold]     {api_key}")
    console.print(f"[bold]Admin token[/bold] {admin_token}")
    console.print(f"[bold]API docs[/bold]    {base}/docs\n")
    console.print(f"Send a message (OTHER, free text) to the buyer of order {first}:")
    send_query = f"{credentials}&messageOptions=4&message=Hola,+gracias+por+tu+compra"
    console.print(f"  curl -s -X POST '{base}/v2/orders/{first}/messages?{send_query}'", soft_wrap=True)
    console.print("See it in the conversation, status queued:")
    console.print(f"  curl -s '{base}/v2/orders/{first}/messages?{credentials}'", soft_wrap=True)
    console.print("What each reason would get now:")
    console.print(f"  curl -s '{base}/v2/orders/{first}/messages/options?{credentials}'", soft_wrap=True)
    console.print("Let the buyer answer (admin API), which unlocks the next message:")
    console.print(
        f"  curl -s -X POST -H 'Authorization: Bearer {admin_token}' -H 'Content-Type: application/json' "
        f"-d '{{\"Text\": \"Gracias!\"}}' '{base}/admin/orders/{first}/buyer-messages'",
        soft_wrap=True,
    )
    console.print(f"\nServing on {base} — Ctrl+C to stop.\n")
