"""The notification webhook trusts nothing it is told: Mercado Libre's notifications carry no
signature, so anyone may post one. Only well-formed notifications of known sellers are kept, and
keeping one only means re-reading its resource from Mercado Libre with that seller's token: a
notification naming another seller's message or order records nothing anywhere."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from postventa.meli.models import MeliMessage
from postventa.services.inbound import record_marketplace_message
from postventa.store.engine import Database
from postventa.store.tables import inbound_notifications
from tests.e2e.conftest import Seller, World, wait_for
from tests.e2e.test_inbound import inbound_texts, sent_order
from tests.factories import make_order, make_tenant, now
from tests.integration.http_helpers import assert_refused, conversation

WEBHOOK = "/webhooks/mercadolibre"
MAX_NOTIFICATION_BYTES = 16 * 1024


async def stored(database: Database, user_id: int) -> list[dict[str, Any]]:
    """The notifications kept for a seller id."""
    table = inbound_notifications
    async with database.transaction() as connection:
        rows = await connection.execute(select(table).where(table.c.user_id == user_id))
    return [dict(row._mapping) for row in rows]


def unknown_seller_id() -> int:
    return 2**62 + secrets.randbelow(2**40)


async def test_a_notification_of_an_unknown_seller_is_ignored_and_not_kept(world: World, database):
    user_id = unknown_seller_id()
    for body in (
        {"topic": "messages", "resource": "0123456789abcdef0123456789abcdef", "user_id": user_id},
        {"topic": "orders_v2", "resource": "/orders/2000001234", "user_id": str(user_id)},
        {"topic": "items", "resource": "/items/MLA1", "user_id": user_id},
    ):
        response = await world.api.post(WEBHOOK, json=body)

        assert response.status_code == 200, response.text
        assert response.json() == {"Status": 200, "Accepted": False}
    assert await stored(database, user_id) == []


async def test_a_topic_not_followed_is_ignored_for_a_known_seller(world: World, database):
    seller = await world.linked_seller()

    response = await world.api.post(
        WEBHOOK, json={"topic": "questions", "resource": "/questions/1", "user_id": seller.seller_id}
    )

    assert response.json() == {"Status": 200, "Accepted": False}
    assert await stored(database, seller.seller_id) == []


MALFORMED: list[Any] = [
    [],
    "messages",
    None,
    {"resource": "abc", "user_id": 1},
    {"topic": "", "resource": "abc", "user_id": 1},
    {"topic": 5, "resource": "abc", "user_id": 1},
    {"topic": "messages", "user_id": 1},
    {"topic": "messages", "resource": 123, "user_id": 1},
    {"topic": "messages", "resource": "", "user_id": 1},
    {"topic": "messages", "resource": "a" * 201, "user_id": 1},
    {"topic": "messages", "resource": "abc\n", "user_id": 1},
    {"topic": "messages", "resource": "abc"},
    {"topic": "messages", "resource": "abc", "user_id": "me"},
    {"topic": "messages", "resource": "abc", "user_id": 0},
    {"topic": "messages", "resource": "abc", "user_id": -1},
    {"topic": "messages", "resource": "abc", "user_id": True},
    {"topic": "messages", "resource": "abc", "user_id": 1.5},
    {"topic": "messages", "resource": "abc", "user_id": 2**63},
    {"topic": "messages", "resource": "abc", "user_id": "１２３"},
]


@pytest.mark.parametrize("body", MALFORMED, ids=[str(index) for index in range(len(MALFORMED))])
async def test_a_malformed_notification_is_400(world: World, body):
    document = json.dumps(body).encode()  # json=None would send no body at all
    response = await world.api.post(WEBHOOK, content=document, headers={"Content-Type": "application/json"})
    assert_refused(response, 400, "malformed_notification")


# Resources a forger might use to make postventa call some other Mercado Libre URL with a seller's
# token, or to overflow an id: none names exactly one message or order.
FORGED_RESOURCES = [
    ("messages", "../../users/me"),
    ("messages", "/messages/../../users/me"),
    ("messages", "..%2F..%2Fusers%2Fme"),
    ("messages", "abc?caller.id=1"),
    ("messages", "abc#fragment"),
    ("messages", "/messages/abc/def"),
    ("messages", "abc def"),
    ("messages", "a" * 65),
    ("messages", "https://evil.example/messages/abc"),
    ("messages", "０１２３"),
    ("orders_v2", "/orders/../users/me"),
    ("orders_v2", "/orders/123?x=1"),
    ("orders_v2", "/orders/" + "9" * 40),
    ("orders_v2", f"/orders/{2**63}"),
    ("orders_v2", "/orders/0"),
    ("orders_v2", "/orders/-1"),
    ("orders_v2", "/orders/１２３"),
    ("orders_v2", "123"),
    ("orders_v2", "/users/123"),
]


async def test_a_forged_resource_is_refused_kept_nowhere_and_never_fetched(world: World, database):
    seller = await world.linked_seller()
    mark = await world.journal_mark()

    for topic, resource in FORGED_RESOURCES:
        response = await world.api.post(
            WEBHOOK, json={"topic": topic, "resource": resource, "user_id": seller.seller_id}
        )
        assert_refused(response, 400, "malformed_notification")

    assert await stored(database, seller.seller_id) == []
    called = [entry["Path"] for entry in await world.journal(mark)]
    # The world is shared: other tests' sellers may still be polled meanwhile, and their orders
    # fetched (well-formed ids of 10 to 19 digits, which none of the forged resources is). Only
    # calls that can be this seller's count.
    ours = [
        path
        for path in called
        if _not_another_sellers(path, seller.seller_id) and not _another_tests_order(path)
    ]
    assert not [path for path in ours if path.startswith(("/messages", "/orders", "/users"))], called


def _another_tests_order(path: str) -> bool:
    found = re.fullmatch(r"/(?:orders|shipments)/(\d{10,19})", path)
    return found is not None and int(found.group(1)) < 2**63


def _not_another_sellers(path: str, seller_id: int) -> bool:
    named = re.search(r"/sellers/(\d+)", path)
    return named is None or int(named.group(1)) == seller_id


async def test_the_body_must_be_small_json(world: World):
    notification = {"topic": "messages", "resource": "abc", "user_id": unknown_seller_id()}
    padded = {**notification, "padding": "x" * MAX_NOTIFICATION_BYTES}

    assert_refused(await world.api.post(WEBHOOK, json=padded), 413, "request_too_large")

    async def chunks():
        yield b'{"topic": "messages", "padding": "'
        for _ in range(8):
            yield b"x" * 4096
        yield b'"}'

    chunked = await world.api.post(WEBHOOK, content=chunks(), headers={"Content-Type": "application/json"})
    assert_refused(chunked, 413, "request_too_large")
    assert_refused(
        await world.api.post(
            WEBHOOK, content=b'{"topic": "messages",', headers={"Content-Type": "application/json"}
        ),
        400,
        "malformed_json",
    )
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        response = await world.api.post(
            WEBHOOK, content=b"topic=messages", headers={"Content-Type": content_type}
        )
        assert_refused(response, 415, "unsupported_media_type")
    assert_refused(await world.api.post(WEBHOOK, content=b"{}"), 415, "unsupported_media_type")
    # Under the limit, the same notification is read.
    assert (await world.api.post(WEBHOOK, json=notification)).json()["Accepted"] is False


async def forged(world: World, seller: Seller, topic: str, resource: str) -> None:
    """A notification naming `seller`, sent by someone else."""
    response = await world.api.post(
        WEBHOOK, json={"topic": topic, "resource": resource, "user_id": seller.seller_id}
    )
    assert response.json() == {"Status": 200, "Accepted": True}


async def wait_processed(database: Database, seller: Seller, resource: str) -> dict[str, Any]:
    """The notification once processed (finished, not waiting for a retry)."""
    found: dict[str, Any] = {}

    async def processed() -> bool:
        rows = [row for row in await stored(database, seller.seller_id) if row["resource"] == resource]
        if rows and rows[0]["processed_at"] is not None:
            found.update(rows[0])
            return True
        return False

    await wait_for(processed)
    return found


async def test_a_notification_naming_another_sellers_message_records_nothing(world: World, database):
    a, b = await world.linked_seller(), await world.linked_seller()
    a_order, _ = await sent_order(world, a)
    b_order, b_conversation = await sent_order(world, b)
    secret = f"Dirección de B {uuid.uuid4().hex[:8]}"
    written = await world.meli.post(
        f"/_emulator/packs/{b_conversation}/buyer-messages", json={"Text": secret}
    )
    b_message = written.json()["MessageId"]

    async def b_recorded() -> bool:  # B's own notification, from Mercado Libre
        return await inbound_texts(world, b, b_order) == [secret]

    await wait_for(b_recorded)
    mark = await world.journal_mark()

    await forged(world, a, "messages", b_message)
    notification = await wait_processed(database, a, b_message)

    # Read with A's token, Mercado Libre refuses: final at once, never retried. (B's own
    # notification may be read after the mark, with B's token, if the poll recorded the message first.)
    reads = [e for e in await world.journal(mark) if e["Path"] == f"/messages/{b_message}"]
    assert [entry["Status"] for entry in reads if entry["SellerId"] == a.seller_id] == [403]
    assert notification["attempts"] == 1
    assert notification["last_error"]
    assert await inbound_texts(world, a, a_order) == []
    assert await inbound_texts(world, b, b_order) == [secret]
    a_orders = (await world.api.get("/v2/orders", params=a.credentials(limit=1000))).json()["Results"]
    assert secret not in str(a_orders)


async def test_a_notification_naming_another_sellers_order_imports_nothing(world: World, database):
    a, b = await world.linked_seller(), await world.linked_seller()
    b_order = await world.emulator_order(b)
    mark = await world.journal_mark()

    await forged(world, a, "orders_v2", f"/orders/{b_order['OrderId']}")
    await wait_processed(database, a, f"/orders/{b_order['OrderId']}")

    reads = [e for e in await world.journal(mark) if e["Path"] == f"/orders/{b_order['OrderId']}"]
    assert [entry["Status"] for entry in reads if entry["SellerId"] == a.seller_id] == [403]
    a_orders = (await world.api.get("/v2/orders", params=a.credentials(limit=1000))).json()["Results"]
    assert str(b_order["OrderId"]) not in [order["ExternalOrderId"] for order in a_orders]


async def test_a_message_of_another_sellers_conversation_is_never_recorded(world: World, database):
    """Even if Mercado Libre answered a message the seller is no party to, it is not recorded:
    the processor checks the message is from or to the account's seller, in a pack of the account."""
    tenant = await make_tenant(database, name="Processor")
    pack_id = 7_000_000_000 + secrets.randbelow(10**9)
    order_id = await make_order(database, tenant, PackId=pack_id)
    seller_id, buyer_id, other_seller_id = 1001, 2002, 3003

    def message(to_user_id: int) -> MeliMessage:
        return MeliMessage(
            id=uuid.uuid4().hex,
            from_user_id=buyer_id,
            to_user_id=to_user_id,
            status="available",
            text=f"para {to_user_id}",
            moderation_status=None,
            moderation_reason=None,
            pack_id=pack_id,
            created_at=now(),
        )

    async with database.transaction(write=True) as connection:
        for to_user_id in (other_seller_id, seller_id):
            assert await record_marketplace_message(
                connection, tenant.account_id, seller_id, message(to_user_id), now()
            )

    texts = [
        m["Text"] for m in await conversation(world.api, tenant, order_id) if m["Direction"] == "inbound"
    ]
    assert texts == [f"para {seller_id}"]
