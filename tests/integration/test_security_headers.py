"""Security headers on every response: API answers, refusals the edge sends itself, 500s, the docs."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from fastapi import Request
from starlette.responses import PlainTextResponse

from postventa.api.edge import EdgeMiddleware
from postventa.api.intake import BodyIntake
from postventa.api.security import (
    API_CONTENT_SECURITY_POLICY,
    DOCS_CONTENT_SECURITY_POLICY,
    SecurityHeaders,
)
from postventa.wiring import create_app
from tests.conftest import admin_headers, make_settings
from tests.factories import buyer_replies, make_order, make_tenant
from tests.integration.test_robustness import raw_exchange

COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def assert_secured(response: httpx2.Response, policy: str = API_CONTENT_SECURITY_POLICY) -> None:
    for name, value in COMMON.items():
        assert response.headers.get_list(name) == [value], (response.request.url.path, name)
    assert response.headers.get_list("content-security-policy") == [policy]
    assert "strict-transport-security" not in response.headers


@pytest.fixture
async def app_client(database_url, database) -> AsyncIterator[httpx2.AsyncClient]:
    """The app with one failing route, over in-process HTTP that turns app errors into responses."""
    app = create_app(make_settings(database_url, max_attachment_bytes=1024), database=database)

    @app.get("/v2/failing")
    async def failing(request: Request) -> None:
        raise RuntimeError("unexpected")

    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://postventa.test") as http:
        yield http


async def test_every_kind_of_api_response_carries_the_headers(app_client, database):
    tenant = await make_tenant(database, name="Headers")
    order = await make_order(database, tenant)
    sends = f"/v2/orders/{order}/messages"
    responses = [
        await app_client.post(sends, params=tenant.credentials(messageOptions=4, message="Hola")),
        await app_client.post(sends, params=tenant.credentials(messageOptions=4, message="Otra")),  # 409
        await app_client.get("/v2/orders", params=tenant.credentials()),
        await app_client.get(f"/v2/orders/{order}", params=tenant.credentials()),
        await app_client.get("/v2/orders", params={"API_KEY": "pv_0123456789ab_nope", "accountId": 1}),
        await app_client.get("/v2/nowhere"),
        await app_client.delete("/v2/orders"),
        await app_client.post(sends, params=tenant.credentials(), content=b"x" * 100_000),  # 413, edge
        await app_client.get("/v2/orders", params={"q": "x" * 40_000}),  # 414, edge
        await app_client.get("/v2/failing"),  # 500, Starlette's ServerErrorMiddleware
        await app_client.get("/admin/accounts", headers=admin_headers()),
        await app_client.post("/webhooks/mercadolibre", json={"topic": "x", "resource": "1", "user_id": 1}),
        await app_client.get("/healthz"),
        await app_client.get("/openapi.json"),
    ]
    statuses = [response.status_code for response in responses]
    assert statuses == [200, 409, 200, 200, 401, 404, 405, 413, 414, 500, 200, 200, 200, 200]
    for response in responses:
        assert_secured(response)


async def test_a_download_keeps_its_own_nosniff_once(app_client, database):
    tenant = await make_tenant(database, name="Download")
    order = await make_order(database, tenant)
    sends = f"/v2/orders/{order}/messages"
    assert (
        await app_client.post(sends, params=tenant.credentials(messageOptions=4, message="Hola"))
    ).is_success
    await buyer_replies(database, order)
    file = base64.b64encode(b"factura").decode()
    body = tenant.credentials(
        messageOptions=4, message="Adjunto", fileBase64=file, documentName="f", documentExtension="txt"
    )
    message_id = (await app_client.post(sends, json=body)).json()

    download = await app_client.get(f"{sends}/{message_id}/attachment", params=tenant.credentials())

    assert download.content == b"factura"
    assert_secured(download)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_the_docs_pages_get_a_policy_that_lets_them_load(app_client, path):
    page = await app_client.get(path)

    assert page.status_code == 200
    assert_secured(page, DOCS_CONTENT_SECURITY_POLICY)
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in DOCS_CONTENT_SECURITY_POLICY.split("; ")
    )
    kinds = {"script": "script-src", "link": "style-src"}
    for tag, url in re.findall(r'<(script|link)[^>]*(?:src|href)="([^"]+)"', page.text):
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "'self'"
        directive = "img-src" if "icon" in url or url.endswith(".png") else kinds[tag]
        assert origin in directives[directive], (path, url, directive)
    if "<script>" in page.text:
        assert "'unsafe-inline'" in directives["script-src"]


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        (None, None),
        ("http://postventa.example", None),
        ("https://postventa.example", "max-age=31536000"),
        ("HTTPS://postventa.example/", "max-age=31536000"),
    ],
)
async def test_strict_transport_only_behind_https(database_url, database, public_url, expected):
    app = create_app(make_settings(database_url, public_url=public_url), database=database)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://postventa.test") as http:
        for response in (await http.get("/healthz"), await http.get("/v2/orders")):
            assert response.headers.get("strict-transport-security") == expected


async def test_a_cache_control_the_route_chose_is_kept():
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("public", headers={"Cache-Control": "max-age=60"})(scope, receive, send)

    intake = BodyIntake(1000, body_timeout_seconds=5, large_body_wait_seconds=1, slots=asyncio.Semaphore(1))
    edge = EdgeMiddleware(app, intake=intake, max_query_bytes=1000, security=SecurityHeaders())
    transport = httpx2.ASGITransport(app=edge)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/")

    assert response.headers.get_list("cache-control") == ["max-age=60"]
    assert response.headers["x-frame-options"] == "DENY"


async def test_the_real_server_sends_them_on_its_own_refusals(live_server):
    """Over real TCP: the edge's 413, refused from Content-Length before the body is read."""
    request = (
        "POST /v2/orders/1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {live_server.settings.max_body_bytes + 1}\r\n\r\n"
    )

    too_large = await raw_exchange(live_server.port, request.encode())

    assert too_large.status_code == 413
    for name, value in COMMON.items():
        assert too_large.headers[name] == value
    assert too_large.headers["content-security-policy"] == API_CONTENT_SECURITY_POLICY


async def test_the_swagger_ui_page_needs_no_internet(app_client):
    """/docs loads Swagger UI's script, style and icon from this origin (the pinned package)."""
    page = await app_client.get("/docs")

    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls
    assert all(url.startswith("/docs/static/") for url in urls), urls
    for url in urls:
        served = await app_client.get(url)
        assert served.status_code == 200, url
        assert served.content
    script = await app_client.get("/docs/static/swagger-ui-bundle.js")
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "SwaggerUIBundle" in script.text
