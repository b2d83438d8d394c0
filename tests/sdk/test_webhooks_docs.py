"""docs/webhooks.md holds: an example body for every event type, each shaped exactly as the API renders
its subject (the same fields, nested alike, of the same JSON types), each read by the SDK as its typed
event; and the receiver code it shows runs, accepting those examples and refusing a tampered one."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import httpx2
import pytest
import standardwebhooks
from postventa_sdk import Message, MessageEvent, Order, OrderEvent, verify_webhook

from postventa.store.engine import Database
from tests.factories import buyer_replies, make_tenant, window
from tests.integration.http_helpers import PDF, answered_order, assert_accepted, messages_url

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
EXAMPLE = re.compile(r"^### `([a-z.]+)`\n\n```json\n(.*?)^```$", re.DOTALL | re.MULTILINE)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
EVENT_TYPES = ["message.sent", "message.moderated", "message.failed", "message.received", "order.updated"]
SECRET = "whsec_" + base64.b64encode(b"documented receiver key 32 bytes").decode()


def documented_examples() -> dict[str, dict[str, Any]]:
    """Each `### \\`type\\`` heading's JSON example, by type."""
    text = DOCS.read_text(encoding="utf-8")
    return {event_type: json.loads(body) for event_type, body in EXAMPLE.findall(text)}


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """The headers of a request signed now by the standardwebhooks package."""
    now = dt.datetime.now(dt.UTC)
    return {
        "webhook-id": "msg_docs_example",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": standardwebhooks.Webhook(secret).sign("msg_docs_example", now, body),
    }


def shape_difference(documented: Any, rendered: Any, where: str = "data") -> str | None:
    """Where the documented JSON differs from the rendered one in fields or types (a null on either
    side matches anything: the example and the real subject need not be in the same state)."""
    if documented is None or rendered is None:
        return None
    if isinstance(rendered, dict):
        if not isinstance(documented, dict) or set(documented) != set(rendered):
            keys = set(documented) if isinstance(documented, dict) else type(documented).__name__
            return f"{where}: documented {keys} != rendered {set(rendered)}"
        for key in rendered:
            if found := shape_difference(documented[key], rendered[key], f"{where}.{key}"):
                return found
        return None
    if type(documented) is not type(rendered):
        return f"{where}: documented {type(documented).__name__}, rendered {type(rendered).__name__}"
    return None


def test_every_event_type_has_an_example_with_the_envelope():
    examples = documented_examples()
    assert list(examples) == EVENT_TYPES
    for event_type, example in examples.items():
        assert set(example) == {"type", "timestamp", "data"}
        assert example["type"] == event_type
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", example["timestamp"])
        assert isinstance(example["data"]["AccountId"], int)
    for event_type in EVENT_TYPES[:4]:
        data = examples[event_type]["data"]
        assert data["Status"] == event_type.removeprefix("message.")
        # The status and its time: the envelope's with microseconds, the message's in whole seconds.
        assert data["DateStatus"] == examples[event_type]["timestamp"][:19] + "Z"
    order = examples["order.updated"]
    assert order["data"]["LastUpdated"] == order["timestamp"][:19] + "Z"
    assert order["data"]["AccountId"] == order["data"]["SellerAccount"]["Id"]


async def rendered_subjects(client: httpx2.AsyncClient, database: Database) -> dict[str, Any]:
    """A seller message with an attachment, a buyer's message and an order, as the API renders them."""
    tenant = await make_tenant(database)
    order_id = await answered_order(
        client,
        database,
        tenant,
        PackId=2000000123,
        LogisticType="self_service",
        EstimatedDelivery=window(2),
        ExternalShippingId=44123456789,
        Buyer={"Code": "123456789", "Nickname": "COMPRADOR", "Name": "Juan"},
        DateClosed="2026-12-01T14:03:11Z",
    )
    attachment = {"fileBase64": base64.b64encode(PDF).decode(), "documentName": "factura"}
    fields = tenant.credentials(messageOptions=4, message="La factura", documentExtension="pdf")
    outbound = assert_accepted(await client.post(messages_url(order_id), json={**fields, **attachment}))
    inbound = await buyer_replies(database, order_id)

    async def read(path: str) -> dict[str, Any]:
        response = await client.get(path, params=tenant.credentials())
        assert response.status_code == 200, response.text
        return dict(response.json())

    return {
        "outbound": await read(f"{messages_url(order_id)}/{outbound}"),
        "inbound": await read(f"{messages_url(order_id)}/{inbound}"),
        "order": await read(f"/v2/orders/{order_id}"),
    }


async def test_each_example_is_shaped_as_the_api_renders_its_subject(client, database: Database):
    rendered = await rendered_subjects(client, database)
    subjects = {
        "message.sent": rendered["outbound"],
        "message.moderated": rendered["outbound"],
        "message.failed": rendered["outbound"],
        "message.received": rendered["inbound"],
        "order.updated": rendered["order"],
    }
    for event_type, example in documented_examples().items():
        subject = subjects[event_type] | {"AccountId": rendered["order"]["SellerAccount"]["Id"]}
        assert shape_difference(example["data"], subject) is None, event_type
    # The examples' attachment and its URL follow the API's.
    failed = documented_examples()["message.failed"]["data"]
    assert failed["Attachment"]["Url"] == f"/v2/orders/{failed['OrderId']}/messages/{failed['Id']}/attachment"


def test_the_sdk_reads_each_example_as_its_typed_event():
    for event_type, example in documented_examples().items():
        body = json.dumps(example, ensure_ascii=False).encode()
        event = verify_webhook(body, signed(body), SECRET)
        assert (event.type, event.webhook_id) == (event_type, "msg_docs_example")
        if isinstance(event, MessageEvent):
            assert event.data == Message.from_json(example["data"])
            assert event.account_id == example["data"]["AccountId"]
        else:
            assert isinstance(event, OrderEvent)
            assert event.data == Order.from_json(example["data"])
            assert event.account_id == example["data"]["AccountId"]


def run_the_receiver(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every Python block of docs/webhooks.md, in order, in one namespace, with the secret set."""
    monkeypatch.setenv("POSTVENTA_WEBHOOK_SECRET", SECRET)
    namespace: dict[str, Any] = {"__name__": "docs"}
    for number, block in enumerate(PYTHON_BLOCK.findall(DOCS.read_text(encoding="utf-8")), start=1):
        exec(compile(block, f"docs/webhooks.md block {number}", "exec"), namespace)
    return namespace


def test_the_documented_receiver_accepts_each_example_once_and_refuses_a_tampered_one(monkeypatch):
    receiver = run_the_receiver(monkeypatch)
    printed = io.StringIO()
    with redirect_stdout(printed):
        for example in documented_examples().values():
            body = json.dumps(example, ensure_ascii=False).encode()
            headers = {**signed(body), "webhook-id": f"msg_{example['type']}"}
            headers["webhook-signature"] = standardwebhooks.Webhook(SECRET).sign(
                headers["webhook-id"], dt.datetime.now(dt.UTC), body
            )
            assert receiver["handle"](body, headers) == 204
            assert receiver["handle"](body, headers) == 204  # a retry: acknowledged, not handled again
            assert receiver["handle_plain"](body, headers) == 204
            assert receiver["handle"](body.replace(b"20", b"21", 1), headers) == 400
    lines = printed.getvalue().splitlines()
    assert "order 1234: the buyer wrote 'Sí, llegó perfecto. ¡Gracias!'" in lines
    assert "message 5073 of order 1234 is failed" in lines
    assert "order 1234 is Delivered" in lines
    assert lines.count("refused: signature_mismatch") == 5
    assert sum(line.startswith("message ") for line in lines) == 3  # sent, moderated, failed: once each


def test_the_documented_ordering_keeps_the_newest_status(monkeypatch):
    receiver = run_the_receiver(monkeypatch)
    examples = documented_examples()

    def event(example: dict[str, Any], changed_at: str) -> MessageEvent:
        body = json.dumps({**example, "timestamp": changed_at}).encode()
        verified = verify_webhook(body, signed(body), SECRET)
        assert isinstance(verified, MessageEvent)
        return verified

    sent = examples["message.sent"]
    moderated = {
        **examples["message.moderated"],
        "data": {**examples["message.moderated"]["data"], "Id": 5071},
    }
    # Within one second: only the envelope's microseconds tell them apart.
    later = event(moderated, "2026-12-04T19:54:09.900000Z")
    earlier = event(sent, "2026-12-04T19:54:09.412305Z")
    assert receiver["apply_message_event"](later) is True
    assert receiver["apply_message_event"](earlier) is False  # arrived late: discarded
    assert receiver["apply_message_event"](later) is False  # a duplicate
    assert receiver["apply_message_event"](event(sent, "2026-12-04T19:54:10.000001Z")) is True
