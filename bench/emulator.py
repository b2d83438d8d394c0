"""The Mercado Libre emulator as the delivery benchmark drives it: its control API (sellers, orders,
rate limits), OAuth, and the direct client's requests for measuring its own capacity."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

import httpx2

from bench.common import LOOPBACK

UNLIMITED_PER_MINUTE = 100_000_000
SITE = "MLA"
TEXT = "Hola, gracias por tu compra. Tu pedido sale mañana por la mañana."
ORDER_CREATION_CONCURRENCY = 16


@dataclass(frozen=True)
class EmulatorOrder:
    """An order the emulator made: its id, its pack (None: the order is its own conversation), buyer."""

    order_id: int
    pack_id: int | None
    buyer_id: int

    @property
    def conversation(self) -> int:
        """The id Mercado Libre keys its conversation by."""
        return self.pack_id if self.pack_id is not None else self.order_id


@dataclass(frozen=True)
class SellerCredentials:
    """An emulator seller and its application's credentials."""

    seller_id: int
    client_id: str
    client_secret: str
    refresh_token: str


# --- the emulator --------------------------------------------------------------------------------


class EmulatorControl:
    """The emulator's control API and OAuth, over one HTTP client."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx2.AsyncClient(base_url=url, timeout=30)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def lift_rate_limits(self) -> dict[str, Any]:
        response = await self.http.put(
            "/_emulator/config",
            json={"ReadsPerMinute": UNLIMITED_PER_MINUTE, "WritesPerMinute": UNLIMITED_PER_MINUTE},
        )
        response.raise_for_status()
        return dict(response.json())

    async def seller(self) -> SellerCredentials:
        response = await self.http.post("/_emulator/sellers", json={"SiteId": SITE})
        response.raise_for_status()
        body = response.json()
        return SellerCredentials(
            body["SellerId"], body["ClientId"], body["ClientSecret"], body["RefreshToken"]
        )

    async def orders(self, seller: SellerCredentials, count: int) -> list[EmulatorOrder]:
        """`count` new orders of the seller, ready to ship, cross-docking (any reason is allowed)."""
        made: list[EmulatorOrder] = []
        body = {
            "SellerId": seller.seller_id,
            "SiteId": SITE,
            "LogisticType": "cross_docking",
            "Status": "paid",
        }

        async def make(share: int) -> None:
            for _ in range(share):
                response = await self.http.post("/_emulator/orders", json=body)
                response.raise_for_status()
                answer = response.json()
                made.append(EmulatorOrder(answer["OrderId"], answer["PackId"], answer["BuyerId"]))

        shares = [count // ORDER_CREATION_CONCURRENCY] * ORDER_CREATION_CONCURRENCY
        shares[0] += count % ORDER_CREATION_CONCURRENCY
        await asyncio.gather(*(make(share) for share in shares))
        return made

    async def access_token(self, seller: SellerCredentials) -> str:
        form = {
            "grant_type": "refresh_token",
            "client_id": seller.client_id,
            "client_secret": seller.client_secret,
            "refresh_token": seller.refresh_token,
        }
        response = await self.http.post("/oauth/token", data=form)
        response.raise_for_status()
        return str(response.json()["access_token"])


def direct_client_spec(
    port: int, token: str, orders: list[EmulatorOrder], concurrency: int
) -> dict[str, Any]:
    """The load generator posting first messages straight to the emulator's action guide."""
    body = json.dumps({"option_id": "OTHER", "text": TEXT}, ensure_ascii=False).encode()
    head = (
        "POST /messages/action_guide/packs/{id}/option?tag=post_sale HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nAccept: application/json\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return {
        "host": LOOPBACK,
        "port": port,
        "connections": concurrency,
        "duration": 3600,  # ends when every pack has had its message
        "kinds": [
            {
                "name": "action_guide_option",
                "pool": "packs",
                "count": 1,
                "head": head,
                "body_b64": base64.b64encode(body).decode(),
            }
        ],
        "pools": {"packs": {"ids": [order.conversation for order in orders]}},
    }
