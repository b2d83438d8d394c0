"""`postventa db copy`: an embedded SQLite database filled through the API and the services is copied
to a fresh PostgreSQL database (and back); the API answers the same on the copy, keys still open it,
sealed credentials still open, new rows get new ids, and a target that holds rows is refused."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select

from postventa.domain.errors import PostventaError
from postventa.domain.sites import Site
from postventa.services import admin
from postventa.store import outbox
from postventa.store.copy import copy_database
from postventa.store.engine import Database
from postventa.store.links import MarketplaceLink, get_link, save_link
from postventa.store.migrate import upgrade
from postventa.store.sealing import TokenCipher
from postventa.store.tables import idempotency_keys, metadata
from postventa.wiring import create_app, meli_client
from tests.conftest import POSTGRES_ADMIN_URL, _postgres_admin, admin_headers, make_settings
from tests.integration.http_helpers import PDF

POSTVENTA = Path(sys.executable).with_name("postventa")
# What a copy carries: every table but Mercado Libre's call budget of the last minute.
DATA_TABLES = [table for table in metadata.sorted_tables if not table.info.get("ephemeral")]
ADMIN = admin_headers()
TOKEN_KEY = Fernet.generate_key().decode()
SELLER_ID = 424_242_424
PACK_ID = 2_000_000_000_123


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def open_database(url: str) -> Database:
    return Database(url, token_cipher=TokenCipher([TOKEN_KEY]))


@pytest.fixture
def postgres_url(postgres_available: bool) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test alone."""
    if not postgres_available:
        pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")
    name = f"postventa_copy_{uuid.uuid4().hex[:10]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@asynccontextmanager
async def api(database: Database) -> AsyncIterator[httpx2.AsyncClient]:
    """The application on this database, over in-process HTTP."""
    url = database.url.render_as_string(hide_password=False)
    settings = make_settings(url)
    meli = meli_client(settings)  # ASGI runs no lifespan: the client is ours to close
    app = create_app(settings, database=database, meli=meli)
    transport = httpx2.ASGITransport(app=app)
    try:
        async with httpx2.AsyncClient(transport=transport, base_url="http://postventa.test") as client:
            yield client
    finally:
        await meli.aclose()


# --- filling the source ---------------------------------------------------------------------------


async def send(client, key: str, account_id: int, order_id: int, **fields: Any) -> int:
    body = {"API_KEY": key, "accountId": account_id, "messageOptions": 4, "message": "Hola", **fields}
    response = await client.post(f"/v2/orders/{order_id}/messages", json=body)
    assert response.status_code == 200, response.text
    return int(response.json())


async def deliver(database: Database, message_id: int, status: str) -> None:
    """The outbox as a worker drives it: claim, then record the outcome (and its attempt row)."""
    started = now() + dt.timedelta(seconds=1)
    async with database.transaction(write=True) as connection:
        claimed = await outbox.claim_due_messages(connection, "w1", started, limit=100, lease_seconds=30)
        assert message_id in {message.id for message in claimed}
        for message in claimed:
            if message.id == message_id:
                result = (
                    outbox.Outcome("sent", "sent", "action_guide", marketplace_message_id=uuid.uuid4().hex)
                    if status == "sent"
                    else outbox.Outcome("failed", "failed", "action_guide", error_code="conversation_blocked")
                )
            else:
                result = outbox.Outcome("queued", "retry", "action_guide", next_attempt_at=started)
            await outbox.record_outcome(
                connection, message.id, "w1", message.attempts, result, started, now()
            )


async def fill(database: Database) -> dict[str, Any]:
    """Accounts, keys, orders (one pack), messages in several statuses, an attachment, a link, a
    notification, attempts, an idempotency row: everything a running service writes."""
    async with api(database) as client:
        account = (await client.post("/admin/accounts", json={"Name": "Tienda"}, headers=ADMIN)).json()["Id"]
        other = (await client.post("/admin/accounts", json={"Name": "Otra"}, headers=ADMIN)).json()["Id"]
        key = (
            await client.post("/admin/api-keys", json={"AccountIds": [account, other]}, headers=ADMIN)
        ).json()
        orders = [
            {"ExternalOrderId": str(2_000_000_000_001 + n), "SiteId": "MLA", "LogisticType": "cross_docking"}
            for n in range(3)
        ] + [
            {"ExternalOrderId": str(2_000_000_000_101 + n), "SiteId": "MLA", "PackId": PACK_ID}
            for n in range(2)
        ]
        response = await client.put(
            f"/admin/accounts/{account}/orders", json={"Orders": orders}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        order_ids = [order["Id"] for order in response.json()["Results"]]
        other_orders = [
            {"ExternalOrderId": "3000000000001", "SiteId": "MLB", "LogisticType": "drop_off"},
            {"ExternalOrderId": "X-1", "SiteId": "MLB", "Marketplace": "Otro"},
        ]
        response = await client.put(
            f"/admin/accounts/{other}/orders", json={"Orders": other_orders}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        other_order = response.json()["Results"][0]["Id"]
        async with database.transaction(write=True) as connection:
            link = MarketplaceLink(
                account, SELLER_ID, Site.MLA, "app", "s3cret", "TG-refresh", "APP-access", now()
            )
            await save_link(connection, link, now(), database.token_cipher)
        sent = await send(client, key["ApiKey"], account, order_ids[0])
        await deliver(database, sent, "sent")
        failed = await send(client, key["ApiKey"], account, order_ids[1])
        await deliver(database, failed, "failed")
        queued = await send(client, key["ApiKey"], account, order_ids[2])
        first_in_pack = await send(client, key["ApiKey"], account, order_ids[3])
        await deliver(database, first_in_pack, "sent")
        reply = await client.post(
            f"/admin/orders/{order_ids[4]}/buyer-messages", json={"Text": "Gracias"}, headers=ADMIN
        )
        assert reply.status_code == 201, reply.text
        encoded = base64.b64encode(PDF).decode()
        with_file = await send(
            client,
            key["ApiKey"],
            account,
            order_ids[4],
            fileBase64=encoded,
            documentName="factura",
            documentExtension="pdf",
        )
        # The other account is not linked: its message waits, queued.
        unlinked = await send(client, key["ApiKey"], other, other_order)
        notification = {"topic": "messages", "resource": "abc123", "user_id": SELLER_ID, "application_id": 1}
        assert (await client.post("/webhooks/mercadolibre", json=notification)).status_code == 200
    async with database.transaction(write=True) as connection:
        await outbox.heartbeat(connection, "w1", now())
        if "idempotency_keys" in metadata.tables:
            await connection.execute(
                insert(idempotency_keys).values(
                    api_key_id=key["Id"],
                    key="retry-1",
                    request_hash="0" * 64,
                    state="done",
                    locked_until=now(),
                    response_status=200,
                    response_headers="{}",
                    response_body=b'"1"',
                    created_at=now(),
                    expires_at=now() + dt.timedelta(days=1),
                )
            )
    return {
        "key": key["ApiKey"],
        "accounts": [account, other],
        "orders": order_ids,
        "messages": {
            "sent": sent,
            "failed": failed,
            "queued": queued,
            "attachment": with_file,
            "unlinked": unlinked,
        },
    }


# --- reading it back ------------------------------------------------------------------------------


async def answers(database: Database, world: dict[str, Any]) -> dict[str, Any]:
    """What the API says about everything in `world`: orders, conversations, one message, the file."""
    seen: dict[str, Any] = {}
    async with api(database) as client:
        for account in world["accounts"]:
            params = {"API_KEY": world["key"], "accountId": account, "limit": 100}
            response = await client.get("/v2/orders", params=params)
            assert response.status_code == 200, response.text
            seen[f"orders {account}"] = response.json()
            for order in response.json()["Results"]:
                conversation = await client.get(f"/v2/orders/{order['Id']}/messages", params=params)
                assert conversation.status_code == 200, conversation.text
                seen[f"conversation {order['Id']}"] = conversation.json()
                options = await client.get(f"/v2/orders/{order['Id']}/messages/options", params=params)
                seen[f"options {order['Id']}"] = options.json()
        credentials = {"API_KEY": world["key"], "accountId": world["accounts"][0]}
        order, message = world["orders"][4], world["messages"]["attachment"]
        single = await client.get(f"/v2/orders/{order}/messages/{message}", params=credentials)
        seen["message"] = single.json()
        download = await client.get(f"/v2/orders/{order}/messages/{message}/attachment", params=credentials)
        assert download.status_code == 200, download.text
        seen["attachment"] = download.content
        seen["admin accounts"] = (await client.get("/admin/accounts", headers=ADMIN)).json()
    async with database.transaction() as connection:
        link = await get_link(connection, world["accounts"][0], database.token_cipher)
    seen["link"] = link
    return seen


async def row_counts(database: Database) -> dict[str, int]:
    async with database.transaction() as connection:
        return {
            table.name: (await connection.execute(select(func.count()).select_from(table))).scalar_one()
            for table in DATA_TABLES
        }


# --- the tests ------------------------------------------------------------------------------------


@pytest.fixture
async def filled_sqlite(tmp_path: Path) -> AsyncIterator[tuple[Database, dict[str, Any]]]:
    database = open_database(f"sqlite:///{tmp_path / 'embedded.db'}")
    await upgrade(database)
    try:
        yield database, await fill(database)
    finally:
        await database.dispose()


async def test_a_copy_to_postgresql_and_back_answers_the_same(
    filled_sqlite, postgres_url: str, tmp_path: Path
):
    source, world = filled_sqlite
    before = await answers(source, world)
    assert before["attachment"] == PDF
    assert before["link"].client_secret == "s3cret"
    statuses = {m["Id"]: m["Status"] for m in before[f"conversation {world['orders'][0]}"]["Results"]}
    assert statuses == {world["messages"]["sent"]: "sent"}

    postgres = open_database(postgres_url)
    back = open_database(f"sqlite:///{tmp_path / 'back.db'}")
    try:
        copied = await copy_database(source, postgres)
        assert copied == await row_counts(source)
        assert all(
            copied[name] > 0
            for name in (
                "accounts",
                "messages",
                "attachments",
                "delivery_attempts",
                "marketplace_links",
                "inbound_notifications",
                "worker_heartbeats",
            )
        )
        assert await answers(postgres, world) == before

        assert await copy_database(postgres, back) == copied
        assert await answers(back, world) == before

        for copy in (postgres, back):
            await assert_new_rows_get_new_ids(copy, world)
    finally:
        await postgres.dispose()
        await back.dispose()


async def assert_new_rows_get_new_ids(database: Database, world: dict[str, Any]) -> None:
    async with api(database) as client:
        response = await client.post("/admin/accounts", json={"Name": "Nueva"}, headers=ADMIN)
        assert response.status_code == 201, response.text
        assert response.json()["Id"] > max(world["accounts"])
        order = world["orders"][2]
        # The queued message is still in flight, so the conversation waits: a fresh order is used.
        orders = [{"ExternalOrderId": "2000000000999", "SiteId": "MLA", "LogisticType": "cross_docking"}]
        imported = await client.put(
            f"/admin/accounts/{world['accounts'][0]}/orders", json={"Orders": orders}, headers=ADMIN
        )
        assert imported.status_code == 200, imported.text
        new_order = imported.json()["Results"][0]["Id"]
        assert new_order > order
        message = await send(client, world["key"], world["accounts"][0], new_order)
        assert message > max(world["messages"].values())


async def test_a_target_that_holds_rows_is_refused_and_left_untouched(filled_sqlite, postgres_url: str):
    source, _world = filled_sqlite
    target = open_database(postgres_url)
    try:
        await upgrade(target)
        async with api(target) as client:
            assert (
                await client.post("/admin/accounts", json={"Name": "Ya"}, headers=ADMIN)
            ).status_code == 201
        before = await row_counts(target)
        with pytest.raises(PostventaError) as refused:
            await copy_database(source, target)
        assert refused.value.refusal.code == "target_not_empty"
        assert await row_counts(target) == before
    finally:
        await target.dispose()


async def one_account(url: str) -> None:
    database = open_database(url)
    try:
        await upgrade(database)
        async with database.transaction(write=True) as connection:
            await admin.create_account(connection, "Tienda", now())
    finally:
        await database.dispose()


def test_the_command_prints_the_counts_and_refuses_a_second_copy(tmp_path: Path, postgres_url: str):
    environment = {
        **os.environ,
        "POSTVENTA_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "POSTVENTA_TOKEN_KEY": TOKEN_KEY,
    }

    def postventa(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(POSTVENTA), *args], env=environment, capture_output=True, text=True, timeout=60
        )

    asyncio.run(one_account(environment["POSTVENTA_DATABASE_URL"]))
    first = postventa("db", "copy", "--to", postgres_url)
    assert first.returncode == 0, first.stderr
    counts = json.loads(first.stdout)["Copied"]
    assert list(counts) == [table.name for table in DATA_TABLES]
    assert counts["accounts"] == 1

    second = postventa("db", "copy", "--to", postgres_url)
    assert second.returncode == 2
    assert second.stdout == ""
    assert "target_not_empty" in second.stderr

    wrong = postventa("db", "copy", "--to", "mysql://somewhere/db")
    assert wrong.returncode == 2
    assert "invalid_database_url" in wrong.stderr
