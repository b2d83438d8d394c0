"""The inbound processor against a scripted Mercado Libre, on both databases: a seller message found on
Mercado Libre while a postventa message of its conversation is in flight is not recorded (by the poll
or by a notification) until that message settles; a deleted message's notification is done at once."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from postventa.delivery.inbound import InboundProcessor
from postventa.domain.sites import Site
from postventa.meli.client import MeliClient
from postventa.store import inbound as inbound_store
from postventa.store import links as link_store
from postventa.store.tables import inbound_notifications, messages
from tests.factories import make_order, make_tenant, now
from tests.integration.test_inbound_observed import postventa_message, set_status
from tests.meli_transport import Request, ScriptedTransport, reply

BUYER = 2_000_002


@pytest.fixture
def database(isolated_database):
    """The poll takes the most recent conversations of the whole database: these tests get their own."""
    return isolated_database


async def linked_order(database) -> tuple[Any, int, int, int]:
    """A tenant linked to a seller (with a valid access token), an order of a pack: (tenant, order
    id, pack id, seller id)."""
    tenant = await make_tenant(database, name="Processor")
    seller_id = 5_000_000_000 + secrets.randbelow(10**9)
    link = link_store.MarketplaceLink(
        account_id=tenant.account_id,
        seller_id=seller_id,
        site=Site.MLA,
        client_id=f"app-{seller_id}",
        client_secret="secret",
        refresh_token="refresh",
        access_token="access",
        access_token_expires_at=now() + dt.timedelta(hours=6),
    )
    async with database.transaction(write=True) as connection:
        await link_store.save_link(connection, link, now(), database.token_cipher)
    pack_id = 8_000_000_000 + secrets.randbelow(10**9)
    order_id = await make_order(database, tenant, PackId=pack_id, Buyer={"Code": str(BUYER), "Nickname": "B"})
    return tenant, order_id, pack_id, seller_id


def message_json(message_id: str, pack_id: int, seller_id: int, text: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "from": {"user_id": seller_id},
        "to": {"user_id": BUYER},
        "status": "available",
        "text": text,
        "message_date": {"created": now().isoformat()},
        "message_moderation": {"status": "clean"},
        "message_resources": [{"id": str(pack_id), "name": "packs"}],
    }


def mercado_libre(conversation: list[dict[str, Any]], *, gone: set[str] = frozenset()) -> ScriptedTransport:
    """Answers conversation reads with `conversation`, message reads from it (404 for `gone`)."""

    def answer(request: Request):
        if "/messages/packs/" in request.url:
            return reply(
                200,
                {
                    "paging": {"total": len(conversation), "offset": 0, "limit": 50},
                    "conversation_status": {"path": "/packs/1/sellers/2", "status": "active"},
                    "messages": conversation,
                },
            )
        message_id = request.url.rsplit("/", 1)[-1]
        if message_id in gone:
            return reply(404, {"message": f"The message with id: {message_id} could not be retrieved"})
        for message in conversation:
            if message["id"] == message_id:
                return reply(200, {"paging": None, "conversation_status": None, "messages": [message]})
        return reply(404, {"message": "not found"})

    return ScriptedTransport(default=answer)


async def outbound(database, order_id: int) -> list[Any]:
    async with database.transaction() as connection:
        result = await connection.execute(
            select(messages).where(messages.c.order_id == order_id, messages.c.direction == "outbound")
        )
        return list(result)


async def notification(database, resource: str, user_id: int) -> Any:
    async with database.transaction() as connection:
        return (
            await connection.execute(
                select(inbound_notifications).where(
                    inbound_notifications.c.resource == resource, inbound_notifications.c.user_id == user_id
                )
            )
        ).one()


async def test_the_poll_leaves_a_seller_message_alone_while_ours_is_in_flight(database):
    _tenant, order_id, pack_id, seller_id = await linked_order(database)
    await postventa_message(database, order_id, status="sent", marketplace_id=uuid.uuid4().hex)
    ours = await postventa_message(database, order_id, status="sending")
    found_id = uuid.uuid4().hex
    transport = mercado_libre([message_json(found_id, pack_id, seller_id, "Hola desde postventa")])
    processor = InboundProcessor(database, MeliClient("http://meli.test", transport=transport))

    await processor.poll_conversations()
    assert found_id not in {row.marketplace_message_id for row in await outbound(database, order_id)}
    assert any("/messages/packs/" in request.url for request in transport.requests)

    await set_status(database, ours, "queued")  # an unknown outcome: the worker reconciles first
    await processor.poll_conversations()
    assert found_id not in {row.marketplace_message_id for row in await outbound(database, order_id)}

    await set_status(database, ours, "failed")  # settled, and not that message: another's
    await processor.poll_conversations()
    recorded = [row for row in await outbound(database, order_id) if row.marketplace_message_id == found_id]
    assert [(row.source, row.author, row.status) for row in recorded] == [("marketplace", "seller", "sent")]


async def test_a_notification_of_such_a_message_is_tried_again_later(database):
    _tenant, order_id, pack_id, seller_id = await linked_order(database)
    ours = await postventa_message(database, order_id, status="sending")
    found_id = uuid.uuid4().hex
    transport = mercado_libre([message_json(found_id, pack_id, seller_id, "Hola")])
    processor = InboundProcessor(database, MeliClient("http://meli.test", transport=transport))
    async with database.transaction(write=True) as connection:
        await inbound_store.save_notification(connection, "messages", found_id, seller_id, now())

    await processor.process_due()
    row = await notification(database, found_id, seller_id)
    assert row.processed_at is None
    assert row.next_attempt_at > now()
    assert "being delivered" in row.last_error
    assert found_id not in {r.marketplace_message_id for r in await outbound(database, order_id)}

    # Ours was that message after all: the worker records it under this id; the retry finds it known.
    async with database.transaction(write=True) as connection:
        await connection.execute(
            messages.update()
            .where(messages.c.id == ours)
            .values(status="sent", marketplace_message_id=found_id, sent_at=now())
        )
    async with database.transaction(write=True) as connection:
        await connection.execute(
            inbound_notifications.update()
            .where(inbound_notifications.c.id == row.id)
            .values(next_attempt_at=now())
        )
    await processor.process_due()
    row = await notification(database, found_id, seller_id)
    assert row.processed_at is not None
    assert row.last_error is None
    assert [(r.id, r.source) for r in await outbound(database, order_id)] == [(ours, "postventa")]


async def test_a_deleted_messages_notification_is_done_at_once(database):
    _tenant, _order_id, _pack_id, seller_id = await linked_order(database)
    gone_id = uuid.uuid4().hex
    processor = InboundProcessor(
        database, MeliClient("http://meli.test", transport=mercado_libre([], gone={gone_id}))
    )
    async with database.transaction(write=True) as connection:
        await inbound_store.save_notification(connection, "messages", gone_id, seller_id, now())
    await processor.process_due()
    row = await notification(database, gone_id, seller_id)
    assert row.processed_at is not None
    assert row.attempts == 1
    assert "could not be retrieved" in row.last_error


async def test_a_message_that_cannot_be_kept_does_not_stop_the_poll(database):
    _tenant, order_id, pack_id, seller_id = await linked_order(database)
    await postventa_message(database, order_id, status="sent", marketplace_id=uuid.uuid4().hex)
    too_long = {**message_json(uuid.uuid4().hex, pack_id, BUYER, "x" * 3501), "to": {"user_id": seller_id}}
    fine = {**message_json(uuid.uuid4().hex, pack_id, BUYER, "Gracias"), "to": {"user_id": seller_id}}
    transport = mercado_libre([too_long, fine])
    processor = InboundProcessor(database, MeliClient("http://meli.test", transport=transport))

    await processor.poll_conversations()
    async with database.transaction() as connection:
        inbound = (
            await connection.execute(
                select(messages.c.text).where(
                    messages.c.order_id == order_id, messages.c.direction == "inbound"
                )
            )
        ).all()
    assert [row.text for row in inbound] == ["Gracias"]


async def test_the_webhook_takes_notifications_keyed_id_or_the_older_id_with_read_actions(client, database):
    _tenant, _order_id, _pack_id, seller_id = await linked_order(database)
    for key, resource, actions in (
        ("id", uuid.uuid4().hex, ["read"]),
        ("_id", uuid.uuid4().hex, ["created"]),
    ):
        payload = {key: "5e2827f2-aaaa", "resource": resource, "user_id": seller_id, "topic": "messages"}
        answer = await client.post("/webhooks/mercadolibre", json={**payload, "actions": actions})
        assert (answer.status_code, answer.json()["Accepted"]) == (200, True)
        row = await notification(database, resource, seller_id)
        assert (row.topic, row.processed_at) == ("messages", None)
