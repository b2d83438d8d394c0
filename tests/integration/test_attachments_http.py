"""Contract §3.4 over HTTP: attachments by multipart `file` and by fileBase64 + documentName +
documentExtension, every refusal with its code, the size limit, and the download of the exact bytes."""

from __future__ import annotations

import base64

import pytest

from tests.factories import make_order, make_tenant
from tests.integration.http_helpers import (
    JPG,
    PDF,
    PNG,
    TXT,
    answered_order,
    assert_accepted,
    assert_refused,
    conversation,
    custom_client,
    messages_url,
    send,
)

TEXT = {"messageOptions": 4, "message": "Te adjunto la factura"}
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "txt": "text/plain; charset=utf-8",
}


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


async def post_file(client, tenant, order_id, file_name: str, content: bytes, **extra):
    return await client.post(
        messages_url(order_id),
        params=tenant.credentials(**TEXT),
        data={k: str(v) for k, v in extra.items()},
        files={"file": (file_name, content, "application/octet-stream")},
    )


async def post_base64(client, tenant, order_id, how: str, **fields):
    body = tenant.credentials(**TEXT, **fields)
    if how == "json":
        return await client.post(messages_url(order_id), json=body)
    if how == "form":
        return await client.post(messages_url(order_id), data={k: str(v) for k, v in body.items()})
    if how == "multipart":
        return await client.post(messages_url(order_id), files={k: (None, str(v)) for k, v in body.items()})
    raise AssertionError(how)


async def assert_download(
    client, tenant, order_id, message_id, content: bytes, extension: str, file_name: str
):
    response = await client.get(
        f"/v2/orders/{order_id}/messages/{message_id}/attachment", params=tenant.credentials()
    )
    assert response.status_code == 200, response.text
    assert response.content == content
    assert response.headers["content-type"] == CONTENT_TYPES[extension]
    assert file_name in response.headers["content-disposition"]
    assert response.headers["x-content-type-options"] == "nosniff"


# --- accepted attachments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "content", "name", "extension"),
    [
        ("factura.pdf", PDF, "factura", "pdf"),
        ("FACTURA.PDF", PDF, "FACTURA", "pdf"),
        ("foto producto.png", PNG, "foto producto", "png"),
        ("foto.jpg", JPG, "foto", "jpg"),
        ("foto.JPEG", JPG, "foto", "jpeg"),
        ("nota.txt", TXT, "nota", "txt"),
        ("factura.v2.pdf", PDF, "factura.v2", "pdf"),
        ("niño.txt", b"\xef\xbb\xbfhola\r\n", "niño", "txt"),
    ],
)
async def test_multipart_file_is_stored_shown_and_downloaded(
    client, database, file_name, content, name, extension
):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)

    message_id = assert_accepted(await post_file(client, tenant, order_id, file_name, content))

    last = (await conversation(client, tenant, order_id))[-1]
    assert last["Id"] == message_id
    assert last["Text"] == TEXT["message"]
    assert {k: last["Attachment"][k] for k in ("Name", "Extension", "Size")} == {
        "Name": name,
        "Extension": extension,
        "Size": len(content),
    }
    assert last["Attachment"]["Url"] == f"/v2/orders/{order_id}/messages/{message_id}/attachment"
    await assert_download(client, tenant, order_id, message_id, content, extension, f".{extension}")


async def test_a_file_of_several_megabytes_is_kept_byte_for_byte(client, database):
    """Past the one-megabyte slices it is written in (blob I/O on SQLite, COPY on PostgreSQL)."""
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)
    content = PDF + bytes(range(256)) * (10 * 1024 + 7)  # 2.5 MiB and a bit: three slices

    message_id = assert_accepted(await post_file(client, tenant, order_id, "grande.pdf", content))

    await assert_download(client, tenant, order_id, message_id, content, "pdf", "grande.pdf")


@pytest.mark.parametrize("how", ["json", "form", "multipart"])
@pytest.mark.parametrize(
    ("document_name", "document_extension", "content", "name", "extension"),
    [
        ("factura", "pdf", PDF, "factura", "pdf"),
        ("factura", ".PDF", PDF, "factura", "pdf"),
        ("factura.pdf", "pdf", PDF, "factura", "pdf"),
        ("imagen", "Png", PNG, "imagen", "png"),
        ("foto", ".jpeg", JPG, "foto", "jpeg"),
        ("nota", "txt", TXT, "nota", "txt"),
    ],
)
async def test_base64_attachment_from_any_body(
    client, database, how, document_name, document_extension, content, name, extension
):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)

    response = await post_base64(
        client,
        tenant,
        order_id,
        how,
        fileBase64=b64(content),
        documentName=document_name,
        documentExtension=document_extension,
    )

    message_id = assert_accepted(response)
    attachment = (await conversation(client, tenant, order_id))[-1]["Attachment"]
    assert (attachment["Name"], attachment["Extension"], attachment["Size"]) == (
        name,
        extension,
        len(content),
    )
    await assert_download(client, tenant, order_id, message_id, content, extension, f"{name}.{extension}")


async def test_base64_with_line_breaks_and_spaces_is_valid(client, database):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)
    content = PDF * 20
    encoded = base64.encodebytes(content).decode().replace("\n", "\r\n ")

    response = await post_base64(
        client, tenant, order_id, "json", fileBase64=encoded, documentName="grande", documentExtension="pdf"
    )

    message_id = assert_accepted(response)
    await assert_download(client, tenant, order_id, message_id, content, "pdf", "grande.pdf")


async def test_base64_in_the_query_string(client, database):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)

    response = await send(
        client, tenant, order_id, **TEXT, fileBase64=b64(TXT), documentName="nota", documentExtension="txt"
    )

    message_id = assert_accepted(response)
    await assert_download(client, tenant, order_id, message_id, TXT, "txt", "nota.txt")


# --- refusals (check 7: 400, before the conversation is looked at) --------------------------------

FILE_REFUSALS = [
    ("virus.exe", b"MZ\x90\x00", "attachment_extension_not_allowed"),
    ("doc.docx", b"PK\x03\x04", "attachment_extension_not_allowed"),
    ("factura", PDF, "attachment_extension_missing"),
    ("factura.", PDF, "attachment_extension_missing"),
    ("vacio.pdf", b"", "attachment_empty"),
    ("vacio.txt", b"", "attachment_empty"),
    ("falso.pdf", PNG, "attachment_content_mismatch"),
    ("falso.png", PDF, "attachment_content_mismatch"),
    ("falso.jpg", b"hola", "attachment_content_mismatch"),
    ("binario.txt", b"\x00\x01\x02\x03", "attachment_content_mismatch"),
    ("latin1.txt", "año".encode("latin-1"), "attachment_content_mismatch"),
    ("dir/factura.pdf", PDF, "attachment_name_invalid"),
    ("dir\\factura.pdf", PDF, "attachment_name_invalid"),
    ("a" * 201 + ".pdf", PDF, "attachment_name_too_long"),
]


@pytest.mark.parametrize(("file_name", "content", "code"), FILE_REFUSALS)
async def test_multipart_file_refusals(client, database, file_name, content, code):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)

    assert_refused(await post_file(client, tenant, order_id, file_name, content), 400, code)
    assert len(await conversation(client, tenant, order_id)) == 2  # nothing stored


P64 = b64(PDF)
NOT_ALLOWED, NO_EXTENSION, MISMATCH, BAD_NAME, BAD_BASE64 = (
    "attachment_extension_not_allowed",
    "attachment_extension_missing",
    "attachment_content_mismatch",
    "attachment_name_invalid",
    "attachment_base64_invalid",
)
BASE64_REFUSALS = [  # (fileBase64, documentName, documentExtension, code); None: not given
    (P64, "x", "exe", NOT_ALLOWED),
    (P64, "x", "pdf.exe", NOT_ALLOWED),
    (P64, "x", None, NO_EXTENSION),
    (P64, "x", " . ", NO_EXTENSION),
    (P64, None, "pdf", "attachment_name_missing"),
    (None, "x", "pdf", "attachment_base64_missing"),
    (b64(PNG), "x", "pdf", MISMATCH),
    (P64, "x", "jpg", MISMATCH),
    (b64(b"\xff\xfe\x00"), "x", "txt", MISMATCH),
    (P64, "carpeta/x", "pdf", BAD_NAME),
    (P64, "..\\x", "pdf", BAD_NAME),
    (P64, "n" * 201, "pdf", "attachment_name_too_long"),
    ("!!!!", "x", "pdf", BAD_BASE64),
    ("JVBER", "x", "pdf", BAD_BASE64),
    (P64 + "$", "x", "pdf", BAD_BASE64),
    ("ñ" + P64[1:], "x", "pdf", BAD_BASE64),
    ("JVBERi0x=LjQK", "x", "pdf", BAD_BASE64),
    (P64[:-4] + "-_-_", "x", "pdf", BAD_BASE64),
    ("====", "x", "pdf", BAD_BASE64),
]


@pytest.mark.parametrize("how", ["json", "form"])
@pytest.mark.parametrize(("encoded", "name", "extension", "code"), BASE64_REFUSALS)
async def test_base64_refusals(client, database, how, encoded, name, extension, code):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)
    given = {"fileBase64": encoded, "documentName": name, "documentExtension": extension}

    response = await post_base64(
        client, tenant, order_id, how, **{k: v for k, v in given.items() if v is not None}
    )

    assert_refused(response, 400, code)
    assert len(await conversation(client, tenant, order_id)) == 2


@pytest.mark.parametrize("file_name", ["factura", "factura.", ".pdf"])
async def test_missing_extension_of_an_upload_names_the_file_not_the_base64_fields(
    client, database, file_name
):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)

    body = assert_refused(
        await post_file(client, tenant, order_id, file_name, PDF), 400, "attachment_extension_missing"
    )

    assert "documentExtension" not in body["Message"]
    assert "fileBase64" not in body["Message"]


async def test_both_sources_at_once_is_400(client, database):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)

    response = await post_file(
        client,
        tenant,
        order_id,
        "factura.pdf",
        PDF,
        fileBase64=b64(PDF),
        documentName="factura",
        documentExtension="pdf",
    )

    assert_refused(response, 400, "attachment_both_sources")


async def test_two_file_parts_are_conflicting(client, database):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)

    response = await client.post(
        messages_url(order_id),
        params=tenant.credentials(**TEXT),
        files=[("file", ("a.pdf", PDF, "application/pdf")), ("FILE", ("b.pdf", PDF, "application/pdf"))],
    )

    assert_refused(response, 400, "conflicting_parameter")


async def test_name_of_exactly_200_characters_is_accepted(client, database):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)

    response = await post_base64(
        client, tenant, order_id, "json", fileBase64=b64(PDF), documentName="n" * 200, documentExtension="pdf"
    )

    assert_accepted(response)


async def test_bad_attachment_is_400_even_where_the_conversation_would_refuse(client, database):
    tenant = await make_tenant(database)
    fresh = await make_order(database, tenant)

    assert_refused(
        await post_file(client, tenant, fresh, "virus.exe", b"MZ"), 400, "attachment_extension_not_allowed"
    )
    assert_refused(
        await post_file(client, tenant, fresh, "ok.pdf", PDF), 409, "attachment_requires_answered_message"
    )


# --- the size limit -------------------------------------------------------------------------------

LIMIT = 4096


@pytest.mark.parametrize("how", ["multipart", "json", "form"])
async def test_attachment_over_the_limit_is_400_and_at_the_limit_is_accepted(database_url, database, how):
    tenant = await make_tenant(database)
    async with custom_client(database_url, database, max_attachment_bytes=LIMIT) as http:
        at_limit = PDF + b"0" * (LIMIT - len(PDF))
        over = at_limit + b"0"
        order_id = await answered_order(http, database, tenant)

        if how == "multipart":
            refused = await post_file(http, tenant, order_id, "grande.pdf", over)
        else:
            refused = await post_base64(
                http,
                tenant,
                order_id,
                how,
                fileBase64=b64(over),
                documentName="grande",
                documentExtension="pdf",
            )
        assert_refused(refused, 400, "attachment_too_large")

        if how == "multipart":
            accepted = await post_file(http, tenant, order_id, "grande.pdf", at_limit)
        else:
            accepted = await post_base64(
                http,
                tenant,
                order_id,
                how,
                fileBase64=b64(at_limit),
                documentName="grande",
                documentExtension="pdf",
            )
        message_id = assert_accepted(accepted)
        await assert_download(http, tenant, order_id, message_id, at_limit, "pdf", "grande.pdf")


@pytest.mark.parametrize("how", ["multipart", "json"])
async def test_body_far_over_the_limit_is_413_and_stores_nothing(database_url, database, how):
    tenant = await make_tenant(database)
    async with custom_client(database_url, database, max_attachment_bytes=LIMIT) as http:
        order_id = await answered_order(http, database, tenant)
        huge = PDF + b"0" * (300 * 1024)
        if how == "multipart":
            response = await post_file(http, tenant, order_id, "enorme.pdf", huge)
        else:
            response = await post_base64(
                http,
                tenant,
                order_id,
                how,
                fileBase64=b64(huge),
                documentName="enorme",
                documentExtension="pdf",
            )
        assert_refused(response, 413, "request_too_large")
        assert len(await conversation(http, tenant, order_id)) == 2


# --- downloads ------------------------------------------------------------------------------------


async def test_download_of_a_message_without_attachment_is_404(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    message_id = assert_accepted(await send(client, tenant, order_id, **TEXT))

    response = await client.get(
        f"/v2/orders/{order_id}/messages/{message_id}/attachment", params=tenant.credentials()
    )

    assert_refused(response, 404, "attachment_not_found")


async def test_download_is_private_to_the_account(client, database):
    tenant = await make_tenant(database)
    other = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)
    message_id = assert_accepted(await post_file(client, tenant, order_id, "privado.pdf", PDF))
    url = f"/v2/orders/{order_id}/messages/{message_id}/attachment"

    assert_refused(await client.get(url, params=other.credentials()), 404, "order_not_found")
    assert_refused(await client.get(url, params={"accountId": tenant.account_id}), 401, "api_key_missing")
    other_order = await make_order(database, other)
    assert_refused(
        await client.get(
            f"/v2/orders/{other_order}/messages/{message_id}/attachment", params=other.credentials()
        ),
        404,
        "message_not_found",
    )
