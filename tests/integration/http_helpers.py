"""Small helpers shared by the HTTP integration tests: URLs, sends, refusals and custom applications."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2

from postventa.store.engine import Database
from postventa.wiring import create_app
from tests.conftest import make_settings
from tests.factories import Tenant, buyer_replies, make_order

RATE_LIMIT_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-retryafter",
)

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(32))
JPG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(40))
TXT = "Factura Nº 0001-00001234\nTotal: $ 1.500,00\n".encode()


def messages_url(order_id: int | str) -> str:
    return f"/v2/orders/{order_id}/messages"


async def send(
    client: httpx2.AsyncClient, tenant: Tenant, order_id: int | str, **params: Any
) -> httpx2.Response:
    """POST a send with the tenant's credentials and the given parameters in the query string."""
    return await client.post(messages_url(order_id), params=tenant.credentials(**params))


async def send_other(client: httpx2.AsyncClient, tenant: Tenant, order_id: int | str, text: str = "Hola"):
    return await send(client, tenant, order_id, messageOptions=4, message=text)


async def conversation(client: httpx2.AsyncClient, tenant: Tenant, order_id: int) -> list[dict[str, Any]]:
    """The order's conversation (Results), asserting the read succeeded."""
    response = await client.get(messages_url(order_id), params=tenant.credentials())
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["Results"]
    return results


def assert_refused(response: httpx2.Response, status: int, code: str) -> dict[str, Any]:
    """The documented error body {"Status", "Message", "Code"} with this status and code."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"Status", "Message", "Code"}, body
    assert body["Status"] == status
    assert body["Code"] == code, body
    assert isinstance(body["Message"], str)
    assert body["Message"].strip()
    return body


def assert_accepted(response: httpx2.Response) -> int:
    """A 200 whose body is the new message id as a JSON string; returns the id."""
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    message_id = response.json()
    assert isinstance(message_id, str)
    assert message_id.isdigit(), message_id
    return int(message_id)


def assert_rate_limit_headers(response: httpx2.Response, *, allowed: bool = True) -> None:
    """x-ratelimit-* present and numeric; x-ratelimit-retryafter is -1 when the request was allowed."""
    missing = [name for name in RATE_LIMIT_HEADERS if name not in response.headers]
    assert not missing, f"{response.status_code} {response.text} lacks {missing}"
    for name in RATE_LIMIT_HEADERS:
        assert response.headers[name].lstrip("-").isdigit(), (name, response.headers[name])
    assert int(response.headers["x-ratelimit-limit"]) > 0
    assert int(response.headers["x-ratelimit-remaining"]) >= 0
    assert int(response.headers["x-ratelimit-reset"]) >= 0
    if allowed:
        assert response.headers["x-ratelimit-retryafter"] == "-1"
    else:
        assert int(response.headers["x-ratelimit-retryafter"]) >= 1


@asynccontextmanager
async def custom_client(
    database_url: str, database: Database, **overrides: object
) -> AsyncIterator[httpx2.AsyncClient]:
    """A separate application on the same database with other settings (rate limits, sizes)."""
    app = create_app(make_settings(database_url, **overrides), database=database)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://postventa.test") as http:
        yield http


async def answered_order(
    client: httpx2.AsyncClient, database: Database, tenant: Tenant, **order_fields: Any
) -> int:
    """An order whose first plain message the buyer has answered: attachments are allowed now."""
    order_id = await make_order(database, tenant, **order_fields)
    assert_accepted(await send_other(client, tenant, order_id, "Hola, ¿te llegó bien?"))
    await buyer_replies(database, order_id)
    return order_id
