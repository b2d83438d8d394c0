"""Messages read from Mercado Libre, recorded as they are there (services/inbound.py), on both
databases: late moderation verdicts, read times, the AI agent, seller messages written outside
postventa (never while a postventa message of the conversation is in flight), and what reads show."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

from sqlalchemy import select, update

from postventa.domain.inbound import AGENT_IDS_BY_SITE
from postventa.meli.models import parse_message
from postventa.services.inbound import Recorded, observe_message
from postventa.store.tables import conversations, messages, orders
from tests.factories import make_order, make_tenant, now

SELLER, BUYER = 1_000_001, 2_000_002


def meli_message(
    pack_id: int,
    *,
    from_user: int,
    to_user: int,
    text: str = "Hola",
    status: str = "available",
    moderation: str = "clean",
    reason: str | None = None,
    read: str | None = None,
    message_id: str | None = None,
) -> Any:
    """A message as Mercado Libre's conversation read shows it."""
    return parse_message(
        {
            "id": message_id or uuid.uuid4().hex,
            "from": {"user_id": from_user},
            "to": {"user_id": to_user},
            "status": status,
            "text": text,
            "message_date": {"created": "2026-12-04T10:00:00.000Z", "read": read},
            "message_moderation": {"status": moderation, "reason": reason},
            "message_resources": [
                {"id": str(pack_id), "name": "packs"},
                {"id": str(SELLER), "name": "sellers"},
            ],
        }
    )


async def order_with_pack(database) -> tuple[Any, int, int]:
    tenant = await make_tenant(database, name="Observed")
    pack_id = 8_000_000_000 + secrets.randbelow(10**9)
    order_id = await make_order(database, tenant, PackId=pack_id, Buyer={"Code": str(BUYER), "Nickname": "B"})
    return tenant, order_id, pack_id


async def observe(database, tenant, message, **extra) -> Recorded:
    async with database.transaction(write=True) as connection:
        return await observe_message(connection, tenant.account_id, SELLER, message, now(), **extra)


async def rows(database, order_id: int) -> list[Any]:
    async with database.transaction() as connection:
        result = await connection.execute(
            select(messages).where(messages.c.order_id == order_id).order_by(messages.c.conversation_sequence)
        )
        return list(result)


async def postventa_message(
    database, order_id: int, *, status: str, marketplace_id: str | None = None
) -> int:
    """A seller message of postventa in the given delivery status (as the worker leaves it)."""
    async with database.transaction(write=True) as connection:
        order = (await connection.execute(select(orders).where(orders.c.id == order_id))).one()
        count = (
            await connection.execute(
                select(conversations.c.message_count).where(conversations.c.id == order.conversation_id)
            )
        ).scalar_one()
        await connection.execute(
            update(conversations)
            .where(conversations.c.id == order.conversation_id)
            .values(message_count=count + 1)
        )
        at = now()
        result = await connection.execute(
            messages.insert()
            .values(
                account_id=order.account_id,
                conversation_id=order.conversation_id,
                conversation_sequence=count + 1,
                order_id=order_id,
                direction="outbound",
                reason=4,
                text="Hola desde postventa",
                status=status,
                created_at=at,
                status_changed_at=at,
                sent_at=at if status in ("sent", "pending_moderation") else None,
                marketplace_message_id=marketplace_id,
            )
            .returning(messages.c.id)
        )
        return int(result.scalar_one())


async def set_status(database, message_id: int, status: str) -> None:
    async with database.transaction(write=True) as connection:
        await connection.execute(update(messages).where(messages.c.id == message_id).values(status=status))


async def test_a_seller_message_from_the_seller_center_waits_while_a_postventa_message_is_in_flight(
    database,
):
    tenant, order_id, pack_id = await order_with_pack(database)
    ours = await postventa_message(database, order_id, status="sending")
    foreign = meli_message(pack_id, from_user=SELLER, to_user=BUYER, text="Escrito en el seller center")

    # It may be ours, delivered but not yet recorded: not recorded as another's.
    assert await observe(database, tenant, foreign) is Recorded.IN_FLIGHT
    await set_status(database, ours, "queued")  # a retry that must reconcile first: still in flight
    assert await observe(database, tenant, foreign) is Recorded.IN_FLIGHT
    assert [row.id for row in await rows(database, order_id)] == [ours]

    await set_status(database, ours, "sent")  # ours settled under its own id: this one is another's
    assert await observe(database, tenant, foreign) is Recorded.DONE
    recorded = (await rows(database, order_id))[-1]
    assert (recorded.direction, recorded.status, recorded.source, recorded.author) == (
        "outbound",
        "sent",
        "marketplace",
        "seller",
    )
    assert (recorded.marketplace_message_id, recorded.text) == (foreign.id, "Escrito en el seller center")
    assert await observe(database, tenant, foreign) is Recorded.DONE  # once
    assert len(await rows(database, order_id)) == 2


async def test_a_moderated_seller_center_message_is_recorded_moderated(database):
    tenant, order_id, pack_id = await order_with_pack(database)
    foreign = meli_message(
        pack_id,
        from_user=SELLER,
        to_user=BUYER,
        status="moderated",
        moderation="rejected",
        reason="personal_data",
    )
    assert await observe(database, tenant, foreign) is Recorded.DONE
    (recorded,) = await rows(database, order_id)
    assert (recorded.status, recorded.moderation_reason, recorded.source) == (
        "moderated",
        "PERSONAL_DATA",
        "marketplace",
    )


async def test_late_verdicts_move_pending_and_sent_messages(database):
    tenant, order_id, pack_id = await order_with_pack(database)
    pending_id, sent_id = uuid.uuid4().hex, uuid.uuid4().hex
    pending = await postventa_message(
        database, order_id, status="pending_moderation", marketplace_id=pending_id
    )
    sent = await postventa_message(database, order_id, status="sent", marketplace_id=sent_id)

    still = meli_message(
        pack_id,
        from_user=SELLER,
        to_user=BUYER,
        status="pending",
        moderation="pending",
        message_id=pending_id,
    )
    assert await observe(database, tenant, still) is Recorded.DONE
    assert {row.id: row.status for row in await rows(database, order_id)}[pending] == "pending_moderation"

    clean = meli_message(pack_id, from_user=SELLER, to_user=BUYER, message_id=pending_id)
    rejected = meli_message(
        pack_id,
        from_user=SELLER,
        to_user=BUYER,
        status="moderated",
        moderation="rejected",
        reason="AUTOMATIC_MESSAGE",
        message_id=sent_id,
    )
    assert await observe(database, tenant, clean) is Recorded.DONE
    assert await observe(database, tenant, rejected) is Recorded.DONE
    by_id = {row.id: row for row in await rows(database, order_id)}
    assert by_id[pending].status == "sent"
    assert (by_id[sent].status, by_id[sent].moderation_reason) == ("moderated", "AUTOMATIC_MESSAGE")
    assert len(by_id) == 2  # known messages are updated, never recorded again


async def test_the_read_time_of_a_seller_message_is_kept(database):
    tenant, order_id, pack_id = await order_with_pack(database)
    marketplace_id = uuid.uuid4().hex
    ours = await postventa_message(database, order_id, status="sent", marketplace_id=marketplace_id)
    read = meli_message(
        pack_id, from_user=SELLER, to_user=BUYER, read="2026-12-04T11:30:00.000Z", message_id=marketplace_id
    )
    assert await observe(database, tenant, read) is Recorded.DONE
    (row,) = await rows(database, order_id)
    assert row.id == ours
    assert row.read_at == dt.datetime(2026, 12, 4, 11, 30, tzinfo=dt.UTC)
    assert row.status == "sent"


async def test_an_agent_message_is_inbound_by_the_agent_and_the_conversation_keeps_its_agent(database):
    tenant, order_id, pack_id = await order_with_pack(database)
    agent = AGENT_IDS_BY_SITE["MLA"]
    buyer = meli_message(pack_id, from_user=BUYER, to_user=SELLER, text="Hola")
    from_agent = meli_message(pack_id, from_user=agent, to_user=SELLER, text="Soy el asistente")
    assert await observe(database, tenant, buyer) is Recorded.DONE
    assert await observe(database, tenant, from_agent) is Recorded.DONE
    recorded = await rows(database, order_id)
    assert [(row.direction, row.author, row.source, row.status) for row in recorded] == [
        ("inbound", "buyer", "marketplace", "received"),
        ("inbound", "agent", "marketplace", "received"),
    ]
    async with database.transaction() as connection:
        conversation_id = recorded[0].conversation_id
        saved = (
            await connection.execute(
                select(conversations.c.agent_user_id).where(conversations.c.id == conversation_id)
            )
        ).scalar_one()
    assert saved == agent


async def test_a_message_of_an_unknown_conversation_waits_for_its_order(database):
    tenant, _order_id, _pack_id = await order_with_pack(database)
    elsewhere = meli_message(9_999_999_999, from_user=BUYER, to_user=SELLER)
    assert await observe(database, tenant, elsewhere) is Recorded.NO_ORDER


async def test_reads_show_source_author_and_read_time(client, database):
    tenant, order_id, pack_id = await order_with_pack(database)
    marketplace_id = uuid.uuid4().hex
    ours = await postventa_message(
        database, order_id, status="pending_moderation", marketplace_id=marketplace_id
    )
    await observe(
        database,
        tenant,
        meli_message(
            pack_id,
            from_user=SELLER,
            to_user=BUYER,
            status="pending",
            moderation="pending",
            read="2026-12-04T12:00:00.000Z",
            message_id=marketplace_id,
        ),
    )
    await observe(
        database,
        tenant,
        meli_message(pack_id, from_user=AGENT_IDS_BY_SITE["MLA"], to_user=SELLER, text="Agente"),
    )
    # The agent's message lets the seller answer, as a buyer's would.
    before = (await client.get(f"/v2/orders/{order_id}/messages/options", params=tenant.credentials())).json()
    answerable = {option["Reason"]["Key"] for option in before["Results"] if option["Available"]}
    assert answerable
    await observe(
        database,
        tenant,
        meli_message(pack_id, from_user=SELLER, to_user=BUYER, text="Desde el seller center"),
    )

    listed = (await client.get(f"/v2/orders/{order_id}/messages", params=tenant.credentials())).json()[
        "Results"
    ]
    shown = [(m["Direction"], m["Status"], m["Source"], m["Author"], m["ReadAt"]) for m in listed]
    assert shown == [
        ("outbound", "pending_moderation", "postventa", "seller", "2026-12-04T12:00:00Z"),
        ("inbound", "received", "marketplace", "agent", None),
        ("outbound", "sent", "marketplace", "seller", None),
    ]
    one = (await client.get(f"/v2/orders/{order_id}/messages/{ours}", params=tenant.credentials())).json()
    assert (one["Source"], one["Author"], one["ReadAt"], one["Status"]) == (
        "postventa",
        "seller",
        "2026-12-04T12:00:00Z",
        "pending_moderation",
    )
    # The seller-center message is the seller's last word: the conversation waits for the buyer.
    options = (
        await client.get(f"/v2/orders/{order_id}/messages/options", params=tenant.credentials())
    ).json()
    codes = {option["Reason"]["Key"]: option["Code"] for option in options["Results"]}
    assert {codes[key] for key in answerable} == {"awaiting_buyer_reply"}
