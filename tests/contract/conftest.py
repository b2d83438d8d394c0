"""The target of the contract tests: the emulator served over real HTTP (the default, and CI's), or
Mercado Libre itself when `POSTVENTA_MELI_LIVE_TEST=1` (read-only and error-path tests only).

Live mode reads `POSTVENTA_MELI_LIVE_CLIENT_ID`, `..._CLIENT_SECRET`, `..._REFRESH_TOKEN`,
`..._SELLER_ID` and `..._PACK_ID` (and `..._API_URL`, https://api.mercadolibre.com unless set).
The session refreshes once (refresh tokens are single-use) and writes the refresh token that
replaces the given one to the file named by `POSTVENTA_MELI_LIVE_REFRESH_TOKEN_FILE` when that is
set; otherwise the seller must authorize the application again after the run.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from postventa.emulator import EmulatorConfig, create_emulator_app
from tests.servers import ThreadedServer

LIVE = os.environ.get("POSTVENTA_MELI_LIVE_TEST") == "1"
LIVE_PREFIX = "POSTVENTA_MELI_LIVE_"
LIVE_API_URL = os.environ.get(LIVE_PREFIX + "API_URL", "https://api.mercadolibre.com")
POST_SALE = {"tag": "post_sale"}
CONTROL_ONLY = "needs the emulator's control API (or would change a real conversation)"
_PACK_IDS = itertools.count(9_300_000_000_000_001)


@dataclass
class Target:
    """Where the contract runs, with one seller's credentials and one of its packs.

    `grant` is the answer of the session's refresh; `order_id`, `shipment_id` and `buyer_id` are
    read from the API itself (the pack's first order).
    """

    http: httpx2.Client
    live: bool
    client_id: str
    client_secret: str
    seller_id: int
    pack_id: int
    grant: dict[str, Any]
    order_id: int = 0
    shipment_id: int = 0
    buyer_id: int = 0
    site_id: str = "MLA"

    @property
    def headers(self) -> dict[str, str]:
        """The bearer token of the session."""
        return {"Authorization": f"Bearer {self.grant['access_token']}"}

    def refresh(self, refresh_token: str) -> httpx2.Response:
        """`POST /oauth/token` with this application's credentials."""
        form = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": refresh_token,
        }
        return self.http.post("/oauth/token", data=form)


@dataclass
class Conversation:
    """A pack the control API made for one test."""

    pack_id: int
    order_id: int
    buyer_id: int


@dataclass
class Control:
    """The emulator's control API: orders in the state a test needs, faults and budgets."""

    http: httpx2.Client
    target: Target
    configured: dict[str, Any] = field(default_factory=dict)

    def conversation(
        self, *, logistic_type: str = "drop_off", status: str = "paid", buyer_writes: bool = False
    ) -> Conversation:
        """A new pack of the target seller; the buyer has written first when asked."""
        body = {
            "SellerId": self.target.seller_id,
            "LogisticType": logistic_type,
            "Status": status,
            "PackId": next(_PACK_IDS),
        }
        created = self.http.post("/_emulator/orders", json=body)
        assert created.status_code == 200, created.text
        answer = created.json()
        if buyer_writes:
            written = self.http.post(
                f"/_emulator/packs/{answer['PackId']}/buyer-messages", json={"Text": "Hola, ¿cuándo llega?"}
            )
            assert written.status_code == 200, written.text
        return Conversation(answer["PackId"], answer["OrderId"], answer["BuyerId"])

    def faults(self, *rules: dict[str, Any]) -> None:
        """Put these fault rules in force (none: clear them)."""
        assert self.http.put("/_emulator/faults", json={"Faults": list(rules)}).status_code == 200

    def configure(self, **fields: Any) -> None:
        """Change the emulator's configuration until the test ends."""
        before = self.http.get("/_emulator/config").json()
        self.configured.update({name: before[name] for name in fields if name not in self.configured})
        assert self.http.put("/_emulator/config", json=fields).status_code == 200

    def restore(self) -> None:
        """Clear faults and put back what `configure` changed."""
        self.faults()
        if self.configured:
            self.http.put("/_emulator/config", json=self.configured)


@pytest.fixture(scope="session")
def target() -> Iterator[Target]:
    """The API under contract, authenticated as one seller."""
    if LIVE:
        yield from _live_target()
    else:
        yield from _emulator_target()


@pytest.fixture
def control(target: Target) -> Iterator[Control]:
    """The emulator's control API; tests that need it are skipped in live mode."""
    if target.live:
        pytest.skip(CONTROL_ONLY)
    helper = Control(target.http, target)
    yield helper
    helper.restore()


def _emulator_target() -> Iterator[Target]:
    # Short waits between notification attempts, so a test sees a missed feed within a second.
    config = EmulatorConfig(notify_retry_delays_seconds=(0.01, 0.01))
    with ThreadedServer(create_emulator_app(config)) as server:
        with httpx2.Client(base_url=server.url, timeout=10) as http:
            seller = http.post("/_emulator/sellers", json={"SiteId": "MLA"}).json()
            pack_id = next(_PACK_IDS)
            order = {"SellerId": seller["SellerId"], "LogisticType": "drop_off", "PackId": pack_id}
            assert http.post("/_emulator/orders", json=order).status_code == 200
            written = http.post(f"/_emulator/packs/{pack_id}/buyer-messages", json={"Text": "Hola"})
            assert written.status_code == 200
            target = Target(
                http, False, seller["ClientId"], seller["ClientSecret"], seller["SellerId"], pack_id, {}
            )
            target.grant = _grant(target, seller["RefreshToken"])
            _read_pack(target)
            reply = {
                "from": {"user_id": str(target.seller_id)},
                "to": {"user_id": str(target.buyer_id)},
                "text": "¡Hola! Ya lo despachamos.",
            }
            sent = http.post(
                f"/messages/packs/{pack_id}/sellers/{target.seller_id}",
                params=POST_SALE,
                json=reply,
                headers=target.headers,
            )
            assert sent.status_code == 201, sent.text
            yield target


def _live_target() -> Iterator[Target]:
    names = ("CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN", "SELLER_ID", "PACK_ID")
    missing = [LIVE_PREFIX + name for name in names if not os.environ.get(LIVE_PREFIX + name)]
    if missing:
        pytest.fail(f"POSTVENTA_MELI_LIVE_TEST=1 needs {', '.join(missing)}")
    env = {name: os.environ[LIVE_PREFIX + name] for name in names}
    with httpx2.Client(base_url=LIVE_API_URL, timeout=20, headers={"Accept": "application/json"}) as http:
        target = Target(
            http, True, env["CLIENT_ID"], env["CLIENT_SECRET"], int(env["SELLER_ID"]), int(env["PACK_ID"]), {}
        )
        target.grant = _grant(target, env["REFRESH_TOKEN"])
        keep = os.environ.get(LIVE_PREFIX + "REFRESH_TOKEN_FILE")
        if keep:
            Path(keep).write_text(str(target.grant["refresh_token"]) + "\n", encoding="utf-8")
        _read_pack(target)
        yield target


def _grant(target: Target, refresh_token: str) -> dict[str, Any]:
    answer = target.refresh(refresh_token)
    assert answer.status_code == 200, answer.text
    grant: dict[str, Any] = answer.json()
    return grant


def _read_pack(target: Target) -> None:
    """The pack's first order, its shipment and buyer (an order without pack is its own pack id)."""
    pack = target.http.get(f"/packs/{target.pack_id}", headers=target.headers)
    order_id = pack.json()["orders"][0]["id"] if pack.status_code == 200 else target.pack_id
    order = target.http.get(f"/orders/{order_id}", headers=target.headers)
    assert order.status_code == 200, order.text
    body = order.json()
    target.order_id = int(body["id"])
    target.shipment_id = int(body["shipping"]["id"])
    target.buyer_id = int(body["buyer"]["id"])
    target.site_id = str(body.get("context", {}).get("site") or target.site_id)
