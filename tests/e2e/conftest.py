"""End-to-end fixtures: the Mercado Libre emulator and postventa (with its worker), both over real TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from postventa.emulator.app import create_emulator_app
from postventa.store.engine import Database
from postventa.store.links import get_link
from tests.conftest import LiveServer, admin_headers, make_settings
from tests.servers import ThreadedServer


class EmulatorServer(ThreadedServer):
    """The emulator on a loopback port, in a thread."""

    def __init__(self) -> None:
        super().__init__(create_emulator_app(), log_level="critical")


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


# Long enough that a test machine running four test processes on two cores does not make an ordinary
# call look like Mercado Libre timing out; the `timeout` fault waits longer than this.
MELI_TIMEOUT_SECONDS = 3.0


@pytest.fixture(scope="session")
def postventa(database_url: str, database: Database, emulator: EmulatorServer) -> Iterator[LiveServer]:
    """postventa with its in-process worker, delivering to the emulator with short timeouts."""
    settings = make_settings(
        database_url,
        meli_api_url=emulator.url,
        embedded_worker=True,
        meli_timeout_seconds=MELI_TIMEOUT_SECONDS,
        worker_lease_seconds=5 * MELI_TIMEOUT_SECONDS,
        poll_interval_seconds=2.0,
        worker_concurrency=16,
        retry_base_seconds=0.2,
        retry_max_seconds=10.0,
        retry_wait_seconds=1.0,
        # A 429 without Retry-After cools the endpoint down; 10 s by default, scaled like the retries.
        meli_cool_down_seconds=1.0,
        # Each test seller is its own Mercado Libre application with its own budget in the emulator;
        # one process-wide budget of 500 would make long runs wait on the pacer, not on the faults.
        meli_requests_per_minute=100_000,
    )
    with LiveServer(settings) as server:
        yield server


@dataclass
class Seller:
    """A Mercado Libre seller in the emulator, linked to a postventa account."""

    seller_id: int
    site_id: str
    account_id: int
    api_key: str

    def credentials(self, **extra: Any) -> dict[str, Any]:
        return {"API_KEY": self.api_key, "accountId": self.account_id, **extra}


@dataclass
class World:
    """HTTP clients of both servers and helpers to drive them."""

    api: httpx2.AsyncClient
    meli: httpx2.AsyncClient
    postventa_url: str

    async def linked_seller(self, site_id: str = "MLA", *, link_site_id: str | None = None) -> Seller:
        """A new emulator seller linked to a new postventa account, notifications pointed at postventa
        (`link_site_id`: the site the link claims, when it differs from the seller's)."""
        await self.configure(NotifyUrl=f"{self.postventa_url}/webhooks/mercadolibre")
        credentials = (await self.meli.post("/_emulator/sellers", json={"SiteId": site_id})).json()
        account = (
            await self.api.post("/admin/accounts", json={"Name": "e2e"}, headers=admin_headers())
        ).json()
        key = (
            await self.api.post(
                "/admin/api-keys", json={"AccountIds": [account["Id"]]}, headers=admin_headers()
            )
        ).json()
        link = {
            "SellerId": credentials["SellerId"],
            "SiteId": link_site_id or site_id,
            "ClientId": credentials["ClientId"],
            "ClientSecret": credentials["ClientSecret"],
            "RefreshToken": credentials["RefreshToken"],
        }
        response = await self.api.put(
            f"/admin/accounts/{account['Id']}/mercadolibre", json=link, headers=admin_headers()
        )
        assert response.status_code == 200, response.text
        return Seller(credentials["SellerId"], site_id, account["Id"], key["ApiKey"])

    async def relink(self, seller: Seller, database: Database) -> None:
        """The seller authorises the application again and the operator links the account with the
        new refresh token (the application's id and secret as stored)."""
        granted = await self.meli.post(f"/_emulator/sellers/{seller.seller_id}/grant")
        assert granted.status_code == 200, granted.text
        async with database.transaction() as connection:
            stored = await get_link(connection, seller.account_id, database.token_cipher)
        assert stored is not None
        relink = {
            "SellerId": seller.seller_id,
            "SiteId": seller.site_id,
            "ClientId": stored.client_id,
            "ClientSecret": stored.client_secret,
            "RefreshToken": granted.json()["RefreshToken"],
        }
        linked = await self.api.put(
            f"/admin/accounts/{seller.account_id}/mercadolibre", json=relink, headers=admin_headers()
        )
        assert linked.status_code == 200, linked.text

    async def configure(self, **config: Any) -> None:
        response = await self.meli.put("/_emulator/config", json=config)
        assert response.status_code == 200, response.text

    async def faults(self, faults: list[dict[str, Any]]) -> None:
        response = await self.meli.put("/_emulator/faults", json={"Faults": faults})
        assert response.status_code == 200, response.text

    async def emulator_order(self, seller: Seller, **fields: Any) -> dict[str, Any]:
        body = {
            "SellerId": seller.seller_id,
            "SiteId": seller.site_id,
            "LogisticType": "cross_docking",
            "Status": "paid",
        }
        body.update(fields)
        response = await self.meli.post("/_emulator/orders", json=body)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def sync(self, seller: Seller) -> int:
        # A large sync is paced by the client's 500 reads a minute: give it time.
        response = await self.api.post(
            f"/admin/accounts/{seller.account_id}/mercadolibre/sync", headers=admin_headers(), timeout=300
        )
        assert response.status_code == 200, response.text
        return int(response.json()["Imported"])

    async def local_order_id(self, seller: Seller, external_order_id: int) -> int:
        page = (await self.api.get("/v2/orders", params=seller.credentials(limit=1000))).json()
        for order in page["Results"]:
            if order["ExternalOrderId"] == str(external_order_id):
                return int(order["Id"])
        raise AssertionError(f"order {external_order_id} not imported")

    async def conversation(self, seller: Seller, order_id: int) -> list[dict[str, Any]]:
        response = await self.api.get(f"/v2/orders/{order_id}/messages", params=seller.credentials())
        return list(response.json()["Results"])

    async def journal(self, since: int = 0) -> list[dict[str, Any]]:
        return list((await self.meli.get("/_emulator/journal", params={"since": since})).json()["Entries"])

    async def journal_mark(self) -> int:
        entries = await self.journal()
        return int(entries[-1]["Seq"]) if entries else 0


@pytest.fixture
async def world(postventa: LiveServer, emulator: EmulatorServer) -> AsyncIterator[World]:
    limits = httpx2.Limits(max_connections=100)
    async with (
        httpx2.AsyncClient(base_url=postventa.url, timeout=30, limits=limits) as api,
        httpx2.AsyncClient(base_url=emulator.url, timeout=30) as meli,
    ):
        yield World(api, meli, postventa.url)
        await meli.put("/_emulator/faults", json={"Faults": []})


async def wait_for(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 20.0, every: float = 0.1
) -> None:
    """Poll until `check` is true, or fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)
