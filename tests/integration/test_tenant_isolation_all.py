"""Tenant isolation on every /v2 route the application has, found by enumerating its routes, so a
new route cannot be forgotten: with key A and account B (in the query, or in the path), 403; with
account A and B's order or message, 404; and never a byte of B's data in the answer (its marker,
its Mercado Libre seller). (test_tenant_isolation.py holds the
finer cases: keys for two accounts, a third account, the order list's filters.)"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from fastapi.routing import iter_route_contexts

from postventa.domain.sites import Site
from postventa.store.links import MarketplaceLink, save_link
from postventa.wiring import create_app
from tests.conftest import make_settings
from tests.factories import Tenant, buyer_replies, make_order, make_tenant, now
from tests.integration.http_helpers import assert_refused

# How to call each /v2 route: its extra parameters. A route missing here fails
# test_every_v2_route_is_known, so whoever adds one must add how to call it.
CALLS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v2/orders/{orderId}/messages"): {"messageOptions": 4, "message": "Intruso"},
    ("GET", "/v2/orders"): {},
    ("GET", "/v2/orders/{orderId}"): {},
    ("GET", "/v2/orders/{orderId}/messages"): {},
    ("GET", "/v2/orders/{orderId}/messages/options"): {},
    ("GET", "/v2/orders/{orderId}/messages/{messageId}"): {},
    ("GET", "/v2/orders/{orderId}/messages/{messageId}/attachment"): {},
    ("GET", "/v2/accounts"): {},
    ("GET", "/v2/accounts/{accountId}/marketplaces"): {},
    ("GET", "/v2/accounts/{accountId}/stores"): {},
    ("GET", "/v2/products"): {},
}
ROUTES = sorted(CALLS)
ACCOUNT_PATH_ROUTES = [route for route in ROUTES if "{accountId}" in route[1]]
# Routes whose answer to the owner holds nothing of the fixtures' markers (A is not linked to
# Mercado Libre, and postventa holds no stores or products): the owner gets a 200 without B's data.
WITHOUT_MARKER = {
    ("GET", "/v2/orders/{orderId}/messages/options"),
    ("GET", "/v2/accounts/{accountId}/marketplaces"),
    ("GET", "/v2/accounts/{accountId}/stores"),
    ("GET", "/v2/products"),
}
ORDER_ROUTES = [route for route in ROUTES if "{orderId}" in route[1]]
MESSAGE_ROUTES = [route for route in ROUTES if "{messageId}" in route[1]]


def route_ids(routes: list[tuple[str, str]]) -> list[str]:
    return [f"{method} {path}" for method, path in routes]


@dataclass
class Seller:
    """A tenant whose account name, order, conversation and attachment carry a marker no other tenant
    has; with a Mercado Libre seller when linked."""

    tenant: Tenant
    marker: str
    order_id: int
    message_id: int  # the message with the attachment
    seller_id: int | None = None

    def url(self, path: str, *, order_id: int | None = None, message_id: int | None = None) -> str:
        return path.format(
            orderId=order_id or self.order_id,
            messageId=message_id or self.message_id,
            accountId=self.tenant.account_id,
        )


async def link_seller(database, seller: Seller) -> None:
    """Link the seller's account to a Mercado Libre seller of its own (after its sends)."""
    seller.seller_id = secrets.randbelow(10**14) + 10**14
    link = MarketplaceLink(
        seller.tenant.account_id,
        seller.seller_id,
        Site.MLA,
        "app",
        "secret",
        "refresh",
        "access",
        now() + dt.timedelta(hours=5),
    )
    async with database.transaction(write=True) as connection:
        await save_link(connection, link, now(), database.token_cipher)


async def make_seller(client: httpx2.AsyncClient, database, name: str) -> Seller:
    marker = f"{name}-{uuid.uuid4().hex[:12]}"
    tenant = await make_tenant(database, name=marker)
    buyer = {"Code": marker, "Nickname": marker, "Name": marker}
    order_id = await make_order(database, tenant, ExternalOrderId=marker, Buyer=buyer)
    sends = f"/v2/orders/{order_id}/messages"
    first = await client.post(sends, params=tenant.credentials(messageOptions=4, message=f"Hola {marker}"))
    assert first.status_code == 200, first.text
    await buyer_replies(database, order_id, text=f"Respuesta {marker}")
    attached = await client.post(
        sends,
        json=tenant.credentials(
            messageOptions=4,
            message=f"Adjunto {marker}",
            fileBase64=base64.b64encode(f"factura {marker}".encode()).decode(),
            documentName=f"factura-{marker}",
            documentExtension="txt",
        ),
    )
    assert attached.status_code == 200, attached.text
    return Seller(tenant, marker, order_id, int(attached.json()))


@pytest.fixture
async def sellers(client, database) -> tuple[Seller, Seller]:
    a, b = await make_seller(client, database, "A"), await make_seller(client, database, "B")
    await link_seller(database, b)  # B's seller must not show to A (A stays unlinked: its sends ask no caps)
    return a, b


async def call(client, route: tuple[str, str], url: str, params: dict[str, Any], **options: Any):
    return await client.request(route[0], url, params={**params, **CALLS[route]}, **options)


async def stored_ids(client, seller: Seller) -> list[int]:
    response = await client.get(f"/v2/orders/{seller.order_id}/messages", params=seller.tenant.credentials())
    assert response.status_code == 200, response.text
    return [message["Id"] for message in response.json()["Results"]]


def assert_nothing_of(seller: Seller, response: httpx2.Response) -> None:
    assert seller.marker.encode() not in response.content, response.text[:300]
    if seller.seller_id is not None:
        assert str(seller.seller_id).encode() not in response.content, response.text[:300]


async def test_every_v2_route_is_known(database_url, database):
    app = create_app(make_settings(database_url), database=database)
    routes = {
        (method, context.path)
        for context in iter_route_contexts(app.routes)
        if context.path.startswith("/v2/")
        for method in context.methods or ()
        if method != "HEAD"
    }
    assert routes, "no /v2 route found: the enumeration is broken"
    unknown = routes - set(CALLS)
    assert not unknown, f"/v2 routes the isolation tests do not know how to call: {sorted(unknown)}"
    assert not set(CALLS) - routes, "the table names routes the application no longer has"


@pytest.mark.parametrize("route", ROUTES, ids=route_ids(ROUTES))
async def test_own_key_with_another_account_is_403(client, sellers, route):
    a, b = sellers
    before = await stored_ids(client, b)
    params = {"API_KEY": a.tenant.api_key, "accountId": b.tenant.account_id}
    in_header = {"accountId": b.tenant.account_id}
    headers = {"X-API-Key": a.tenant.api_key}

    # An account in the path is the account asked for: B's (A's path with B in the query is a conflict).
    urls = [b.url(route[1])] if route in ACCOUNT_PATH_ROUTES else [a.url(route[1]), b.url(route[1])]
    for url in urls:
        for response in (
            await call(client, route, url, params),
            await call(client, route, url, in_header, headers=headers),
        ):
            assert_refused(response, 403, "account_not_allowed")
            assert_nothing_of(b, response)
    assert await stored_ids(client, b) == before


@pytest.mark.parametrize("route", ORDER_ROUTES, ids=route_ids(ORDER_ROUTES))
async def test_another_accounts_order_is_404(client, sellers, route):
    a, b = sellers
    before = await stored_ids(client, b)

    response = await call(client, route, b.url(route[1]), a.tenant.credentials())

    assert_refused(response, 404, "order_not_found")
    assert_nothing_of(b, response)
    assert await stored_ids(client, b) == before


@pytest.mark.parametrize("route", MESSAGE_ROUTES, ids=route_ids(MESSAGE_ROUTES))
async def test_another_accounts_message_under_an_own_order_is_404(client, sellers, route):
    a, b = sellers

    response = await call(client, route, a.url(route[1], message_id=b.message_id), a.tenant.credentials())

    assert_refused(response, 404, "message_not_found")
    assert_nothing_of(b, response)


@pytest.mark.parametrize("route", ROUTES, ids=route_ids(ROUTES))
async def test_the_owner_gets_an_answer_without_the_other_tenants_data(client, sellers, route):
    """The control: the same call with the owner's credentials is served, and shows A, never B."""
    a, b = sellers

    response = await call(client, route, a.url(route[1]), a.tenant.credentials())

    if route[0] == "POST":  # the buyer has not answered the attachment yet
        assert_refused(response, 409, "awaiting_buyer_reply")
        return
    assert response.status_code == 200, response.text
    if route not in WITHOUT_MARKER:
        assert a.marker.encode() in response.content
    assert_nothing_of(b, response)
