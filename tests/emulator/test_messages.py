"""Messages: sending, reading, the two shapes of one message, moderation and attachments."""

from __future__ import annotations

import pytest

from postventa.emulator.moderation import LINK_SHORT_URL, PERSONAL_DATA, moderation_reason
from tests.emulator.world import SellerSession, World

POST_SALE = {"tag": "post_sale"}


async def open_conversation(world: World, site: str = "MLA") -> tuple[SellerSession, int]:
    seller = await world.seller(site)
    key = (await world.order(seller))["Key"]
    await world.buyer_writes(key)
    return seller, key


async def test_sent_message_shape(world: World) -> None:
    seller, key = await open_conversation(world)
    sent = await world.send(seller, key, "¡Hola! Tu paquete fue despachado. 📦")
    assert sent.status_code == 201, sent.text
    message = sent.json()
    assert len(message["id"]) == 32
    assert int(message["id"], 16) >= 0
    assert message["from"] == {"user_id": seller.id}
    assert message["to"] == {"user_id": world.buyers[key]}
    assert message["status"] == "available"
    assert message["site_id"] == "MLA"
    assert message["client_id"] == int(seller.client_id)
    assert message["message_resources"] == [
        {"id": str(key), "name": "packs"},
        {"id": str(seller.id), "name": "sellers"},
    ]
    assert message["conversation_first_message"] is False


async def test_conversation_read_pages_and_marks_read(world: World) -> None:
    seller, key = await open_conversation(world)
    for text in ("uno", "dos", "tres"):
        await world.send(seller, key, text)
    page = await world.conversation(seller, key, limit=2, offset=1, mark_as_read="false")
    assert page["paging"] == {"limit": 2, "offset": 1, "total": 4}
    assert [message["text"] for message in page["messages"]] == ["dos", "uno"]
    assert page["seller_max_message_length"] == 350
    assert page["buyer_max_message_length"] == 3500
    unread = await world.conversation(seller, key, mark_as_read="false")
    assert unread["messages"][-1]["message_date"]["read"] is None
    read = await world.conversation(seller, key)
    assert read["messages"][-1]["message_date"]["read"] is not None
    assert read["messages"][-1]["conversation_first_message"] is True


@pytest.mark.parametrize(("limit", "offset"), [("0", "0"), ("x", "0"), ("5", "-1")])
async def test_conversation_read_bad_paging(world: World, limit: str, offset: str) -> None:
    seller, key = await open_conversation(world)
    answer = await world.http.get(
        f"/messages/packs/{key}/sellers/{seller.id}",
        params={"tag": "post_sale", "limit": limit, "offset": offset},
        headers=seller.headers,
    )
    assert answer.status_code == 400


async def test_conversation_of_another_seller_is_403(world: World) -> None:
    seller, key = await open_conversation(world)
    other = await world.seller()
    path = f"/messages/packs/{key}/sellers/{other.id}"
    answer = await world.http.get(path, params=POST_SALE, headers=other.headers)
    assert answer.status_code == 403
    mismatch = await world.http.get(path, params=POST_SALE, headers=seller.headers)
    assert mismatch.status_code == 403


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x" * 351, "The message content is too long, max characters allowed are 350"),
        ("Precio: 10 €", "The text has character/s that is/are not supported."),
        ("", "The field 'text' is required"),
    ],
)
async def test_send_text_errors(world: World, text: str, message: str) -> None:
    seller, key = await open_conversation(world)
    refused = await world.send(seller, key, text)
    assert refused.status_code == 400
    assert refused.json() == {"status_code": 400, "code": "bad_request", "message": message}


async def test_send_to_someone_else_is_403(world: World) -> None:
    seller, key = await open_conversation(world)
    refused = await world.http.post(
        f"/messages/packs/{key}/sellers/{seller.id}",
        params=POST_SALE,
        json={"from": {"user_id": seller.id}, "to": {"user_id": 12345}, "text": "Hola"},
        headers=seller.headers,
    )
    assert refused.status_code == 403
    assert refused.json()["message"] == f"Receiver does not belong to order {key}"


async def test_send_without_body_or_to(world: World) -> None:
    seller, key = await open_conversation(world)
    path = f"/messages/packs/{key}/sellers/{seller.id}"
    no_body = await world.http.post(path, params=POST_SALE, headers=seller.headers)
    assert no_body.json()["message"] == "A JSON body is required"
    no_to = await world.http.post(
        path, params=POST_SALE, json={"from": {"user_id": seller.id}, "text": "x"}, headers=seller.headers
    )
    assert no_to.json()["message"] == "The field 'to.user_id' is required"


async def test_unknown_attachment_is_422(world: World) -> None:
    seller, key = await open_conversation(world)
    refused = await world.send(seller, key, "Adjunto", attachments=[f"{seller.id}_nope.pdf"])
    assert refused.status_code == 422
    assert refused.json() == {
        "status_code": 422,
        "code": "unprocessable_entity",
        "message": "Attachment key is invalid or not found",
    }


async def test_get_message_in_both_shapes(world: World) -> None:
    seller, key = await open_conversation(world)
    message_id = (await world.send(seller, key, "Hola")).json()["id"]
    new = await world.http.get(
        f"/messages/{message_id}",
        params={"tag": "post_sale"},
        headers={**seller.headers, "x-format-new": "true"},
    )
    body = new.json()
    assert body["paging"] is None
    assert body["conversation_status"] is None
    assert body["messages"][0]["id"] == message_id
    old = (await world.http.get(f"/messages/{message_id}", params=POST_SALE, headers=seller.headers)).json()
    assert old["message_id"] == message_id
    assert old["text"] == {"plain": "Hola"}
    assert old["resource"] == "orders"


async def test_get_message_errors(world: World) -> None:
    seller, key = await open_conversation(world)
    message_id = (await world.send(seller, key, "Hola")).json()["id"]
    other = await world.seller()
    for path, headers, status in [
        (f"/messages/{message_id}", other.headers, 403),
        (f"/messages/{'0' * 32}", seller.headers, 404),
        ("/messages/abc", seller.headers, 400),
    ]:
        assert (await world.http.get(path, params=POST_SALE, headers=headers)).status_code == status


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Escribime a juan.perez@example.com", PERSONAL_DATA),
        ("Llamame al 11 4567-8901", PERSONAL_DATA),
        ("Mi whatsapp +54 9 11 45678901", PERSONAL_DATA),
        ("Mirá https://bit.ly/3xYz", LINK_SHORT_URL),
        ("Info en tinyurl.com/abc", LINK_SHORT_URL),
        ("Factura: https://zpr.io/AbC12345678", LINK_SHORT_URL),
        ("rebrand.ly/x t2m.io/y bl.ink/z", LINK_SHORT_URL),
        ("Ver sho.yourls.org/x", LINK_SHORT_URL),
        ("Llega el 2026-06-10 entre las 9 y las 18", None),
        ("Tu compra está en camino, https://www.mercadolibre.com.ar/ayuda", None),
    ],
)
def test_moderation_rules(text: str, reason: str | None) -> None:
    assert moderation_reason(text) == reason


async def test_moderated_message_is_stored_and_visible(world: World) -> None:
    seller, key = await open_conversation(world)
    sent = (await world.send(seller, key, "Escribime a juan@example.com")).json()
    assert sent["status"] == "moderated"
    assert sent["message_moderation"]["status"] == "rejected"
    assert sent["message_moderation"]["reason"] == PERSONAL_DATA
    assert sent["message_date"]["available"] is None
    listed = (await world.conversation(seller, key))["messages"][0]
    assert listed["id"] == sent["id"]
    assert listed["status"] == "moderated"


async def test_moderated_guide_message_still_uses_the_cap(world: World) -> None:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    sent = await world.option(seller, key, {"option_id": "OTHER", "text": "Mirá https://bit.ly/abc"})
    assert sent.status_code == 200
    assert sent.json()["status"] == "moderated"
    assert sent.json()["message_moderation"] == {
        "status": "rejected",
        "reason": LINK_SHORT_URL,
        "source": "online",
        "moderation_date": sent.json()["message_moderation"]["moderation_date"],
    }
    caps = (await world.guide(seller, key)).json()["options"]
    assert {option["cap_available"] for option in caps} == {0}


async def upload(world: World, seller: SellerSession, name: str, content: bytes, site: str | None = "MLA"):
    params = {"tag": "post_sale", **({"site_id": site} if site else {})}
    return await world.http.post(
        "/messages/attachments", params=params, files={"file": (name, content)}, headers=seller.headers
    )


async def test_attachment_upload_download_and_send(world: World) -> None:
    seller, key = await open_conversation(world)
    uploaded = await upload(world, seller, "Factura.PDF", b"%PDF-1.4 hello")
    assert uploaded.status_code == 200, uploaded.text
    attachment_id = uploaded.json()["id"]
    assert attachment_id.startswith(f"{seller.id}_")
    assert attachment_id.endswith(".pdf")
    downloaded = await world.http.get(
        f"/messages/attachments/{attachment_id}",
        params={"tag": "post_sale", "site_id": "MLA"},
        headers=seller.headers,
    )
    assert downloaded.status_code == 200
    assert downloaded.content == b"%PDF-1.4 hello"
    assert downloaded.headers["content-type"] == "application/pdf"
    sent = await world.send(seller, key, "Te adjunto la factura", attachments=[attachment_id])
    assert sent.status_code == 201, sent.text
    attached = sent.json()["message_attachments"][0]
    assert attached["filename"] == attachment_id
    assert attached["original_filename"] == "Factura.PDF"
    assert attached["size"] == len(b"%PDF-1.4 hello")


@pytest.mark.parametrize(
    ("name", "content", "site", "message"),
    [
        ("a.pdf", b"x", None, "The queryparam 'site_id' is required"),
        ("a.pdf", b"x", "XYZ", "Invalid site_id: 'XYZ' is not a recognized site"),
        ("a.pdf", b"", "MLA", "File attached is empty"),
        ("dir/a.pdf", b"x", "MLA", "File name cannot include characters like /, \\"),
        ("dir\\a.pdf", b"x", "MLA", "File name cannot include characters like /, \\"),
        ("n" * 197 + ".pdf", b"x", "MLA", "The original_filename exceeded 200 character limit"),
        ("a.exe", b"x", "MLA", "The file type is not supported: accepted formats are JPG, PNG, PDF and TXT"),
        ("big.txt", b"x" * (25 * 1024 * 1024 + 1), "MLA", "File attachment is bigger than 25 Mb."),
    ],
)
async def test_attachment_upload_errors(
    world: World, name: str, content: bytes, site: str | None, message: str
) -> None:
    seller = await world.seller()
    refused = await upload(world, seller, name, content, site)
    assert refused.status_code == 400
    assert refused.json() == {"message": message, "error": "bad_request", "status": 400, "cause": []}


async def test_attachment_download_errors(world: World) -> None:
    seller = await world.seller()
    attachment_id = (await upload(world, seller, "nota.txt", b"hola")).json()["id"]
    other = await world.seller()
    path = f"/messages/attachments/{attachment_id}"
    mla = {**POST_SALE, "site_id": "MLA"}
    assert (await world.http.get(path, params=mla, headers=other.headers)).status_code == 404
    missing_site = await world.http.get(path, params=POST_SALE, headers=seller.headers)
    assert missing_site.json()["message"] == "The queryparam 'site_id' is required"
