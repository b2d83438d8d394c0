"""docs/sdk.md runs: every Python block, in order, in one namespace, against a real server seeded like
the demo (account 1, order 1 in Argentina, cross docking), with a buyer who answers after each block."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from pathlib import Path
from typing import Any

import httpx2

from postventa.store.engine import Database
from postventa.store.migrate import upgrade
from tests.conftest import LiveServer, admin_headers, make_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
DEMO_ORDERS = [
    {
        "ExternalOrderId": "2000001",
        "SiteId": "MLA",
        "LogisticType": "cross_docking",
        "Buyer": {"Nickname": "COMPRADOR"},
    },
    {"ExternalOrderId": "2000002", "SiteId": "MLB", "LogisticType": "drop_off"},
    {"ExternalOrderId": "2000003", "SiteId": "MLM", "LogisticType": "custom"},
]


def python_blocks() -> list[str]:
    return PYTHON_BLOCK.findall(DOCS.read_text(encoding="utf-8"))


def seed(url: str) -> str:
    """Account 1, a key for it, orders 1 to 3, through the admin API; the key."""
    with httpx2.Client(base_url=url, headers=admin_headers(), timeout=30) as admin:
        account = admin.post("/admin/accounts", json={"Name": "Demo seller MLA"}).json()
        key = admin.post("/admin/api-keys", json={"AccountIds": [account["Id"]]}).json()
        imported = admin.put(f"/admin/accounts/{account['Id']}/orders", json={"Orders": DEMO_ORDERS}).json()
    assert account["Id"] == 1
    assert [order["Id"] for order in imported["Results"]] == [1, 2, 3]
    return str(key["ApiKey"])


def buyer_answers(url: str, api_key: str) -> None:
    """The buyer answers every conversation whose last message is the seller's."""
    with httpx2.Client(base_url=url, timeout=30) as http:
        for order in (1, 2, 3):
            found = http.get(f"/v2/orders/{order}/messages", params={"API_KEY": api_key, "accountId": 1})
            results = found.json()["Results"]
            if results and results[-1]["Direction"] == "outbound":
                reply = http.post(
                    f"/admin/orders/{order}/buyer-messages",
                    json={"Text": "¡Gracias!"},
                    headers=admin_headers(),
                )
                assert reply.status_code == 201, reply.text


def run_blocks(blocks: list[str], url: str, api_key: str) -> str:
    """Each block in one namespace, the buyer answering after each; everything they printed."""
    namespace: dict[str, Any] = {"__name__": "docs"}
    printed = io.StringIO()
    for number, block in enumerate(blocks, start=1):
        with contextlib.redirect_stdout(printed):
            try:
                exec(compile(block, f"docs/sdk.md block {number}", "exec"), namespace)
            except Exception as error:
                raise AssertionError(f"docs/sdk.md block {number} failed:\n{block}") from error
        buyer_answers(url, api_key)
    return printed.getvalue()


def test_the_examples_cover_every_method():
    text = "\n".join(python_blocks())
    methods = "send_message conversation message download_attachment message_options orders orders_page order"
    arguments = "AsyncClient RetryPolicy idempotency_key as_base64 attachment_name"
    for method in f"{methods} {arguments}".split():
        assert re.search(rf"\b{method}\b", text), method


async def test_every_python_block_of_the_docs_runs_in_order(tmp_path, monkeypatch, caplog):
    database_url = f"sqlite:///{tmp_path / 'docs.db'}"
    database = Database(database_url)
    await upgrade(database)
    await database.dispose()
    monkeypatch.chdir(tmp_path)  # the examples write factura.pdf and its download here
    with LiveServer(make_settings(database_url)) as server:
        api_key = seed(server.url)
        for name, value in {
            "POSTVENTA_URL": server.url,
            "POSTVENTA_API_KEY": api_key,
            "POSTVENTA_ACCOUNT_ID": "1",
        }.items():
            monkeypatch.setenv(name, value)
        # In a thread of its own: the examples call asyncio.run, which needs a thread without a loop.
        printed = await asyncio.to_thread(run_blocks, python_blocks(), server.url, api_key)

    for shown in (
        "True",  # the template ignored the text
        "True True",  # the same idempotency key: the same message, replayed
        "factura.pdf 48",
        "factura.pdf application/pdf",
        "SEND_INVOICE_LINK False 412 reason_not_available_in_country free_text 350",
        "2000001 MLA",
        "409 awaiting_buyer_reply",
        "order_not_found Order 999999 was not found in account 1.",
        "Conversation(order_id=1, pack_id=None, messages=[], status=ConversationStatus(status='unknown'",
    ):
        assert shown in printed, shown
    assert (tmp_path / "descargada-factura.pdf").read_bytes() == (tmp_path / "factura.pdf").read_bytes()
    retries = [(record.retry, record.reason) for record in caplog.records if record.name == "postventa_sdk"]
    assert retries == [(1, "503 http_503"), (2, "502 http_502")]
