"""Test helpers for the emulator: a seller with tokens, orders, buyer messages, and a live server."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx2
from fastapi import FastAPI, Request, Response

from postventa.emulator import Emulator
from tests.servers import ThreadedServer

_PACK_IDS = itertools.count(9_100_000_000_000_001)


@dataclass
class SellerSession:
    """A seller created through the control API, with a fresh access token."""

    id: int
    site_id: str
    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class World:
    """Drives an emulator over HTTP: the control API and the Mercado Libre routes."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self.http = http
        self.buyers: dict[int, int] = {}  # conversation key -> buyer id

    async def seller(self, site_id: str = "MLA", **extra: Any) -> SellerSession:
        created = await self.http.post("/_emulator/sellers", json={"SiteId": site_id, **extra})
        assert created.status_code == 200, created.text
        body = created.json()
        tokens = await self.refresh(body["ClientId"], body["ClientSecret"], body["RefreshToken"])
        assert tokens.status_code == 200, tokens.text
        grant = tokens.json()
        return SellerSession(
            body["SellerId"],
            site_id,
            body["ClientId"],
            body["ClientSecret"],
            grant["refresh_token"],
            grant["access_token"],
        )

    async def refresh(self, client_id: str, secret: str, refresh_token: str) -> httpx2.Response:
        form = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": secret,
            "refresh_token": refresh_token,
        }
        return await self.http.post("/oauth/token", data=form)

    async def order(
        self,
        seller: SellerSession,
        *,
        logistic_type: str = "drop_off",
        status: str = "paid",
        pack: bool = True,
        **extra: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "SellerId": seller.id,
            "SiteId": seller.site_id,
            "LogisticType": logistic_type,
            "Status": status,
            **extra,
        }
        if pack and "PackId" not in body:
            body["PackId"] = next(_PACK_IDS)
        created = await self.http.post("/_emulator/orders", json=body)
        assert created.status_code == 200, created.text
        answer: dict[str, Any] = created.json()
        answer["Key"] = answer["PackId"] or answer["OrderId"]
        self.buyers[answer["Key"]] = answer["BuyerId"]
        return answer

    async def buyer_writes(self, key: int, text: str = "Hola, ¿cuándo llega?") -> str:
        written = await self.http.post(f"/_emulator/packs/{key}/buyer-messages", json={"Text": text})
        assert written.status_code == 200, written.text
        return str(written.json()["MessageId"])

    async def guide(self, seller: SellerSession, key: int) -> httpx2.Response:
        return await self.http.get(
            f"/messages/action_guide/packs/{key}", params={"tag": "post_sale"}, headers=seller.headers
        )

    async def option(self, seller: SellerSession, key: int, body: dict[str, Any]) -> httpx2.Response:
        return await self.http.post(
            f"/messages/action_guide/packs/{key}/option",
            params={"tag": "post_sale"},
            json=body,
            headers=seller.headers,
        )

    async def send(self, seller: SellerSession, key: int, text: str, **extra: Any) -> httpx2.Response:
        buyer_id = self.buyers[key]
        body = {"from": {"user_id": str(seller.id)}, "to": {"user_id": str(buyer_id)}, "text": text, **extra}
        return await self.http.post(
            f"/messages/packs/{key}/sellers/{seller.id}",
            params={"tag": "post_sale"},
            json=body,
            headers=seller.headers,
        )

    async def conversation(self, seller: SellerSession, key: int, **params: Any) -> dict[str, Any]:
        read = await self.http.get(
            f"/messages/packs/{key}/sellers/{seller.id}",
            params={"tag": "post_sale", **params},
            headers=seller.headers,
        )
        assert read.status_code == 200, read.text
        body: dict[str, Any] = read.json()
        return body

    async def journal(self, since: int = 0) -> dict[str, Any]:
        read = await self.http.get("/_emulator/journal", params={"since": since})
        assert read.status_code == 200, read.text
        body: dict[str, Any] = read.json()
        return body

    async def last_entry(self, method: str, path: str) -> dict[str, Any]:
        entries = (await self.journal())["Entries"]
        matching = [entry for entry in entries if entry["Method"] == method and entry["Path"] == path]
        assert matching, f"no journal entry for {method} {path}"
        entry: dict[str, Any] = matching[-1]
        return entry

    async def faults(self, *rules: dict[str, Any], seed: int | None = None) -> httpx2.Response:
        body: dict[str, Any] = {"Faults": list(rules)}
        if seed is not None:
            body["Seed"] = seed
        return await self.http.put("/_emulator/faults", json=body)


def emulator_of(app: FastAPI) -> Emulator:
    emulator = app.state.emulator
    assert isinstance(emulator, Emulator)
    return emulator


class Receiver:
    """A callback endpoint that records notifications; answers `fail_first` 500s before succeeding."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.app = FastAPI()
        self.app.add_api_route("/notify", self._notify, methods=["POST"])

    async def _notify(self, request: Request) -> Response:
        self.received.append(await request.json())
        if len(self.received) <= self.fail_first:
            return Response(status_code=500)
        return Response(status_code=200)

    def topics(self, topic: str) -> list[dict[str, Any]]:
        return [payload for payload in self.received if payload["topic"] == topic]


class LiveServer(ThreadedServer):
    """An ASGI app served by a real uvicorn on a free loopback port, in a thread."""
