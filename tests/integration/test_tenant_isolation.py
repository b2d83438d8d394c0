"""Tenants never see each other: on every public endpoint, another account is 403 and another
account's order is 404 (contract §3.5 checks 3 and 6, §4)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest

from postventa.services import admin
from tests.factories import PEPPER, Tenant, buyer_replies, make_order, make_tenant, now


@dataclass
class Seller:
    """A tenant with two orders; the first has a conversation with an attachment."""

    tenant: Tenant
    order_id: int
    other_order_id: int
    message_id: int  # the message with the attachment


async def make_seller(client, database, name: str) -> Seller:
    tenant = await make_tenant(database, name=name)
    order_id = await make_order(database, tenant)
    other_order_id = await make_order(database, tenant)
    path = f"/v2/orders/{order_id}/messages"
    first = await client.post(path, params=tenant.credentials(messageOptions=4, message=f"Hola de {name}"))
    assert first.status_code == 200, first.text
    await buyer_replies(database, order_id)
    attached = await client.post(
        path,
        json=tenant.credentials(
            messageOptions=4,
            message="Adjunto",
            fileBase64=base64.b64encode(f"factura de {name}".encode()).decode(),
            documentName="factura",
            documentExtension="txt",
        ),
    )
    assert attached.status_code == 200, attached.text
    return Seller(tenant, order_id, other_order_id, int(attached.json()))


@pytest.fixture
async def sellers(client, database) -> tuple[Seller, Seller]:
    return await make_seller(client, database, "A"), await make_seller(client, database, "B")


# (method, path template); {order} and {message} are filled from a seller.
ENDPOINTS = [
    ("POST", "/v2/orders/{order}/messages"),
    ("GET", "/v2/orders"),
    ("GET", "/v2/orders/{order}"),
    ("GET", "/v2/orders/{order}/messages"),
    ("GET", "/v2/orders/{order}/messages/{message}"),
    ("GET", "/v2/orders/{order}/messages/{message}/attachment"),
    ("GET", "/v2/orders/{order}/messages/options"),
]
ORDER_ENDPOINTS = [endpoint for endpoint in ENDPOINTS if "{order}" in endpoint[1]]


def endpoint_ids(endpoints: list[tuple[str, str]]) -> list[str]:
    return [f"{method} {path}" for method, path in endpoints]


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body == {"Status": status, "Message": body["Message"], "Code": code}
    assert isinstance(body["Message"], str)
    assert body["Message"]


async def call(client, method: str, path: str, seller: Seller, params: dict[str, object]):
    url = path.format(order=seller.order_id, message=seller.message_id)
    if method == "POST":
        params = {**params, "messageOptions": 4, "message": "Intruso"}
    return await client.request(method, url, params=params)


async def conversation_ids(client, seller: Seller) -> list[int]:
    response = await client.get(f"/v2/orders/{seller.order_id}/messages", params=seller.tenant.credentials())
    assert response.status_code == 200, response.text
    return [message["Id"] for message in response.json()["Results"]]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=endpoint_ids(ENDPOINTS))
async def test_own_key_with_another_account_is_403(client, sellers, method, path):
    a, b = sellers
    before = await conversation_ids(client, a)
    params = {"API_KEY": a.tenant.api_key, "accountId": b.tenant.account_id}

    response = await call(client, method, path, a, params)

    assert_error(response, 403, "account_not_allowed")
    assert await conversation_ids(client, a) == before


@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=endpoint_ids(ENDPOINTS))
async def test_own_key_in_the_header_with_another_account_is_403(client, sellers, method, path):
    a, b = sellers
    url = path.format(order=b.order_id, message=b.message_id)

    response = await client.request(
        method, url, params={"accountId": b.tenant.account_id}, headers={"X-API-Key": a.tenant.api_key}
    )

    assert_error(response, 403, "account_not_allowed")


@pytest.mark.parametrize(("method", "path"), ORDER_ENDPOINTS, ids=endpoint_ids(ORDER_ENDPOINTS))
async def test_another_accounts_order_is_404(client, sellers, method, path):
    a, b = sellers
    before = await conversation_ids(client, b)

    response = await call(client, method, path, b, a.tenant.credentials())

    assert_error(response, 404, "order_not_found")
    assert await conversation_ids(client, b) == before


@pytest.mark.parametrize("suffix", ["", "/attachment"])
async def test_another_accounts_message_under_an_own_order_is_404(client, sellers, suffix):
    a, b = sellers

    response = await client.get(
        f"/v2/orders/{a.order_id}/messages/{b.message_id}{suffix}", params=a.tenant.credentials()
    )

    assert_error(response, 404, "message_not_found")


async def test_own_endpoints_answer(client, sellers):
    """The control: the same calls with the owner's credentials succeed."""
    a, _ = sellers
    for method, path in ENDPOINTS[1:]:
        response = await call(client, method, path, a, a.tenant.credentials())
        assert response.status_code == 200, (path, response.text)
    attachment = await client.get(
        f"/v2/orders/{a.order_id}/messages/{a.message_id}/attachment", params=a.tenant.credentials()
    )
    assert attachment.content == b"factura de A"


async def list_order_ids(client, tenant: Tenant, account_id: int | None = None, **filters) -> list[int]:
    params = {
        "API_KEY": tenant.api_key,
        "accountId": account_id or tenant.account_id,
        "limit": 1000,
        **filters,
    }
    response = await client.get("/v2/orders", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    ids = [order["Id"] for order in body["Results"]]
    assert body["Total"] == body["Paging"]["Total"] == len(ids)
    return ids


async def test_order_list_never_shows_another_accounts_orders(client, sellers):
    a, b = sellers
    b_orders = {b.order_id, b.other_order_id}
    everything = {"idFrom": 1, "idTo": max(b_orders) + 1000}

    for filters in ({}, everything, {"sort": "dateCreated"}, {"statusType": 1}):
        ids = await list_order_ids(client, a.tenant, **filters)
        assert set(ids) == {a.order_id, a.other_order_id}, filters
        assert not set(ids) & b_orders


async def test_a_key_for_both_accounts_sees_both_one_account_at_a_time(client, database, sellers):
    a, b = sellers
    async with database.transaction(write=True) as connection:
        both = await admin.create_api_key(
            connection, [a.tenant.account_id, b.tenant.account_id], PEPPER, now()
        )
    shared = Tenant(account_id=a.tenant.account_id, api_key=both.api_key, key_id=both.id)

    assert set(await list_order_ids(client, shared, a.tenant.account_id)) == {a.order_id, a.other_order_id}
    assert set(await list_order_ids(client, shared, b.tenant.account_id)) == {b.order_id, b.other_order_id}
    for seller in (a, b):
        params = {"API_KEY": both.api_key, "accountId": seller.tenant.account_id}
        conversation = await client.get(f"/v2/orders/{seller.order_id}/messages", params=params)
        assert conversation.status_code == 200
        assert conversation.json()["Results"][-1]["Id"] == seller.message_id
    # The accountId still scopes the request: B's order under account A is not found.
    crossed = await client.get(
        f"/v2/orders/{b.order_id}", params={"API_KEY": both.api_key, "accountId": a.tenant.account_id}
    )
    assert_error(crossed, 404, "order_not_found")
    sent = await client.post(
        f"/v2/orders/{b.other_order_id}/messages",
        params={
            "API_KEY": both.api_key,
            "accountId": b.tenant.account_id,
            "messageOptions": 4,
            "message": "Hola",
        },
    )
    assert sent.status_code == 200, sent.text


async def test_a_third_account_key_is_refused_everywhere(client, database, sellers):
    a, _ = sellers
    outsider = await make_tenant(database, name="Outsider")
    for method, path in ENDPOINTS:
        params = {"API_KEY": outsider.api_key, "accountId": a.tenant.account_id}
        assert_error(await call(client, method, path, a, params), 403, "account_not_allowed")
