"""The README's run command: the demo starts, its printed curl answers 200, and the loop runs, its own
webhook receiver printing the events of that message, verified; then the README's attachment examples
(JSON with base64, multipart with examples/factura.pdf) run as written against it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx2

from tests.e2e.conftest import wait_for
from tests.servers import free_port

POSTVENTA = str(Path(sys.executable).parent / "postventa")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_BASE_URL = "http://127.0.0.1:8000"


async def test_demo_prints_a_curl_that_works_and_the_buyer_answers(tmp_path: Path):
    port, emulator_port = free_port(), free_port()
    environment = {**os.environ, "COLUMNS": "200"}
    environment.pop("POSTVENTA_ADMIN_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        POSTVENTA,
        "demo",
        "--port",
        str(port),
        "--emulator-port",
        str(emulator_port),
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        printed = await asyncio.wait_for(_read_until(process, "Serving on"), timeout=60)
        send_curl = re.search(r"curl -s -X POST '([^']+)'", printed)
        assert send_curl, printed
        url = send_curl.group(1)
        async with httpx2.AsyncClient(timeout=10) as http:
            for _ in range(100):  # the server starts listening right after the guide is printed
                try:
                    sent = await http.post(url)
                    break
                except httpx2.ConnectError:
                    await asyncio.sleep(0.1)
            assert sent.status_code == 200, sent.text
            conversation_url = (
                url.split("/messages?")[0] + "/messages?" + url.split("?")[1].split("&messageOptions")[0]
            )

            async def answered() -> bool:
                messages = (await http.get(conversation_url)).json()["Results"]
                return [m["Status"] for m in messages] == ["sent", "received"]

            await wait_for(answered, timeout=30, every=0.5)
            # The demo's receiver prints each event it verified with the SDK (cli/demo_webhooks.py).
            message_id = sent.json()
            events = await asyncio.wait_for(
                _read_until_all(
                    process, [f"Webhook {kind}: account" for kind in ("message.sent", "message.received")]
                ),
                timeout=30,
            )
            sent_event = rf"Webhook message\.sent: account \d+, order \d+, message {message_id} is sent"
            assert re.search(sent_event + r" \(verified, msg_[0-9a-f]+\)", events), events
            assert re.search(r"Webhook message\.received: .* is received: '.+' \(verified, msg_", events), (
                events
            )
            assert "Webhook refused" not in events

            async def replied() -> bool:
                messages = (await http.get(conversation_url)).json()["Results"]
                return messages[-1]["Status"] == "received"

            options = (await http.get(conversation_url.replace("/messages?", "/messages/options?"))).json()
            assert {o["Reason"]["Value"]: o["Available"] for o in options["Results"]}["OTHER"] is True
            api_key = re.search(r"API_KEY=([^&]+)", url).group(1)  # type: ignore[union-attr]
            # The base64 example's file is "%PDF-1.4\n"; the multipart one's is examples/factura.pdf.
            sizes = [9, (PROJECT_ROOT / "examples" / "factura.pdf").stat().st_size]
            for command, size in zip(readme_attachment_examples(), sizes, strict=True):
                await wait_for(replied, timeout=30, every=0.5)  # as the README says: after a reply
                answered_id = run_example(command, api_key, f"http://127.0.0.1:{port}")
                messages = (await http.get(conversation_url)).json()["Results"]
                stored = next(message for message in messages if message["Id"] == int(answered_id))
                assert stored["Attachment"]["Extension"] == "pdf", stored
                assert stored["Attachment"]["Size"] == size, stored
        assert (tmp_path / "var" / "demo.db").exists()
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), timeout=20)


def readme_attachment_examples() -> list[str]:
    """The README's curl commands of the block that starts `KEY=pv_…`, continuation lines joined."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    block = readme[readme.index("```sh\nKEY=pv_") :].split("```", 2)[1]
    joined = block.replace("\\\n", " ")
    commands = [line.strip() for line in joined.splitlines() if line.strip().startswith("curl ")]
    assert len(commands) == 2, commands
    return commands


def run_example(command: str, api_key: str, base_url: str) -> str:
    """Run a README command with the shell, from the repository's root, `KEY` set: the message id."""
    result = subprocess.run(
        ["bash", "-c", command.replace(DEMO_BASE_URL, base_url)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "KEY": api_key},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answered = json.loads(result.stdout)
    assert isinstance(answered, str), result.stdout
    assert answered.isdigit(), result.stdout
    return answered


async def _read_until_all(process: asyncio.subprocess.Process, markers: list[str]) -> str:
    """What the demo prints until every marker has appeared."""
    printed = ""
    while not all(marker in printed for marker in markers):
        printed += await _read_until(process, "\n")
    return printed


async def _read_until(process: asyncio.subprocess.Process, marker: str) -> str:
    assert process.stdout is not None
    printed = ""
    while marker not in printed:
        line = await process.stdout.readline()
        if not line:
            raise AssertionError(f"the demo stopped before '{marker}':\n{printed}")
        printed += line.decode()
    return printed


def test_demo_table_lists_every_reason_row():
    import datetime as dt

    from postventa.cli.demo import demo_orders

    shows = json.dumps([order.shows for order in demo_orders(dt.date(2026, 11, 27))])
    for needed in (
        "REQUEST_VARIANTS",
        "billing",
        "SEND_INVOICE_LINK",
        "OTHER",
        "DELIVERY_PROMISE",
        "cancelled",
        "fulfillment",
        "pack",
    ):
        assert needed in shows
