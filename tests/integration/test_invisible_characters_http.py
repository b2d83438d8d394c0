"""Characters that hide or reorder text, over HTTP on both databases (docs/decisions.md, "Invisible
characters"): a message with a bidirectional control and a file name with any format character are
400 `invalid_characters` from every source (JSON, form, multipart, the `file` part's filename) and
store nothing; emoji made with a zero-width joiner are sent as written; and a name stored before the
rule downloads as it reads."""

from __future__ import annotations

import base64
from urllib.parse import unquote

import pytest
import sqlalchemy as sa

from postventa.store.tables import attachments
from tests.factories import make_order, make_tenant
from tests.integration.http_helpers import (
    PDF,
    answered_order,
    assert_accepted,
    assert_refused,
    conversation,
    messages_url,
)

RIGHT_TO_LEFT_OVERRIDE = "\u202e"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
HOW = ["json", "form", "multipart"]


async def post(client, tenant, order_id, how: str, **fields):
    body = tenant.credentials(**fields)
    if how == "json":
        return await client.post(messages_url(order_id), json=body)
    if how == "form":
        return await client.post(messages_url(order_id), data={k: str(v) for k, v in body.items()})
    return await client.post(messages_url(order_id), files={k: (None, str(v)) for k, v in body.items()})


@pytest.mark.parametrize("how", HOW)
async def test_a_message_with_a_right_to_left_override_is_refused(client, database, how):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await post(
        client,
        tenant,
        order_id,
        how,
        messageOptions=4,
        message=f"Tu factura: {RIGHT_TO_LEFT_OVERRIDE}fdp.exe",
    )

    body = assert_refused(response, 400, "invalid_characters")
    assert "U+202E" in body["Message"]
    assert "'message'" in body["Message"]
    assert await conversation(client, tenant, order_id) == []


@pytest.mark.parametrize("how", HOW)
async def test_an_emoji_with_zero_width_joiners_is_sent_as_written(client, database, how):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    text = f"¡Gracias por tu compra! {FAMILY}"

    assert_accepted(await post(client, tenant, order_id, how, messageOptions=4, message=text))

    [sent] = await conversation(client, tenant, order_id)
    assert sent["Text"] == text


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("name", [f"{RIGHT_TO_LEFT_OVERRIDE}exe", "fac\u200dtura", "fac\u200btura"])
async def test_a_document_name_with_a_format_character_is_refused(client, database, how, name):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)
    before = await conversation(client, tenant, order_id)

    response = await post(
        client,
        tenant,
        order_id,
        how,
        messageOptions=4,
        message="Te adjunto la factura",
        fileBase64=base64.b64encode(PDF).decode(),
        documentName=name,
        documentExtension="pdf",
    )

    body = assert_refused(response, 400, "invalid_characters")
    assert "'documentName'" in body["Message"]
    assert await conversation(client, tenant, order_id) == before


async def test_an_uploaded_file_named_with_an_override_is_refused(client, database):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)
    before = await conversation(client, tenant, order_id)

    response = await client.post(
        messages_url(order_id),
        params=tenant.credentials(messageOptions=4, message="Te adjunto la factura"),
        files={"file": (f"{RIGHT_TO_LEFT_OVERRIDE}exe.pdf", PDF, "application/pdf")},
    )

    assert "U+202E" in assert_refused(response, 400, "invalid_characters")["Message"]
    assert await conversation(client, tenant, order_id) == before


async def test_a_name_stored_with_an_override_downloads_as_it_reads(client, database):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)
    message_id = assert_accepted(
        await client.post(
            messages_url(order_id),
            params=tenant.credentials(messageOptions=4, message="Te adjunto la factura"),
            files={"file": ("factura.pdf", PDF, "application/pdf")},
        )
    )
    [attachment] = [
        m["Attachment"] for m in await conversation(client, tenant, order_id) if m["Id"] == message_id
    ]
    async with database.transaction(write=True) as connection:  # as a row written before the rule
        await connection.execute(
            sa.update(attachments)
            .where(attachments.c.account_id == tenant.account_id, attachments.c.name == attachment["Name"])
            .values(name=f"{RIGHT_TO_LEFT_OVERRIDE}exe")
        )

    response = await client.get(attachment["Url"], params=tenant.credentials())

    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert disposition == "attachment; filename=\"_exe.pdf\"; filename*=UTF-8''_exe.pdf"
    assert RIGHT_TO_LEFT_OVERRIDE not in unquote(disposition)
