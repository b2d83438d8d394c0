"""Contract §3.5 conversation rules over HTTP: a reply unlocks the seller, attachments only after an
answered plain message, the reason lock after an attachment, and pack-mates sharing one conversation."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import admin_headers
from tests.factories import buyer_replies, make_order, make_tenant
from tests.integration.http_helpers import (
    PDF,
    answered_order,
    assert_accepted,
    assert_refused,
    conversation,
    messages_url,
    send,
)

OTHER = {"messageOptions": 4, "message": "Hola"}


async def send_pdf(client, tenant, order_id, *, reason: int | str = 4, how: str = "multipart"):
    params = tenant.credentials(messageOptions=reason, message="Adjunto el comprobante")
    if how == "multipart":
        return await client.post(
            messages_url(order_id), params=params, files={"file": ("comprobante.pdf", PDF, "application/pdf")}
        )
    body = {
        **params,
        "fileBase64": base64.b64encode(PDF).decode(),
        "documentName": "c",
        "documentExtension": "pdf",
    }
    return await client.post(messages_url(order_id), json=body)


def directions(messages) -> list[str]:
    return [m["Direction"] for m in messages]


# --- a reply unlocks the next message -------------------------------------------------------------


async def test_each_seller_message_waits_for_a_reply(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    for round_number in range(3):
        assert_accepted(
            await send(client, tenant, order_id, messageOptions=4, message=f"Mensaje {round_number}")
        )
        assert_refused(await send(client, tenant, order_id, **OTHER), 409, "awaiting_buyer_reply")
        await buyer_replies(database, order_id, f"Respuesta {round_number}")

    messages = await conversation(client, tenant, order_id)
    assert directions(messages) == ["outbound", "inbound"] * 3
    assert [m["Text"] for m in messages] == [
        "Mensaje 0",
        "Respuesta 0",
        "Mensaje 1",
        "Respuesta 1",
        "Mensaje 2",
        "Respuesta 2",
    ]
    assert [m["Status"] for m in messages] == ["queued", "received"] * 3
    assert [m["Reason"] for m in messages[1::2]] == [None] * 3


async def test_reply_through_the_admin_api_unlocks(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    assert_accepted(await send(client, tenant, order_id, **OTHER))

    reply = await client.post(
        f"/admin/orders/{order_id}/buyer-messages", json={"Text": "Sí, todo bien"}, headers=admin_headers()
    )

    assert reply.status_code == 201
    assert isinstance(reply.json()["Id"], int)
    assert_accepted(await send(client, tenant, order_id, **OTHER))


async def test_a_buyer_message_before_any_seller_message_does_not_block(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    await buyer_replies(database, order_id, "¿Cuándo llega?")

    assert_accepted(await send(client, tenant, order_id, **OTHER))
    assert_refused(await send(client, tenant, order_id, **OTHER), 409, "awaiting_buyer_reply")


async def test_two_replies_unlock_one_message(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    assert_accepted(await send(client, tenant, order_id, **OTHER))
    await buyer_replies(database, order_id, "uno")
    await buyer_replies(database, order_id, "dos")

    assert_accepted(await send(client, tenant, order_id, **OTHER))
    assert_refused(await send(client, tenant, order_id, **OTHER), 409, "awaiting_buyer_reply")


# --- attachments only after an answered plain message ---------------------------------------------


@pytest.mark.parametrize("how", ["multipart", "base64"])
async def test_attachment_needs_an_answered_plain_message(client, database, how):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    assert_refused(
        await send_pdf(client, tenant, order_id, how=how), 409, "attachment_requires_answered_message"
    )
    assert await conversation(client, tenant, order_id) == []

    assert_accepted(await send(client, tenant, order_id, **OTHER))
    assert_refused(await send_pdf(client, tenant, order_id, how=how), 409, "awaiting_buyer_reply")

    await buyer_replies(database, order_id)
    message_id = assert_accepted(await send_pdf(client, tenant, order_id, how=how))

    messages = await conversation(client, tenant, order_id)
    assert [m["Attachment"] is not None for m in messages] == [False, False, True]
    assert messages[-1]["Id"] == message_id


async def test_a_buyer_message_alone_does_not_allow_an_attachment(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    await buyer_replies(database, order_id, "Hola vendedor")

    assert_refused(await send_pdf(client, tenant, order_id), 409, "attachment_requires_answered_message")


async def test_attachments_keep_flowing_after_each_reply(client, database):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)

    for _ in range(2):
        assert_accepted(await send_pdf(client, tenant, order_id))
        assert_refused(await send_pdf(client, tenant, order_id), 409, "awaiting_buyer_reply")
        await buyer_replies(database, order_id)

    assert [m["Attachment"] is not None for m in await conversation(client, tenant, order_id)] == [
        False,
        False,
        True,
        False,
        True,
        False,
    ]


# --- after an attachment, the same reason ---------------------------------------------------------


async def test_reason_locked_by_an_attachment(client, database):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant, SiteId="MLM")
    assert_accepted(await send_pdf(client, tenant, order_id, reason="OTHER"))
    await buyer_replies(database, order_id)

    assert_refused(
        await send(client, tenant, order_id, messageOptions=3, message="https://f.test/1"),
        409,
        "reason_locked_by_attachment",
    )
    body = assert_refused(
        await send(client, tenant, order_id, messageOptions=2), 409, "reason_locked_by_attachment"
    )
    assert "OTHER" in body["Message"]
    assert_accepted(
        await send(client, tenant, order_id, messageOptions=4, message="Sin adjunto, mismo motivo")
    )
    await buyer_replies(database, order_id)

    # The lock stays after later messages without attachment.
    assert_refused(
        await send(client, tenant, order_id, messageOptions=3, message="https://f.test/2"),
        409,
        "reason_locked_by_attachment",
    )


async def test_the_latest_attachment_sets_the_reason(client, database):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant, SiteId="MLM")
    assert_accepted(await send_pdf(client, tenant, order_id, reason=3))
    await buyer_replies(database, order_id)

    assert_refused(await send(client, tenant, order_id, **OTHER), 409, "reason_locked_by_attachment")
    assert_refused(await send_pdf(client, tenant, order_id, reason=4), 409, "reason_locked_by_attachment")
    assert_accepted(await send_pdf(client, tenant, order_id, reason="send_invoice_link"))
    await buyer_replies(database, order_id)

    messages = await conversation(client, tenant, order_id)
    assert [m["Reason"]["Key"] for m in messages if m["Direction"] == "outbound"] == [4, 3, 3]


async def test_conversation_state_comes_after_the_parameters(client, database):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)
    assert_accepted(await send_pdf(client, tenant, order_id))
    await buyer_replies(database, order_id)

    assert_refused(
        await send(client, tenant, order_id, messageOptions=2, message="x" * 10),
        409,
        "reason_locked_by_attachment",
    )
    assert_refused(await send(client, tenant, order_id, messageOptions=3), 400, "message_missing")
    assert_refused(
        await send(client, tenant, order_id, messageOptions=3, message="x"),
        412,
        "reason_not_available_in_country",
    )


# --- pack-mates share one conversation ------------------------------------------------------------


async def test_pack_mates_share_one_conversation(client, database):
    tenant = await make_tenant(database)
    pack = 2_000_000_000_000 + tenant.account_id
    first = await make_order(database, tenant, PackId=pack)
    second = await make_order(database, tenant, PackId=pack)
    alone = await make_order(database, tenant)

    message_id = assert_accepted(
        await send(client, tenant, first, messageOptions=4, message="Para todo el carrito")
    )

    seen_from_second = await conversation(client, tenant, second)
    assert [(m["Id"], m["OrderId"], m["Text"]) for m in seen_from_second] == [
        (message_id, first, "Para todo el carrito")
    ]
    whole = (await client.get(messages_url(second), params=tenant.credentials())).json()
    assert (whole["OrderId"], whole["PackId"], whole["Total"]) == (second, pack, 1)
    one = await client.get(f"{messages_url(second)}/{message_id}", params=tenant.credentials())
    assert one.status_code == 200
    assert one.json()["OrderId"] == first

    assert_refused(await send(client, tenant, second, **OTHER), 409, "awaiting_buyer_reply")
    assert_accepted(await send(client, tenant, alone, **OTHER))  # another conversation

    await buyer_replies(database, second, "Respondo desde la otra orden")
    assert_accepted(await send_pdf(client, tenant, second))  # answered plain message of the pack
    await buyer_replies(database, first)
    assert_refused(await send(client, tenant, first, messageOptions=2), 409, "reason_locked_by_attachment")

    from_first, from_second = (
        await conversation(client, tenant, first),
        await conversation(client, tenant, second),
    )
    for message in (*from_first, *from_second):
        if message["Attachment"]:
            download = await client.get(message["Attachment"].pop("Url"), params=tenant.credentials())
            assert download.status_code == 200
            assert download.content == PDF
    assert from_first == from_second
    assert [m["OrderId"] for m in await conversation(client, tenant, first)] == [first, second, second, first]


async def test_pack_mates_keep_their_own_preconditions(client, database):
    tenant = await make_tenant(database)
    pack = 3_000_000_000_000 + tenant.account_id
    live = await make_order(database, tenant, PackId=pack)
    cancelled = await make_order(database, tenant, PackId=pack, Status=90)

    assert_refused(await send(client, tenant, cancelled, **OTHER), 412, "order_cancelled")
    assert_accepted(await send(client, tenant, live, **OTHER))
    assert len(await conversation(client, tenant, cancelled)) == 1


async def test_order_moved_into_a_pack_joins_its_conversation(client, database):
    tenant = await make_tenant(database)
    pack = 4_000_000_000_000 + tenant.account_id
    first = await make_order(database, tenant, PackId=pack)
    assert_accepted(await send(client, tenant, first, **OTHER))
    await make_order(database, tenant, ExternalOrderId=f"JOIN-{tenant.account_id}")
    joined = await make_order(database, tenant, ExternalOrderId=f"JOIN-{tenant.account_id}", PackId=pack)

    assert_refused(await send(client, tenant, joined, **OTHER), 409, "awaiting_buyer_reply")
