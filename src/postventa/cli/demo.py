"""`postventa demo`: the whole loop on one machine — postventa, its worker, and the Mercado Libre emulator.

A fresh embedded database; one emulator seller per site, each linked to a demo account; orders made
in the emulator and synced from it, covering every row of the reasons table and every precondition;
one API key for all the accounts; a buyer who answers a few seconds after each message; and a
webhook receiver of the demo's own that prints every event it is sent (`cli/demo_webhooks.py`).
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

import httpx2
import uvicorn
from rich.table import Table

from postventa.api.server import uvicorn_options
from postventa.cli.demo_webhooks import DemoReceiver, register_receiver, start_receiver
from postventa.cli.runtime import console
from postventa.config import Settings
from postventa.emulator.app import create_emulator_app
from postventa.emulator.config import EmulatorConfig
from postventa.logs import configure_logging
from postventa.meli.client import MeliClient
from postventa.services import admin, console_users
from postventa.services.marketplace import link_account, sync_orders
from postventa.store.engine import Database
from postventa.store.migrate import upgrade
from postventa.store.orders import OrderFilter, list_orders
from postventa.wiring import create_app, meli_client, open_database

DEMO_DATABASE = Path("var") / "demo.db"
BUYER_REPLY_SECONDS = 5.0
DEMO_PACK = 2000000001


@dataclass(frozen=True)
class DemoOrder:
    """An order to create in the emulator, and what it shows."""

    site: str
    fields: dict[str, Any]
    shows: str


def demo_orders(today: dt.date) -> list[DemoOrder]:
    """Orders covering every row of the reasons table and every precondition."""

    def window(days: int) -> dict[str, Any]:
        return {"Date": (today + dt.timedelta(days=days)).isoformat(), "FromHour": 9, "ToHour": 18}

    return [
        DemoOrder(
            "MLA",
            {"LogisticType": "cross_docking"},
            "AR cross docking: REQUEST_VARIANTS, billing (DNI), OTHER",
        ),
        DemoOrder(
            "MLB",
            {"LogisticType": "drop_off"},
            "BR drop off: REQUEST_VARIANTS in Portuguese; no billing (412)",
        ),
        DemoOrder(
            "MLM",
            {"LogisticType": "custom"},
            "MX: SEND_INVOICE_LINK, billing (RFC); variants need cross docking",
        ),
        DemoOrder(
            "MCO",
            {"LogisticType": "xd_drop_off"},
            "CO drop off: REQUEST_VARIANTS, billing with Colombian fields",
        ),
        DemoOrder(
            "MLU",
            {"LogisticType": "default"},
            "UY me1: billing (Cédula); REQUEST_VARIANTS refused for me1 (412)",
        ),
        DemoOrder(
            "MLC",
            {"LogisticType": "self_service", "DeliveryWindow": window(1)},
            "CL flex, window tomorrow: DELIVERY_PROMISE ('mañana'); no billing in Chile (412)",
        ),
        DemoOrder(
            "MLA",
            {"LogisticType": "self_service", "DeliveryWindow": window(3)},
            "AR flex, window in three days: DELIVERY_PROMISE ('el dd/mm/yyyy')",
        ),
        DemoOrder(
            "MLB",
            {"LogisticType": "self_service", "DeliveryWindow": window(-1)},
            "BR flex whose window is past: DELIVERY_PROMISE refused (412)",
        ),
        DemoOrder(
            "MLM", {"LogisticType": "self_service"}, "MX flex: DELIVERY_PROMISE not available in Mexico (412)"
        ),
        DemoOrder(
            "MPE",
            {"LogisticType": "drop_off"},
            "PE: only OTHER; REQUEST_VARIANTS not available in Peru (412)",
        ),
        DemoOrder("MEC", {"LogisticType": "custom"}, "EC: only OTHER"),
        DemoOrder(
            "MLA",
            {"LogisticType": "cross_docking", "Status": "cancelled"},
            "cancelled: every reason refused (412)",
        ),
        DemoOrder(
            "MLA",
            {"LogisticType": "fulfillment", "ShipmentStatus": "shipped"},
            "fulfillment, shipped, not delivered: refused until delivery (412)",
        ),
        DemoOrder(
            "MLA",
            {"LogisticType": "fulfillment", "ShipmentStatus": "delivered"},
            "fulfillment, delivered: OTHER allowed",
        ),
        DemoOrder(
            "MLA",
            {"LogisticType": "drop_off", "PackId": DEMO_PACK},
            "pack (1/2): one conversation with the next",
        ),
        DemoOrder(
            "MLA",
            {"LogisticType": "drop_off", "PackId": DEMO_PACK},
            "pack (2/2): a message on the first shows here",
        ),
    ]


DEMO_CONSOLE_EMAIL = "operator@demo.postventa.test"


@dataclass(frozen=True)
class Seeded:
    """What the guide prints."""

    api_key: str
    rows: list[tuple[int, int, str, str]]  # order id, account id, site, what it shows
    console_email: str = DEMO_CONSOLE_EMAIL
    console_password: str = ""


async def seed(settings: Settings, emulator_url: str, now: dt.datetime) -> Seeded:
    """Sellers and orders in the emulator; accounts linked to them and synced; one key for all."""
    database, meli = open_database(settings), meli_client(settings, emulator_url)
    today = now.astimezone(ZoneInfo("America/Argentina/Buenos_Aires")).date()
    orders = demo_orders(today)
    try:
        await upgrade(database)
        accounts: dict[str, int] = {}
        sellers: dict[str, int] = {}
        async with httpx2.AsyncClient(base_url=emulator_url, timeout=10) as control:
            for site in dict.fromkeys(order.site for order in orders):
                accounts[site], sellers[site] = await _linked_account(database, meli, control, site, now)
            externals = [await _emulator_order(control, order, sellers[order.site]) for order in orders]
        for account_id in accounts.values():
            await sync_orders(database, account_id, meli, now)
        async with database.transaction(write=True) as connection:
            key = await admin.create_api_key(
                connection, list(accounts.values()), settings.api_key_pepper, now
            )
            await admin.import_orders(
                connection,
                accounts["MLA"],
                {"Orders": [{"ExternalOrderId": "DAFITI-1", "Marketplace": "Dafiti"}]},
                now,
            )
            console_password = secrets.token_urlsafe(12)
            await console_users.create_user(
                connection,
                email=DEMO_CONSOLE_EMAIL,
                password=console_password,
                account_ids=list(accounts.values()),
                role="admin",
                now=now,
            )
        rows = await _rows(database, accounts, orders, externals)
        return Seeded(key.api_key, rows, console_password=console_password)
    finally:
        await meli.aclose()
        await database.dispose()


async def _linked_account(
    database: Database, meli: MeliClient, control: httpx2.AsyncClient, site: str, now: dt.datetime
) -> tuple[int, int]:
    """A new emulator seller on the site, linked to a new demo account: (account id, seller id)."""
    seller = (await control.post("/_emulator/sellers", json={"SiteId": site})).raise_for_status().json()
    async with database.transaction(write=True) as connection:
        account = await admin.create_account(connection, f"Demo seller {site}", now)
    link = {
        "SellerId": seller["SellerId"],
        "SiteId": site,
        "ClientId": seller["ClientId"],
        "ClientSecret": seller["ClientSecret"],
        "RefreshToken": seller["RefreshToken"],
    }
    await link_account(database, account.id, link, meli, now)
    return account.id, int(seller["SellerId"])


async def _emulator_order(control: httpx2.AsyncClient, order: DemoOrder, seller_id: int) -> str:
    body = {"SellerId": seller_id, "SiteId": order.site, "Status": "paid", **order.fields}
    created = (await control.post("/_emulator/orders", json=body)).raise_for_status().json()
    return str(created["OrderId"])


async def _rows(
    database: Database, accounts: dict[str, int], orders: list[DemoOrder], externals: list[str]
) -> list[tuple[int, int, str, str]]:
    local: dict[str, tuple[int, int]] = {}
    async with database.transaction() as connection:
        for account_id in accounts.values():
            _total, found = await list_orders(connection, account_id, OrderFilter(), limit=1000, offset=0)
            local |= {order.data.external_order_id: (order.id, account_id) for order in found}
    rows = [
        (*local[external], order.site, order.shows) for order, external in zip(orders, externals, strict=True)
    ]
    dafiti = local["DAFITI-1"]
    rows.append((*dafiti, "-", "not a Mercado Libre order (imported by the admin API): refused (412)"))
    return rows


def run(host: str, port: int, emulator_port: int) -> None:
    """Reset the demo database, start the emulator and postventa, seed, print how to try it, serve."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DEMO_DATABASE}{suffix}").unlink(missing_ok=True)
    admin_token = os.environ.get("POSTVENTA_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    base, emulator_url = f"http://{host}:{port}", f"http://{host}:{emulator_port}"
    settings = Settings(
        database_url=f"sqlite:///{DEMO_DATABASE}",
        admin_token=admin_token,
        meli_api_url=emulator_url,
        public_url=base,
        embedded_worker=True,
        poll_interval_seconds=10,
        webhook_allow_private=True,  # the demo's receiver listens on the loopback interface, over http
    )
    configure_logging("warning")
    asyncio.run(_serve(settings, host, port, emulator_port))


async def _serve(settings: Settings, host: str, port: int, emulator_port: int) -> None:
    base = f"http://{host}:{port}"
    emulator_config = EmulatorConfig(
        notify_url=f"{base}/webhooks/mercadolibre", auto_buyer_reply_seconds=BUYER_REPLY_SECONDS
    )
    emulator = uvicorn.Server(
        uvicorn.Config(
            create_emulator_app(emulator_config),
            host=host,
            port=emulator_port,
            access_log=False,
            log_config=None,
            log_level="warning",
        )
    )
    emulator_task = asyncio.create_task(emulator.serve())
    while not emulator.started:
        await asyncio.sleep(0.05)
    seeded = await seed(settings, f"http://{host}:{emulator_port}", dt.datetime.now(dt.UTC))
    receiver = await start_receiver(host, lambda line: console.print(line, soft_wrap=True, markup=False))
    if receiver is not None:
        accounts = sorted({account_id for _order, account_id, _site, _shows in seeded.rows})
        await register_receiver(settings, receiver, accounts, dt.datetime.now(dt.UTC))
    _print_guide(base, f"http://{host}:{emulator_port}", seeded, settings.admin_token or "", receiver)
    api = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=host,
            port=port,
            **(uvicorn_options(settings) | {"log_level": "warning"}),
        )
    )
    try:
        await api.serve()
    finally:
        emulator.should_exit = True
        await emulator_task
        if receiver is not None:
            await receiver.stop()


def _print_guide(
    base: str, emulator_url: str, seeded: Seeded, admin_token: str, receiver: DemoReceiver | None
) -> None:
    table = Table(title="Demo orders (synced from the Mercado Libre emulator)")
    for column in ("Order", "Account", "Site", "What it shows"):
        table.add_column(column)
    for order_id, account_id, site, shows in sorted(seeded.rows):
        table.add_row(str(order_id), str(account_id), site, shows)
    console.print(table)
    first_order, first_account = min(seeded.rows)[0], min(seeded.rows)[1]
    credentials = f"API_KEY={seeded.api_key}&accountId={first_account}"
    console.print(f"\n[bold]Database[/bold]    {DEMO_DATABASE} (fresh each run)")
    console.print(f"[bold]API key[/bold]     {seeded.api_key} (opens every demo account)", soft_wrap=True)
    console.print(f"[bold]Admin token[/bold] {admin_token}")
    console.print(f"[bold]API docs[/bold]    {base}/docs")
    console.print(
        f"[bold]Console[/bold]     {base}/console/ (sign in as {seeded.console_email}, "
        f"password {seeded.console_password})",
        soft_wrap=True,
    )
    console.print(
        f"[bold]Emulator[/bold]    {emulator_url} (journal: {emulator_url}/_emulator/journal)\n",
        soft_wrap=True,
    )
    console.print(f"Send a message (OTHER, free text) to the buyer of order {first_order}:")
    send_query = f"{credentials}&messageOptions=4&message=Hola,+gracias+por+tu+compra"
    console.print(f"  curl -s -X POST '{base}/v2/orders/{first_order}/messages?{send_query}'", soft_wrap=True)
    console.print("Watch it go queued -> sent, then the buyer's answer arrive (about 5 s later):")
    console.print(f"  curl -s '{base}/v2/orders/{first_order}/messages?{credentials}'", soft_wrap=True)
    console.print("Then what each reason would get now (the next message is allowed):")
    console.print(
        f"  curl -s '{base}/v2/orders/{first_order}/messages/options?{credentials}'", soft_wrap=True
    )
    _print_webhooks(receiver)
    console.print(f"Serving on {base} — Ctrl+C to stop.\n")


def _print_webhooks(receiver: DemoReceiver | None) -> None:
    if receiver is None:
        console.print("\nWebhooks: install the SDK (pip install ./sdk) to see the demo receive them.\n")
        return
    console.print(
        f"\n[bold]Webhooks[/bold]    every account's events are POSTed to {receiver.url}/events/<account>; "
        "each one received is printed below, verified with postventa_sdk.verify_webhook "
        "(docs/webhooks.md).\n",
        soft_wrap=True,
    )
