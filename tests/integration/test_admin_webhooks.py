"""Webhook endpoints through the admin API (issue 20) over HTTP on both databases: register (the secret
shown once, stored sealed), list, change, rotate, delete, read the attempts; and every refusal with
the admin API's error body and a code that names why."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import insert, select

from postventa.store.engine import Database
from postventa.store.tables import webhook_attempts, webhook_deliveries, webhook_endpoints
from tests.conftest import admin_headers
from tests.factories import make_tenant, now
from tests.integration.http_helpers import custom_client
from tests.integration.test_admin_cli import assert_error

ADMIN = admin_headers()
ALL_EVENTS = ["message.sent", "message.moderated", "message.failed", "message.received", "order.updated"]
PUBLIC_URL = "https://1.1.1.1/postventa/events"  # a global address: no resolution, allowed by default


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


async def register(client, account_id: int, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/admin/accounts/{account_id}/webhooks", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def listed(client, account_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/admin/accounts/{account_id}/webhooks", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert "whsec_" not in response.text
    results = list(response.json()["Results"])
    assert all("Secret" not in endpoint for endpoint in results)
    return results


async def test_an_endpoint_is_registered_with_a_secret_shown_once_and_stored_sealed(
    client, database: Database
):
    tenant = await make_tenant(database)

    created = await register(client, tenant.account_id, {"Url": PUBLIC_URL})

    assert set(created) == {"Id", "Url", "Events", "Secret"}
    assert (created["Url"], created["Events"]) == (PUBLIC_URL, ALL_EVENTS)  # Events omitted: all
    secret = created["Secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    async with database.transaction() as connection:
        stored = (
            await connection.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == created["Id"]))
        ).one()
    assert secret not in stored.secret
    assert secret.removeprefix("whsec_") not in stored.secret
    assert database.token_cipher.open(stored.secret) == secret
    [shown] = await listed(client, tenant.account_id)
    assert shown["Id"] == created["Id"]
    assert shown["AccountId"] == tenant.account_id
    assert (shown["Enabled"], shown["DisabledReason"], shown["PreviousSecretExpiresAt"]) == (True, None, None)
    assert abs(parse_time(shown["CreatedAt"]) - now()) < dt.timedelta(minutes=1)


async def test_events_are_chosen_changed_and_reset_to_all(client, database: Database):
    tenant = await make_tenant(database)
    created = await register(
        client, tenant.account_id, {"Url": PUBLIC_URL, "Events": ["order.updated", "message.received"]}
    )
    assert created["Events"] == ["message.received", "order.updated"]  # the catalogue's order
    url = f"/admin/webhooks/{created['Id']}"

    changed = await client.patch(url, json={"Events": ["message.failed"]}, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    assert changed.json()["Events"] == ["message.failed"]
    reset = await client.patch(url, json={"Events": None}, headers=ADMIN)
    assert reset.json()["Events"] == ALL_EVENTS
    moved = await client.patch(url, json={"Url": "https://8.8.8.8/hooks"}, headers=ADMIN)
    assert (moved.json()["Url"], moved.json()["Events"]) == ("https://8.8.8.8/hooks", ALL_EVENTS)


async def test_an_endpoint_is_disabled_and_enabled_again(client, database: Database):
    tenant = await make_tenant(database)
    created = await register(client, tenant.account_id, {"Url": PUBLIC_URL})
    url = f"/admin/webhooks/{created['Id']}"

    disabled = (await client.patch(url, json={"Enabled": False}, headers=ADMIN)).json()
    assert (disabled["Enabled"], disabled["DisabledReason"]) == (False, "disabled by an operator")
    assert disabled["DisabledAt"] is not None
    assert (await listed(client, tenant.account_id))[0]["Enabled"] is False
    enabled = (await client.patch(url, json={"Enabled": True}, headers=ADMIN)).json()
    assert (enabled["Enabled"], enabled["DisabledReason"], enabled["DisabledAt"]) == (True, None, None)


async def test_a_rotated_secret_is_new_shown_once_and_the_old_one_signs_for_a_day(client, database: Database):
    tenant = await make_tenant(database)
    created = await register(client, tenant.account_id, {"Url": PUBLIC_URL})

    rotated = await client.post(f"/admin/webhooks/{created['Id']}/secret", headers=ADMIN)

    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert set(body) == {"Id", "Secret", "PreviousSecretExpiresAt"}
    assert body["Id"] == created["Id"]
    assert body["Secret"].startswith("whsec_")
    assert body["Secret"] != created["Secret"]
    overlap_end = parse_time(body["PreviousSecretExpiresAt"])
    assert abs(overlap_end - (now() + dt.timedelta(hours=24))) < dt.timedelta(minutes=1)
    [shown] = await listed(client, tenant.account_id)
    assert shown["PreviousSecretExpiresAt"] == body["PreviousSecretExpiresAt"]
    async with database.transaction() as connection:
        stored = (
            await connection.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == created["Id"]))
        ).one()
    assert database.token_cipher.open(stored.secret) == body["Secret"]
    assert database.token_cipher.open(stored.previous_secret) == created["Secret"]


async def test_a_deleted_endpoint_is_gone_everywhere(client, database: Database):
    tenant = await make_tenant(database)
    kept = await register(client, tenant.account_id, {"Url": PUBLIC_URL})
    deleted = await register(client, tenant.account_id, {"Url": "https://8.8.4.4/other"})

    response = await client.delete(f"/admin/webhooks/{deleted['Id']}", headers=ADMIN)

    assert (response.status_code, response.content) == (204, b"")
    assert [endpoint["Id"] for endpoint in await listed(client, tenant.account_id)] == [kept["Id"]]
    for method, path, body in (
        ("DELETE", "", None),
        ("PATCH", "", {"Enabled": True}),
        ("POST", "/secret", None),
        ("GET", "/attempts", None),
    ):
        answer = await client.request(
            method, f"/admin/webhooks/{deleted['Id']}{path}", json=body, headers=ADMIN
        )
        assert_error(answer, 404, "webhook_not_found")


async def test_the_attempts_are_shown_newest_first_with_their_event(client, database: Database):
    tenant = await make_tenant(database)
    created = await register(client, tenant.account_id, {"Url": PUBLIC_URL})
    started = now().replace(microsecond=0)
    async with database.transaction(write=True) as connection:
        delivery = await connection.execute(
            insert(webhook_deliveries)
            .values(
                endpoint_id=created["Id"],
                webhook_id="msg_test_attempts",
                event_type="message.received",
                subject_id=1,
                occurred_at=started,
                status="delivered",
                attempts=2,
                created_at=started,
            )
            .returning(webhook_deliveries.c.id)
        )
        delivery_id = delivery.scalar_one()
        for number, status, error in ((1, 500, "HTTP 500: down"), (2, 204, None)):
            await connection.execute(
                insert(webhook_attempts).values(
                    delivery_id=delivery_id,
                    endpoint_id=created["Id"],
                    attempt=number,
                    started_at=started + dt.timedelta(seconds=5 * number),
                    duration_ms=12 * number,
                    http_status=status,
                    error=error,
                )
            )
    url = f"/admin/webhooks/{created['Id']}/attempts"

    attempts = (await client.get(url, headers=ADMIN)).json()["Results"]

    assert [(a["Attempt"], a["HttpStatus"], a["Error"], a["DurationMs"]) for a in attempts] == [
        (2, 204, None, 24),
        (1, 500, "HTTP 500: down", 12),
    ]
    assert {(a["WebhookId"], a["EventType"], a["DeliveryStatus"]) for a in attempts} == {
        ("msg_test_attempts", "message.received", "delivered")
    }
    assert parse_time(attempts[1]["StartedAt"]) == started + dt.timedelta(seconds=5)
    page = (await client.get(url, params={"limit": 1, "offset": 1}, headers=ADMIN)).json()["Results"]
    assert [a["Attempt"] for a in page] == [1]
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "ten"}):
        assert_error(await client.get(url, params=params, headers=ADMIN), 400, "invalid_request")


REFUSED_URLS = {
    "http": ("http://1.1.1.1/hook", "webhook_url_scheme"),
    "ftp": ("ftp://1.1.1.1/hook", "webhook_url_scheme"),
    "not_a_url": ("events please", "webhook_url_invalid"),
    "no_host": ("https:///hook", "webhook_url_invalid"),
    "credentials": ("https://user:secret@1.1.1.1/hook", "webhook_url_credentials"),
    "loopback": ("https://127.0.0.1/hook", "webhook_url_private"),
    "loopback_by_name": ("https://localhost:8443/hook", "webhook_url_private"),
    "private": ("https://10.1.2.3/hook", "webhook_url_private"),
    "metadata": ("https://169.254.169.254/latest/meta-data", "webhook_url_private"),
    "ipv6_loopback": ("https://[::1]/hook", "webhook_url_private"),
    "ipv4_in_ipv6": ("https://[::ffff:192.168.0.1]/hook", "webhook_url_private"),
    "unspecified": ("https://0.0.0.0/hook", "webhook_url_address"),
    "unresolved": ("https://postventa-receiver.invalid/hook", "webhook_url_unresolved"),
    "too_long": ("https://1.1.1.1/" + "a" * 2048, "webhook_url_invalid"),
}


@pytest.mark.parametrize("case", list(REFUSED_URLS))
async def test_a_refused_url_is_a_400_naming_why_on_registration_and_change(client, database: Database, case):
    url, code = REFUSED_URLS[case]
    tenant = await make_tenant(database)
    kept = await register(client, tenant.account_id, {"Url": PUBLIC_URL})

    body = assert_error(
        await client.post(f"/admin/accounts/{tenant.account_id}/webhooks", json={"Url": url}, headers=ADMIN),
        400,
        code,
    )
    assert "Url" in body["Message"]
    assert_error(
        await client.patch(f"/admin/webhooks/{kept['Id']}", json={"Url": url}, headers=ADMIN), 400, code
    )
    assert [endpoint["Url"] for endpoint in await listed(client, tenant.account_id)] == [PUBLIC_URL]


async def test_private_destinations_and_http_with_allow_private(database_url: str, database: Database):
    tenant = await make_tenant(database)
    async with custom_client(database_url, database, webhook_allow_private=True) as allowing:
        for url in ("http://127.0.0.1:8080/hook", "https://localhost/hook", "http://10.1.2.3/hook"):
            assert (await register(allowing, tenant.account_id, {"Url": url}))["Url"] == url
        assert_error(
            await allowing.post(
                f"/admin/accounts/{tenant.account_id}/webhooks",
                json={"Url": "ftp://10.1.2.3/"},
                headers=ADMIN,
            ),
            400,
            "webhook_url_scheme",
        )


@pytest.mark.parametrize(
    ("events", "code"),
    [
        (["message.sent", "order.created"], "webhook_events_invalid"),
        ([], "webhook_events_invalid"),
        (["MESSAGE.SENT"], "webhook_events_invalid"),
        ("message.sent", "invalid_body"),
        ([1], "invalid_body"),
    ],
    ids=["unknown", "empty", "wrong_case", "not_a_list", "not_text"],
)
async def test_events_that_are_not_the_catalogue_are_a_400(client, database: Database, events, code):
    tenant = await make_tenant(database)
    kept = await register(client, tenant.account_id, {"Url": PUBLIC_URL, "Events": ["message.sent"]})
    body = {"Url": PUBLIC_URL, "Events": events}

    refused = assert_error(
        await client.post(f"/admin/accounts/{tenant.account_id}/webhooks", json=body, headers=ADMIN),
        400,
        code,
    )
    if code == "webhook_events_invalid" and events:
        assert events[-1] in refused["Message"]
        assert "order.updated" in refused["Message"]
    assert_error(
        await client.patch(f"/admin/webhooks/{kept['Id']}", json={"Events": events}, headers=ADMIN), 400, code
    )
    assert [endpoint["Events"] for endpoint in await listed(client, tenant.account_id)] == [["message.sent"]]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_body"),
        ({"Enabled": "yes"}, "invalid_body"),
        ({"Enabled": 1}, "invalid_body"),
        ({"Url": PUBLIC_URL, "Secret": "whsec_mine"}, "invalid_body"),
    ],
    ids=["nothing", "enabled_text", "enabled_number", "unknown_field"],
)
async def test_a_change_that_is_not_one_is_a_400(client, database: Database, body, code):
    tenant = await make_tenant(database)
    kept = await register(client, tenant.account_id, {"Url": PUBLIC_URL})
    assert_error(await client.patch(f"/admin/webhooks/{kept['Id']}", json=body, headers=ADMIN), 400, code)


async def test_unknown_accounts_and_endpoints_are_404_and_malformed_ids_400(client):
    missing = 2**62
    body = {"Url": PUBLIC_URL}
    assert_error(
        await client.post(f"/admin/accounts/{missing}/webhooks", json=body, headers=ADMIN),
        404,
        "account_not_found",
    )
    assert_error(
        await client.get(f"/admin/accounts/{missing}/webhooks", headers=ADMIN), 404, "account_not_found"
    )
    assert_error(await client.delete(f"/admin/webhooks/{missing}", headers=ADMIN), 404, "webhook_not_found")
    assert_error(await client.get("/admin/accounts/abc/webhooks", headers=ADMIN), 400, "account_id_invalid")
    for method in ("DELETE", "GET"):
        suffix = "/attempts" if method == "GET" else ""
        answer = await client.request(method, f"/admin/webhooks/0{suffix}", headers=ADMIN)
        assert_error(answer, 400, "webhook_id_invalid")


async def test_bodies_that_cannot_be_read_are_refused(client, database: Database):
    tenant = await make_tenant(database)
    url = f"/admin/accounts/{tenant.account_id}/webhooks"
    headers = {**ADMIN, "content-type": "application/json"}
    assert_error(await client.post(url, content=b'{"Url": ', headers=headers), 400, "malformed_json")
    assert_error(
        await client.post(url, content=b"Url=x", headers={**ADMIN, "content-type": "text/plain"}), 415
    )
    assert_error(
        await client.post(url, json={"Events": ["message.sent"]}, headers=ADMIN), 400, "invalid_body"
    )
    assert_error(await client.post(url, json={"Url": 5}, headers=ADMIN), 400, "invalid_body")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/accounts/1/webhooks"),
        ("GET", "/admin/accounts/1/webhooks"),
        ("PATCH", "/admin/webhooks/1"),
        ("DELETE", "/admin/webhooks/1"),
        ("POST", "/admin/webhooks/1/secret"),
        ("GET", "/admin/webhooks/1/attempts"),
    ],
)
async def test_every_route_needs_the_admin_token(client, method, path):
    body = {"Url": PUBLIC_URL} if method in ("POST", "PATCH") else None
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert_error(
            await client.request(method, path, json=body, headers=headers), 401, "admin_token_invalid"
        )


async def test_the_routes_are_in_the_openapi_document(client):
    document = (await client.get("/openapi.json")).json()
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if "webhook" in path and path.startswith("/admin")
    }
    assert operations == {
        ("POST", "/admin/accounts/{accountId}/webhooks"),
        ("GET", "/admin/accounts/{accountId}/webhooks"),
        ("PATCH", "/admin/webhooks/{webhookId}"),
        ("DELETE", "/admin/webhooks/{webhookId}"),
        ("POST", "/admin/webhooks/{webhookId}/secret"),
        ("GET", "/admin/webhooks/{webhookId}/attempts"),
    }
    created = document["paths"]["/admin/accounts/{accountId}/webhooks"]["post"]
    assert created["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WebhookCreated"
    }
    events = created["requestBody"]["content"]["application/json"]["schema"]
    assert "Url" in str(events)
    assert "order.updated" in str(events)
