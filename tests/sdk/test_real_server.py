"""The blocking `Client` against `postventa serve` run as an operator runs it: the installed command in
its own process (`served_postventa`), on the backend's database, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from postventa_sdk import (
    BadRequest,
    Client,
    Conflict,
    DownloadedFile,
    Forbidden,
    NotFound,
    PostventaError,
    PreconditionFailed,
    Reason,
    Unauthorized,
)

from tests.factories import Tenant, buyer_replies, make_order, make_tenant
from tests.integration.http_helpers import PDF


@pytest.fixture
def client(served_postventa: str, tenant: Tenant) -> Iterator[Client]:
    with Client(served_postventa, tenant.api_key, tenant.account_id, timeout=30) as blocking:
        yield blocking


async def test_send_then_read_the_conversation_the_message_and_the_options(client, database, tenant):
    order_id = await make_order(database, tenant)

    sent = client.send_message(order_id, reason=Reason.OTHER, text="Hola, ¿te llegó bien?")
    conversation = client.conversation(order_id)
    options = client.message_options(order_id)

    assert sent.location == f"/v2/orders/{order_id}/messages/{sent.id}"
    assert sent.request_id
    (message,) = conversation.messages
    assert (message.id, message.direction, message.status, message.reason, message.text) == (
        sent.id,
        "outbound",
        "queued",  # no worker runs in this process
        Reason.OTHER,
        "Hola, ¿te llegó bien?",
    )
    assert client.message(order_id, sent.id) == message
    assert (message.source, message.author, message.read_at) == ("postventa", "seller", None)
    assert conversation.status.status == "unknown"  # Mercado Libre was never asked about it
    by_reason = {option.reason: option for option in options}
    assert (by_reason[Reason.OTHER].available, by_reason[Reason.OTHER].code) == (
        False,
        "awaiting_buyer_reply",
    )


async def test_orders_follow_the_paging_and_one_order_is_read(client, database, tenant):
    created = [await make_order(database, tenant, ExternalOrderId=f"REAL-{n}") for n in range(5)]

    listed = list(client.orders(page_size=2))  # three pages
    one = client.order(created[3])

    assert [order.id for order in listed] == created
    assert [order.external_order_id for order in listed] == [f"REAL-{n}" for n in range(5)]
    assert (one.id, one.external_order_id, one.site_id) == (created[3], "REAL-3", "MLA")


async def test_an_attachment_by_path_goes_up_and_comes_back(client, database, tenant, tmp_path: Path):
    order_id = await make_order(database, tenant)
    client.send_message(order_id, reason=Reason.OTHER, text="Hola")
    await buyer_replies(database, order_id)
    invoice = tmp_path / "factura.pdf"
    invoice.write_bytes(PDF)

    sent = client.send_message(order_id, reason=Reason.OTHER, text="Tu factura", attachment=invoice)

    message = client.message(order_id, sent.id)
    assert message.attachment is not None
    assert (message.attachment.file_name, message.attachment.size) == ("factura.pdf", len(PDF))
    assert client.download_attachment(order_id, sent.id) == DownloadedFile(
        "factura.pdf", "application/pdf", PDF
    )


async def test_each_refusal_is_its_class_with_its_code(client, served_postventa, database, tenant):
    order_id = await make_order(database, tenant)
    other = await make_tenant(database)
    others_order = await make_order(database, other)
    client.send_message(order_id, reason=Reason.OTHER, text="Hola")

    refusals = {
        NotFound: lambda: client.conversation(others_order),
        Conflict: lambda: client.send_message(order_id, reason=Reason.OTHER, text="¿Hola?"),
        BadRequest: lambda: client.send_message(order_id, reason=Reason.OTHER, text="x" * 351),
        PreconditionFailed: lambda: client.send_message(
            order_id, reason=Reason.SEND_INVOICE_LINK, text="https://f.example/1"
        ),
    }
    caught: dict[type, PostventaError] = {}
    for kind, refused in refusals.items():
        with pytest.raises(kind) as error:
            refused()
        caught[kind] = error.value
    with (
        Client(served_postventa, "pv_000000000000_unknown", tenant.account_id) as stranger,
        pytest.raises(Unauthorized),
    ):
        stranger.order(order_id)
    with Client(served_postventa, tenant.api_key, other.account_id) as elsewhere:
        with pytest.raises(Forbidden) as forbidden:
            elsewhere.order(others_order)

    assert {kind: (error.status, error.code) for kind, error in caught.items()} == {
        NotFound: (404, "order_not_found"),
        Conflict: (409, "awaiting_buyer_reply"),
        BadRequest: (400, "message_too_long"),
        PreconditionFailed: (412, "reason_not_available_in_country"),
    }
    assert all(error.request_id for error in caught.values())
    assert forbidden.value.code == "account_not_allowed"
