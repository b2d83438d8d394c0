"""OAuth, the user, orders, packs and shipments, and the control API that creates them."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx2
import pytest

from postventa.emulator import EmulatorConfig
from tests.emulator.world import World

INVALID_TOKEN = {"message": "invalid_token", "error": "not_found", "status": 401, "cause": []}


async def test_refresh_rotates_and_old_refresh_token_is_refused(world: World) -> None:
    seller = await world.seller()
    again = await world.refresh(seller.client_id, seller.client_secret, seller.refresh_token)
    assert again.status_code == 200
    grant = again.json()
    assert grant["token_type"] == "Bearer"
    assert grant["user_id"] == seller.id
    assert grant["expires_in"] == 21600
    assert grant["access_token"].startswith(f"APP_USR-{seller.client_id}-")
    assert grant["refresh_token"] != seller.refresh_token

    reused = await world.refresh(seller.client_id, seller.client_secret, seller.refresh_token)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


async def test_wrong_secret_is_invalid_grant(world: World) -> None:
    seller = await world.seller()
    refused = await world.refresh(seller.client_id, "wrong", seller.refresh_token)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Basic abc"])
async def test_missing_or_unknown_token_is_401(meli: httpx2.AsyncClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = await meli.get("/users/me", headers=headers)
    assert answer.status_code == 401
    assert answer.json() == INVALID_TOKEN


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(access_token_ttl_seconds=0.2)])
async def test_access_token_expires(world: World) -> None:
    seller = await world.seller()
    assert (await world.http.get("/users/me", headers=seller.headers)).status_code == 200
    await asyncio.sleep(0.3)
    expired = await world.http.get("/users/me", headers=seller.headers)
    assert expired.status_code == 401
    assert expired.json() == INVALID_TOKEN


async def test_ttl_changed_through_config(world: World) -> None:
    changed = await world.http.put("/_emulator/config", json={"AccessTokenTtlSeconds": 0.1})
    assert changed.json()["AccessTokenTtlSeconds"] == 0.1
    seller = await world.seller()
    await asyncio.sleep(0.2)
    assert (await world.http.get("/users/me", headers=seller.headers)).status_code == 401


async def test_users_me(world: World) -> None:
    seller = await world.seller("MLB", Nickname="LOJA_TESTE")
    me = (await world.http.get("/users/me", headers=seller.headers)).json()
    assert me["id"] == seller.id
    assert me["nickname"] == "LOJA_TESTE"
    assert me["site_id"] == "MLB"


async def test_sellers_can_share_an_application(world: World) -> None:
    first = await world.seller()
    second = await world.seller(ClientId=first.client_id)
    assert second.client_id == first.client_id
    assert second.client_secret == first.client_secret
    assert second.id > first.id


async def test_order_shape(world: World) -> None:
    seller = await world.seller()
    created = await world.order(seller, Buyer={"Id": 777000111, "Nickname": "COMPRADOR"})
    order = (await world.http.get(f"/orders/{created['OrderId']}", headers=seller.headers)).json()
    assert order["id"] == created["OrderId"]
    assert order["pack_id"] == created["PackId"]
    assert order["status"] == "paid"
    assert order["buyer"] == {"id": 777000111, "nickname": "COMPRADOR"}
    assert order["seller"] == {"id": seller.id}
    assert set(order["shipping"]) == {"id"}
    assert order["context"]["site"] == "MLA"
    assert isinstance(order["tags"], list)
    dt.datetime.fromisoformat(order["date_created"])


async def test_order_without_pack(world: World) -> None:
    seller = await world.seller()
    created = await world.order(seller, pack=False)
    assert created["PackId"] is None
    order = (await world.http.get(f"/orders/{created['OrderId']}", headers=seller.headers)).json()
    assert order["pack_id"] is None


async def test_order_of_another_seller_is_403_and_unknown_is_404(world: World) -> None:
    seller, other = await world.seller(), await world.seller()
    created = await world.order(seller)
    foreign = await world.http.get(f"/orders/{created['OrderId']}", headers=other.headers)
    assert foreign.status_code == 403
    assert set(foreign.json()) == {"message", "error", "status", "cause"}
    assert (await world.http.get("/orders/1", headers=seller.headers)).status_code == 404


async def test_orders_search_pages(world: World) -> None:
    seller = await world.seller()
    ids = [(await world.order(seller))["OrderId"] for _ in range(5)]
    seen = []
    for offset in (0, 2, 4):
        page = await world.http.get(
            "/orders/search",
            params={"seller": seller.id, "offset": offset, "limit": 2},
            headers=seller.headers,
        )
        body = page.json()
        assert body["paging"] == {"total": 5, "offset": offset, "limit": 2}
        seen += [order["id"] for order in body["results"]]
    assert seen == ids


async def test_orders_search_refuses_other_seller_and_big_limit(world: World) -> None:
    seller, other = await world.seller(), await world.seller()
    foreign = await world.http.get("/orders/search", params={"seller": other.id}, headers=seller.headers)
    assert foreign.status_code == 403
    big = await world.http.get(
        "/orders/search", params={"seller": seller.id, "limit": 52}, headers=seller.headers
    )
    assert big.status_code == 400


async def test_pack_shape(world: World) -> None:
    seller = await world.seller()
    first = await world.order(seller)
    second = await world.order(seller, PackId=first["PackId"])
    assert second["BuyerId"] == first["BuyerId"]
    pack = (await world.http.get(f"/packs/{first['PackId']}", headers=seller.headers)).json()
    assert pack["id"] == first["PackId"]
    assert pack["status"] == "released"
    assert pack["orders"] == [{"id": first["OrderId"]}, {"id": second["OrderId"]}]
    assert pack["buyer"] == {"id": first["BuyerId"]}
    assert set(pack["shipment"]) == {"id"}


@pytest.mark.parametrize(
    ("logistic_type", "mode"),
    [
        ("drop_off", "me2"),
        ("xd_drop_off", "me2"),
        ("cross_docking", "me2"),
        ("self_service", "me2"),
        ("fulfillment", "me2"),
        ("default", "me1"),
        ("custom", "custom"),
        ("not_specified", "not_specified"),
    ],
)
async def test_shipment_shapes(world: World, logistic_type: str, mode: str) -> None:
    seller = await world.seller()
    created = await world.order(seller, logistic_type=logistic_type)
    order = (await world.http.get(f"/orders/{created['OrderId']}", headers=seller.headers)).json()
    path = f"/shipments/{order['shipping']['id']}"
    new = (await world.http.get(path, headers={**seller.headers, "x-format-new": "true"})).json()
    assert new["status"] == "ready_to_ship"
    assert new["logistic"] == {"mode": mode, "type": logistic_type, "direction": "forward"}
    assert new["source"] == {"site_id": "MLA"}
    assert set(new["lead_time"]["estimated_delivery_time"]) == {"date", "time_frame"}
    old = (await world.http.get(path, headers=seller.headers)).json()
    assert old == {"id": order["shipping"]["id"], "status": "ready_to_ship", "mode": mode}


async def test_flex_delivery_window_in_lead_time(world: World) -> None:
    seller = await world.seller()
    window = {"Date": "2031-05-06", "FromHour": 14, "ToHour": 20}
    created = await world.order(seller, logistic_type="self_service", DeliveryWindow=window)
    order = (await world.http.get(f"/orders/{created['OrderId']}", headers=seller.headers)).json()
    shipment = (
        await world.http.get(
            f"/shipments/{order['shipping']['id']}", headers={**seller.headers, "x-format-new": "true"}
        )
    ).json()
    estimated = shipment["lead_time"]["estimated_delivery_time"]
    assert estimated["date"].startswith("2031-05-06T00:00:00")
    assert estimated["time_frame"]["from"].startswith("2031-05-06T14:00:00")
    assert estimated["time_frame"]["to"].startswith("2031-05-06T20:00:00")


async def test_change_order_through_control_api(world: World) -> None:
    seller = await world.seller()
    created = await world.order(seller)
    changed = await world.http.put(
        f"/_emulator/orders/{created['OrderId']}", json={"Status": "cancelled", "ShipmentStatus": "cancelled"}
    )
    assert changed.status_code == 200
    assert changed.json()["status"] == "cancelled"
    pack = (await world.http.get(f"/packs/{created['PackId']}", headers=seller.headers)).json()
    assert pack["status"] == "cancelled"


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/_emulator/sellers", {"SiteId": "XXX"}, "SiteId"),
        ("/_emulator/sellers", {}, "SiteId"),
        ("/_emulator/sellers", {"SiteId": "MLA", "Colour": "red"}, "Colour"),
        ("/_emulator/orders", {"SellerId": 1, "LogisticType": "drop_off"}, "SellerId 1"),
        ("/_emulator/orders", {"SellerId": 1, "LogisticType": "by_pigeon"}, "LogisticType"),
        ("/_emulator/orders", {"SellerId": 1, "LogisticType": "drop_off", "Status": "happy"}, "Status"),
        (
            "/_emulator/orders",
            {"SellerId": 1, "LogisticType": "drop_off", "ShipmentStatus": "ready_to_shipped"},
            "ShipmentStatus",
        ),
        (
            "/_emulator/orders",
            {
                "SellerId": 1,
                "LogisticType": "self_service",
                "DeliveryWindow": {"Date": "2030-01-01", "FromHour": 18, "ToHour": 9},
            },
            "FromHour",
        ),
    ],
)
async def test_control_inputs_are_validated(
    meli: httpx2.AsyncClient, path: str, body: dict[str, object], fragment: str
) -> None:
    refused = await meli.post(path, json=body)
    assert refused.status_code == 400
    assert fragment in refused.json()["message"]


async def test_order_site_must_match_seller(world: World) -> None:
    seller = await world.seller("MLA")
    refused = await world.http.post(
        "/_emulator/orders", json={"SellerId": seller.id, "SiteId": "MLB", "LogisticType": "drop_off"}
    )
    assert refused.status_code == 400
    assert "SiteId" in refused.json()["message"]


async def test_unknown_route_uses_generic_envelope(meli: httpx2.AsyncClient) -> None:
    answer = await meli.get("/nowhere")
    assert answer.status_code == 404
    assert answer.json() == {
        "message": "resource not found",
        "error": "not_found",
        "status": 404,
        "cause": [],
    }
