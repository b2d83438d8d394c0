"""Over a real uvicorn server: a seller revokes and grants the application again, a refresh whose
answer is lost, rate limits per application and endpoint, the 409 and 451 faults, and the
`tag=post_sale` every `/messages` call needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from postventa.emulator.ratelimit import endpoint_key
from tests.emulator.live_world import LiveEmulator, live_emulator
from tests.emulator.world import SellerSession, World

INVALID_TOKEN = {"message": "invalid_token", "error": "not_found", "status": 401, "cause": []}
TOO_MANY = {"message": "too many requests", "error": "too_many_requests", "status": 429, "cause": []}
MISSING_TAG = {"message": "tag param is required", "error": "bad_request", "status": 400, "cause": []}


@pytest.fixture
async def live() -> AsyncIterator[LiveEmulator]:
    async with live_emulator() as served:
        yield served


def assert_invalid_grant(answer: httpx2.Response) -> None:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"message", "error", "status", "cause"}
    assert (body["error"], body["status"], body["cause"]) == ("invalid_grant", 400, [])
    assert body["message"]


async def me(world: World, seller: SellerSession) -> httpx2.Response:
    return await world.http.get("/users/me", headers=seller.headers)


async def test_revoke_stops_every_token_of_the_seller_only(live: LiveEmulator) -> None:
    world = live.world
    seller = await world.seller()
    neighbour = await world.seller(ClientId=seller.client_id)
    revoked = await world.http.post(f"/_emulator/sellers/{seller.id}/revoke")
    assert revoked.status_code == 200
    assert revoked.json() == {"SellerId": seller.id, "Revoked": True}

    refused = await me(world, seller)
    assert (refused.status_code, refused.json()) == (401, INVALID_TOKEN)
    assert_invalid_grant(await world.refresh(seller.client_id, seller.client_secret, seller.refresh_token))
    # Another seller of the same application keeps its authorization.
    assert (await me(world, neighbour)).status_code == 200
    again = await world.refresh(neighbour.client_id, neighbour.client_secret, neighbour.refresh_token)
    assert again.status_code == 200


async def test_grant_after_revoke_links_the_seller_again(live: LiveEmulator) -> None:
    world = live.world
    seller = await world.seller()
    await world.http.post(f"/_emulator/sellers/{seller.id}/revoke")
    granted = await world.http.post(f"/_emulator/sellers/{seller.id}/grant")
    assert granted.status_code == 200
    assert set(granted.json()) == {"RefreshToken"}
    fresh = await world.refresh(seller.client_id, seller.client_secret, granted.json()["RefreshToken"])
    assert fresh.status_code == 200, fresh.text
    token = fresh.json()["access_token"]
    relinked = await world.http.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert relinked.json()["id"] == seller.id
    assert (await me(world, seller)).status_code == 401  # the revoked access token stays dead


@pytest.mark.parametrize("action", ["revoke", "grant"])
async def test_unknown_seller_is_404(live: LiveEmulator, action: str) -> None:
    answer = await live.world.http.post(f"/_emulator/sellers/999/{action}")
    assert answer.status_code == 404
    assert answer.json() == {
        "message": "Seller 999 not found",
        "error": "not_found",
        "status": 404,
        "cause": [],
    }


async def test_refresh_whose_answer_is_lost_spends_the_old_token(live: LiveEmulator) -> None:
    world = live.world
    seller = await world.seller()
    await world.faults({"Route": "POST /oauth/token", "Kind": "lost_response"})
    with pytest.raises(httpx2.TransportError):
        await world.refresh(seller.client_id, seller.client_secret, seller.refresh_token)
    await world.faults()
    entry = await world.last_entry("POST", "/oauth/token")
    assert (entry["Status"], entry["Fault"], entry["Applied"]) == (None, "lost_response", True)
    # The refresh was applied: the old refresh token is spent and a new one exists, unseen.
    assert_invalid_grant(await world.refresh(seller.client_id, seller.client_secret, seller.refresh_token))
    issued = [token for token, owner in live.emulator.state.refresh_tokens.items() if owner == seller.id]
    assert len(issued) == 1
    assert issued[0] != seller.refresh_token


async def set_budgets(world: World, reads: int, writes: int = 500) -> None:
    changed = await world.http.put(
        "/_emulator/config", json={"ReadsPerMinute": reads, "WritesPerMinute": writes}
    )
    assert changed.status_code == 200


async def test_each_endpoint_has_its_own_budget(live: LiveEmulator) -> None:
    world = live.world
    seller = await world.seller()
    first, second = (
        (await world.order(seller, pack=False))["OrderId"],
        (await world.order(seller, pack=False))["OrderId"],
    )
    await set_budgets(world, reads=2)
    assert [(await me(world, seller)).status_code for _ in range(3)] == [200, 200, 429]
    refused = await me(world, seller)
    assert refused.json() == TOO_MANY
    assert "retry-after" not in refused.headers
    # Another endpoint still has its whole budget; two orders are one endpoint (`GET /orders/{id}`).
    orders = [
        (await world.http.get(f"/orders/{order_id}", headers=seller.headers)).status_code
        for order_id in (first, second, first)
    ]
    assert orders == [200, 200, 429]
    search = await world.http.get("/orders/search", params={"seller": seller.id}, headers=seller.headers)
    assert search.status_code == 200


async def test_each_application_has_its_own_budget(live: LiveEmulator) -> None:
    world = live.world
    seller, other = await world.seller(), await world.seller()
    await set_budgets(world, reads=1)
    assert [(await me(world, seller)).status_code for _ in range(2)] == [200, 429]
    assert (await me(world, other)).status_code == 200


async def test_sellers_of_one_application_share_its_budget(live: LiveEmulator) -> None:
    world = live.world
    seller = await world.seller()
    neighbour = await world.seller(ClientId=seller.client_id)
    await set_budgets(world, reads=2)
    assert (await me(world, seller)).status_code == 200
    assert (await me(world, neighbour)).status_code == 200
    assert (await me(world, neighbour)).status_code == 429
    assert (await me(world, seller)).status_code == 429


async def test_writes_count_against_writes_per_minute(live: LiveEmulator) -> None:
    world = live.world
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    await world.buyer_writes(key)
    await set_budgets(world, reads=500, writes=1)
    assert [(await world.send(seller, key, f"m{i}")).status_code for i in range(2)] == [201, 429]
    assert (await world.conversation(seller, key))["paging"]["total"] == 2


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (
            "409",
            {
                "cause": "lock",
                "error": "conflict",
                "message": "There is another request locking this operation",
                "status_code": 409,
            },
        ),
        (
            "451",
            {
                "cause": "blocked_by_deactivated_account",
                "error": "unavailable",
                "message": "Unavailable",
                "status_code": 451,
            },
        ),
    ],
)
async def test_lock_and_deactivated_account_faults(
    live: LiveEmulator, kind: str, body: dict[str, Any]
) -> None:
    world = live.world
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    rules = await world.faults({"Route": "POST /messages/action_guide/*", "Kind": kind})
    assert rules.json()["Faults"][0]["Kind"] == kind
    refused = await world.option(seller, key, {"option_id": "OTHER", "text": "Hola"})
    assert (refused.status_code, refused.json()) == (int(kind), body)
    entry = await world.last_entry("POST", f"/messages/action_guide/packs/{key}/option")
    assert (entry["Status"], entry["Fault"], entry["Applied"]) == (int(kind), kind, False)
    await world.faults()
    assert (await world.conversation(seller, key))["paging"]["total"] == 0


def messages_calls(
    seller: SellerSession, key: int, message_id: str, attachment_id: str
) -> list[tuple[str, str]]:
    return [
        ("GET", f"/messages/packs/{key}/sellers/{seller.id}"),
        ("POST", f"/messages/packs/{key}/sellers/{seller.id}"),
        ("GET", f"/messages/{message_id}"),
        ("POST", "/messages/attachments"),
        ("GET", f"/messages/attachments/{attachment_id}"),
        ("GET", f"/messages/action_guide/packs/{key}"),
        ("GET", f"/messages/action_guide/packs/{key}/caps_available"),
        ("POST", f"/messages/action_guide/packs/{key}/option"),
        ("GET", "/messages/unread"),
        ("GET", f"/messages/unread/packs/{key}/sellers/{seller.id}"),
    ]


@pytest.mark.parametrize("tag", [None, "", "pre_sale"])
async def test_messages_calls_without_the_post_sale_tag_are_400(live: LiveEmulator, tag: str | None) -> None:
    world = live.world
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    message_id = await world.buyer_writes(key)
    uploaded = await world.http.post(
        "/messages/attachments",
        params={"tag": "post_sale", "site_id": "MLA"},
        files={"file": ("nota.txt", b"hola")},
        headers=seller.headers,
    )
    params = {"site_id": "MLA", "role": "seller", **({} if tag is None else {"tag": tag})}
    before = len((await world.conversation(seller, key))["messages"])
    for method, path in messages_calls(seller, key, message_id, uploaded.json()["id"]):
        body = {"from": {"user_id": seller.id}, "to": {"user_id": world.buyers[key]}, "text": "Hola"}
        answer = await world.http.request(method, path, params=params, headers=seller.headers, json=body)
        assert (answer.status_code, answer.json()) == (400, MISSING_TAG), (method, path)
        entry = await world.last_entry(method, path)
        assert (entry["Status"], entry["Applied"]) == (400, False)
    assert len((await world.conversation(seller, key))["messages"]) == before


async def test_routes_outside_messages_need_no_tag(live: LiveEmulator) -> None:
    world = live.world
    seller = await world.seller()
    assert (await me(world, seller)).status_code == 200
    assert (await world.http.get("/users/me", params={"tag": "x"}, headers=seller.headers)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        (
            "get",
            "/messages/packs/2000000000000001/sellers/1933150001",
            "GET /messages/packs/{id}/sellers/{id}",
        ),
        ("GET", "/messages/" + "ab" * 16, "GET /messages/{id}"),
        ("GET", "/messages/attachments/1933_x.pdf", "GET /messages/attachments/{id}"),
        (
            "GET",
            "/messages/action_guide/packs/7/caps_available",
            "GET /messages/action_guide/packs/{id}/caps_available",
        ),
        ("POST", "/oauth/token", "POST /oauth/token"),
        ("GET", "/users/me/", "GET /users/me"),
    ],
)
def test_endpoint_keys_replace_ids(method: str, path: str, endpoint: str) -> None:
    assert endpoint_key(method, path) == endpoint
