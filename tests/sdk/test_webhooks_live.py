"""`verify_webhook` on what postventa really sends (issue 20), on both databases: an endpoint registered
through the admin API, buyer messages recorded through it, the dispatcher POSTing to a real receiver;
the SDK reads each request as the message the API shows, before and during a secret's rotation (with
either secret), and refuses it with a wrong secret or once it is too old."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
import standardwebhooks
from postventa_sdk import Message, MessageEvent, WebhookVerificationError, verify_webhook

from postventa.delivery.webhook_dispatch import WebhookDispatcher
from postventa.delivery.webhook_http import WebhookPoster
from postventa.store.engine import Database
from postventa.wiring import create_app
from tests.conftest import admin_headers, make_settings
from tests.factories import Tenant, make_order, make_tenant
from tests.integration.webhook_receiver import Received, receiver

ADMIN = admin_headers()


@pytest.fixture
async def http(database_url: str, isolated_database: Database) -> AsyncIterator[httpx2.AsyncClient]:
    """The application on a database of this test's own (the dispatcher takes every due delivery),
    allowing a receiver on the loopback interface."""
    app = create_app(make_settings(database_url, webhook_allow_private=True), database=isolated_database)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://postventa.test") as client:
        yield client


async def deliver(database: Database) -> None:
    """Every due event POSTed, as a worker's dispatcher does."""
    poster = WebhookPoster(allow_private=True)
    try:
        await WebhookDispatcher(database, poster, retry_schedule=()).drain()
    finally:
        await poster.aclose()


async def buyer_writes(http: httpx2.AsyncClient, order_id: int, text: str) -> int:
    response = await http.post(f"/admin/orders/{order_id}/buyer-messages", json={"Text": text}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return int(response.json()["Id"])


async def shown(http: httpx2.AsyncClient, tenant: Tenant, order_id: int, message_id: int) -> dict[str, Any]:
    response = await http.get(f"/v2/orders/{order_id}/messages/{message_id}", params=tenant.credentials())
    assert response.status_code == 200, response.text
    return dict(response.json())


def read(request: Received, secret: str) -> MessageEvent:
    event = verify_webhook(request.body, request.headers, secret)
    assert isinstance(event, MessageEvent)
    return event


async def test_the_sdk_reads_real_deliveries_with_either_secret_during_a_rotation(
    http: httpx2.AsyncClient, isolated_database: Database
):
    database = isolated_database
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    async with receiver() as hooks:
        registered = await http.post(
            f"/admin/accounts/{tenant.account_id}/webhooks",
            json={"Url": f"{hooks.url}/postventa", "Events": ["message.received"]},
            headers=ADMIN,
        )
        assert registered.status_code == 201, registered.text
        endpoint = registered.json()
        first = await buyer_writes(http, order_id, "¿Cuándo llega?")
        await deliver(database)
        rotated = (await http.post(f"/admin/webhooks/{endpoint['Id']}/secret", headers=ADMIN)).json()
        second = await buyer_writes(http, order_id, "¿Y la factura?")
        await deliver(database)
        before, during = await hooks.wait_for("/postventa", 2)

    old, new = endpoint["Secret"], rotated["Secret"]
    event = read(before, old)
    assert (event.type, event.account_id) == ("message.received", tenant.account_id)
    assert event.data == Message.from_json(await shown(http, tenant, order_id, first))
    assert event.raw == await shown(http, tenant, order_id, first) | {"AccountId": tenant.account_id}
    assert event.webhook_id == before.headers["webhook-id"]
    assert abs(event.timestamp - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    with pytest.raises(WebhookVerificationError, match="signature_mismatch"):
        verify_webhook(before.body, before.headers, new)  # the new secret did not sign before it existed

    assert len(during.headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        event = read(during, secret)
        assert event.data == Message.from_json(await shown(http, tenant, order_id, second))
        assert standardwebhooks.Webhook(secret).verify(during.body, during.headers)["data"]["Id"] == second
    too_late = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)
    with pytest.raises(WebhookVerificationError, match="timestamp_too_old"):
        verify_webhook(during.body, during.headers, new, now=too_late)
