"""Every method of the SDK against the real application, through both clients (see conftest)."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from zoneinfo import ZoneInfo

import pytest
from postventa_sdk import (
    AttachmentInfo,
    Conversation,
    DownloadedFile,
    KeyValue,
    Message,
    Order,
    Reason,
    ReasonOption,
    SentMessage,
)

from tests.factories import buyer_replies, make_order, window
from tests.integration.http_helpers import PDF, PNG, TXT
from tests.sdk.conftest import call, collect


async def test_send_message_with_text(sdk, database, tenant):
    order_id = await make_order(database, tenant)

    sent = await call(sdk.send_message(order_id, reason=Reason.OTHER, text="Hola, ¿te llegó bien?"))

    assert isinstance(sent, SentMessage)
    assert sent.order_id == order_id
    assert sent.location == f"/v2/orders/{order_id}/messages/{sent.id}"
    assert (sent.message_ignored, sent.replayed) == (False, False)
    assert uuid.UUID(sent.idempotency_key).version == 4
    assert sent.request_id


async def test_reason_by_number_or_name_and_ignored_text_of_a_template(sdk, database, tenant):
    first = await make_order(database, tenant)
    second = await make_order(database, tenant)

    template = await call(sdk.send_message(first, reason="request_variants", text="ignored"))
    by_number = await call(sdk.send_message(second, reason=4, text="Hola"))

    assert template.message_ignored is True
    assert (await call(sdk.message(first, template.id))).reason is Reason.REQUEST_VARIANTS
    assert (await call(sdk.message(second, by_number.id))).reason is Reason.OTHER


async def test_conversation_and_one_message(sdk, database, tenant):
    order_id = await make_order(database, tenant)
    sent = await call(sdk.send_message(order_id, reason=Reason.OTHER, text="Hola"))
    await buyer_replies(database, order_id, "Gracias")

    conversation = await call(sdk.conversation(order_id))

    assert isinstance(conversation, Conversation)
    assert conversation.order_id == order_id
    outbound, inbound = conversation.messages
    assert (outbound.id, outbound.direction, outbound.status) == (sent.id, "outbound", "queued")
    assert (outbound.reason, outbound.text, outbound.attachment) == (Reason.OTHER, "Hola", None)
    assert outbound.date_created is not None
    assert outbound.date_created.tzinfo is not None
    assert (inbound.direction, inbound.status, inbound.text) == ("inbound", "received", "Gracias")
    one = await call(sdk.message(order_id, sent.id))
    assert isinstance(one, Message)
    assert one == outbound


async def test_message_options(sdk, database, tenant):
    order_id = await make_order(database, tenant)
    await call(sdk.send_message(order_id, reason=Reason.OTHER, text="Hola"))

    options = await call(sdk.message_options(order_id))

    assert [option.reason for option in options] == list(Reason)
    assert all(isinstance(option, ReasonOption) for option in options)
    other = options[Reason.OTHER - 1]
    assert (other.available, other.status, other.code) == (False, 409, "awaiting_buyer_reply")
    assert (other.text_mode, other.char_limit) == ("free_text", 350)
    invoice = options[Reason.SEND_INVOICE_LINK - 1]
    assert (invoice.status, invoice.code) == (412, "reason_not_available_in_country")


async def test_order(sdk, database, tenant):
    order_id = await make_order(
        database,
        tenant,
        ExternalOrderId="EXT-SDK-1",
        SiteId="MLA",
        LogisticType="flex",
        Buyer={"Code": "123", "Nickname": "COMPRADOR"},
        EstimatedDelivery=window(1),
        PackId=2_000_000_555,
        ExternalShippingId=43_000_000_555,
        DateCreated="2024-05-01T12:00:00.750Z",
        DateClosed="2024-05-01T12:03:00Z",
    )

    order = await call(sdk.order(order_id))

    assert isinstance(order, Order)
    assert (order.id, order.external_order_id, order.site_id) == (order_id, "EXT-SDK-1", "MLA")
    assert order.marketplace is not None
    assert order.marketplace.value == "MercadoLibre"
    assert order.logistic_type is not None
    assert order.logistic_type.value == "flex"
    assert (order.buyer.code, order.buyer.nickname) == ("123", "COMPRADOR")
    assert order.estimated_delivery is not None
    assert (order.estimated_delivery.from_hour, order.estimated_delivery.to_hour) == (9, 18)
    # Alephee's shape (a string PackId, an integer Buyer.Code) read into the SDK's own types.
    assert (order.pack_id, order.shipping_id, order.is_cancelled) == (2_000_000_555, 43_000_000_555, False)
    assert order.date_created == dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert order.date_closed == dt.datetime(2024, 5, 1, 12, 3, tzinfo=dt.UTC)
    assert order.last_updated is not None
    assert order.estimated_delivery_date is not None
    assert (
        order.estimated_delivery_date.astimezone(ZoneInfo("America/Argentina/Buenos_Aires")).time()
        == dt.time()
    )


def test_an_order_of_a_server_before_alephees_shape_still_reads():
    order = Order.from_json(
        {
            "Id": 7,
            "ExternalOrderId": "EXT-7",
            "PackId": 2000000555,
            "Marketplace": {"Key": 1, "Value": "MercadoLibre"},
            "SiteId": "MLA",
            "Status": {"Key": 10, "Value": "Ready to ship"},
            "StatusType": {"Key": 1, "Value": "Pending"},
            "Shipping": {"LogisticType": None, "EstimatedDelivery": None},
            "Buyer": {"Code": "123", "Nickname": None, "Name": None},
            "DateCreated": "2024-05-01T12:00:00.000Z",
        }
    )

    assert (order.pack_id, order.marketplace, order.buyer.code) == (
        2000000555,
        KeyValue(1, "MercadoLibre"),
        "123",
    )
    assert order.date_created == dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert (order.date_closed, order.shipping_id, order.is_cancelled) == (None, None, False)


async def test_orders_follows_the_paging(sdk, database, tenant):
    created = [await make_order(database, tenant) for _ in range(7)]

    everything = await collect(sdk.orders(page_size=3))
    from_the_third = await collect(sdk.orders(page_size=2, id_from=created[2]))
    first_page = await call(sdk.orders_page(limit=3))

    assert [order.id for order in everything] == created
    assert [order.id for order in from_the_third] == created[2:]
    assert (first_page.limit, first_page.offset, first_page.total, len(first_page.orders)) == (3, 0, 7, 3)


async def test_orders_of_an_empty_account(sdk):
    assert await collect(sdk.orders()) == []


def _attachment(kind: str, tmp_path) -> dict:
    """The same PDF as a path, a str path, bytes with a name, a file object, or base64 JSON."""
    path = tmp_path / "factura.pdf"
    path.write_bytes(PDF)
    sources = {
        "path": lambda: {"attachment": path},
        "str path": lambda: {"attachment": str(path)},
        "bytes": lambda: {"attachment": PDF, "attachment_name": "factura.pdf"},
        "file object": lambda: {"attachment": path.open("rb")},
        "nameless file object": lambda: {"attachment": io.BytesIO(PDF), "attachment_name": "factura.pdf"},
        "base64": lambda: {"attachment": PDF, "attachment_name": "factura.pdf", "as_base64": True},
    }
    return sources[kind]()


@pytest.mark.parametrize(
    "kind", ["path", "str path", "bytes", "file object", "nameless file object", "base64"]
)
async def test_attachment_sources_and_download(sdk, database, tenant, tmp_path, kind):
    order_id = await make_order(database, tenant)
    await call(sdk.send_message(order_id, reason=Reason.OTHER, text="Hola"))
    await buyer_replies(database, order_id)
    source = _attachment(kind, tmp_path)

    sent = await call(sdk.send_message(order_id, reason=Reason.OTHER, text="Tu factura", **source))

    if hasattr(source["attachment"], "close"):
        source["attachment"].close()
    message = await call(sdk.message(order_id, sent.id))
    assert message.attachment == AttachmentInfo(
        "factura", "pdf", len(PDF), f"/v2/orders/{order_id}/messages/{sent.id}/attachment"
    )
    downloaded = await call(sdk.download_attachment(order_id, sent.id))
    assert downloaded == DownloadedFile("factura.pdf", "application/pdf", PDF)


@pytest.mark.parametrize(
    ("name", "content", "media_type"), [("foto.png", PNG, "image/png"), ("nota.txt", TXT, "text/plain")]
)
async def test_other_file_types_keep_their_name(sdk, database, tenant, name, content, media_type):
    order_id = await make_order(database, tenant)
    await call(sdk.send_message(order_id, reason=Reason.OTHER, text="Hola"))
    await buyer_replies(database, order_id)

    sent = await call(
        sdk.send_message(order_id, reason=Reason.OTHER, attachment=content, attachment_name=name, text="Va")
    )

    downloaded = await call(sdk.download_attachment(order_id, sent.id))
    assert downloaded.file_name == name
    assert downloaded.content_type.startswith(media_type)
    assert downloaded.content == content


async def test_attachment_inputs_are_checked_before_sending(sdk, database, tenant):
    order_id = await make_order(database, tenant)

    with pytest.raises(ValueError, match="attachment_name"):
        await call(sdk.send_message(order_id, reason=Reason.OTHER, text="x", attachment=PDF))
    with pytest.raises(ValueError, match="extension"):
        await call(
            sdk.send_message(
                order_id, reason=Reason.OTHER, text="x", attachment=PDF, attachment_name="factura"
            )
        )
    with pytest.raises(ValueError, match="unknown reason"):
        await call(sdk.send_message(order_id, reason="THANKS", text="x"))
    assert (await call(sdk.conversation(order_id))).messages == []
