"""The README's run command: the demo starts, its printed curl answers 200, and the loop runs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import httpx2

from tests.e2e.conftest import wait_for
from tests.servers import free_port

POSTVENTA = str(Path(sys.executable).parent / "postventa")


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
            options = (await http.get(conversation_url.replace("/messages?", "/messages/options?"))).json()
            assert {o["Reason"]["Value"]: o["Available"] for o in options["Results"]}["OTHER"] is True
        assert (tmp_path / "var" / "demo.db").exists()
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), timeout=20)


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
