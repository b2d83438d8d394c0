"""Secrets never reach the logs: `postventa serve` in a subprocess, at uvicorn's most verbose level
(`trace`: it logs every ASGI scope, headers included), and every byte it writes is searched for the
API keys, their secret parts and the admin tokens after a run of requests that carry them everywhere
a client may put them (query, JSON body, form bodies, header), through every kind of answer."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import update

from postventa.store.engine import Database
from postventa.store.tables import orders
from tests.conftest import ADMIN_TOKEN
from tests.factories import PEPPER, Tenant, make_order, make_tenant
from tests.servers import free_port

WRONG_ADMIN_TOKEN = "wrong-admin-token-" + secrets.token_urlsafe(12)
MAX_ATTACHMENT_BYTES = 4096  # a small body limit, so a 413 is cheap

# `postventa serve` with one route more: an unexpected failure whose text quotes the whole request
# (URL and headers), the worst case for the error logs of both structlog and uvicorn.
LAUNCHER = """
import sys

from fastapi import Request

import postventa.cli.main as cli
import postventa.wiring as wiring

create_app = wiring.create_app  # `serve` imports it from there when it runs


def create_app_with_a_bug(settings):
    app = create_app(settings)

    @app.get("/v2/orders/{orderId}/bug")
    async def bug(orderId: str, request: Request):
        raise RuntimeError(f"failed on {request.url} with {dict(request.headers)}")

    return app


wiring.create_app = create_app_with_a_bug
cli.app(["serve", "--host", "127.0.0.1", "--port", sys.argv[1]])
"""


@dataclass
class Served:
    """A `postventa serve` process and the files its stdout and stderr go to."""

    url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def stop(self) -> bytes:
        """Stop it the way an operator does (SIGINT) and return every byte it wrote."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.stdout.read_bytes() + self.stderr.read_bytes()


@pytest.fixture
def served(database_url: str, database: Database, tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    env = {
        **os.environ,
        "POSTVENTA_DATABASE_URL": database_url,
        "POSTVENTA_ADMIN_TOKEN": ADMIN_TOKEN,
        "POSTVENTA_API_KEY_PEPPER": PEPPER,
        "POSTVENTA_LOG_LEVEL": "trace",
        "POSTVENTA_EMBEDDED_WORKER": "true",
        "POSTVENTA_MELI_API_URL": "http://127.0.0.1:9",
        "POSTVENTA_MAX_ATTACHMENT_BYTES": str(MAX_ATTACHMENT_BYTES),
        "POSTVENTA_MAX_QUERY_BYTES": "2048",
        "POSTVENTA_RATE_LIMITS": "send=1000000/minute,read=1000000/minute",
        "POSTVENTA_TOKEN_KEY_FILE": str(tmp_path / "token.key"),
        "PYTHONUNBUFFERED": "1",
    }
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(port)], stdout=out, stderr=err, env=env, cwd=tmp_path
        )
    server = Served(f"http://127.0.0.1:{port}", process, stdout, stderr)
    try:
        _wait_until_up(server)
        yield server
    finally:
        server.stop()


def _wait_until_up(server: Served) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"postventa serve exited: {server.stop().decode(errors='replace')}")
        try:
            if httpx2.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("postventa serve did not start")


def wrong_key() -> str:
    """Well-formed (pv_<12 hex>_<secret>) but unknown."""
    return f"pv_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def secrets_of(*keys: str) -> list[str]:
    """Each key, and its secret part on its own."""
    return [part for key in keys for part in (key, key.split("_", 2)[2])]


async def raw_request(url: str, head: bytes) -> bytes:
    """Raw bytes on their own connection (what httpx2 would not send); the start of the answer."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port.rstrip("/")))
    try:
        writer.write(head)
        await writer.drain()
    except ConnectionError:
        pass  # the server answered and closed before reading it all
    answer = await asyncio.wait_for(reader.read(4096), timeout=10)
    writer.close()
    return answer


async def corrupt(database: Database, order_id: int) -> None:
    """A stored order no code path can read (a logistic type that does not exist): reads are a 500."""
    async with database.transaction(write=True) as connection:
        await connection.execute(update(orders).where(orders.c.id == order_id).values(logistic_type=999))


async def exercise(http: httpx2.AsyncClient, tenant: Tenant, database: Database, unknown: str) -> None:
    """Requests carrying the keys everywhere, through every kind of answer."""
    order = await make_order(database, tenant)
    brazilian = await make_order(database, tenant, SiteId="MLB")
    broken = await make_order(database, tenant, ExternalOrderId=f"BROKEN-{secrets.token_hex(4)}")
    sends = f"/v2/orders/{order}/messages"
    creds = tenant.credentials()
    expected: list[tuple[int, httpx2.Response]] = []

    async def expect(status: int, response: httpx2.Response) -> None:
        expected.append((status, response))

    await expect(200, await http.post(sends, params={**creds, "messageOptions": 4, "message": "Hola"}))
    await expect(409, await http.post(sends, params={**creds, "messageOptions": 4, "message": "Otra"}))
    await expect(400, await http.post(sends, params={**creds, "messageOptions": 9, "message": "x"}))
    await expect(
        412, await http.post(f"/v2/orders/{brazilian}/messages", params={**creds, "messageOptions": 2})
    )
    await expect(404, await http.post("/v2/orders/999999999/messages", params={**creds, "messageOptions": 4}))
    message_id = expected[0][1].json()
    for path in (
        "/v2/orders",
        f"/v2/orders/{order}",
        sends,
        f"{sends}/options",
        f"{sends}/{message_id}",
        f"{sends}/{message_id}/attachment",
    ):
        await expect(404 if path.endswith("attachment") else 200, await http.get(path, params=creds))
    # Keys in bodies and in the header.
    body = {**creds, "messageOptions": 4, "message": "x"}
    await expect(409, await http.post(sends, json=body))
    await expect(409, await http.post(sends, data=body))
    await expect(409, await http.post(sends, data=body, files={"file": ("a.txt", b"hola", "text/plain")}))
    await expect(
        200,
        await http.get(
            "/v2/orders", headers={"X-API-Key": tenant.api_key}, params={"accountId": tenant.account_id}
        ),
    )
    # Refused keys: unknown, and this key's prefix with another secret.
    prefix_only = tenant.api_key.rsplit("_", 1)[0]
    for key in (unknown, f"{prefix_only}_{secrets.token_urlsafe(32)}"):
        await expect(
            401, await http.get("/v2/orders", params={"API_KEY": key, "accountId": tenant.account_id})
        )
        await expect(401, await http.post(sends, json={**body, "API_KEY": key}))
    # Too large (declared and chunked), too long, and failures.
    big = {"fileBase64": base64.b64encode(os.urandom(30 * MAX_ATTACHMENT_BYTES)).decode()}
    await expect(413, await http.post(sends, params=creds, json=big))

    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    head = f"POST {sends}?API_KEY={tenant.api_key}&accountId={tenant.account_id} HTTP/1.1\r\n"
    chunked = f"{head}Host: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert b" 413 " in await raw_request(str(http.base_url), chunked.encode() + chunk * 10)
    await expect(414, await http.get("/v2/orders", params={**creds, "padding": "x" * 4096}))
    # uvicorn closes the connection after a failure: these go on their own connections.
    await corrupt(database, broken)
    close = {"Connection": "close"}
    await expect(500, await http.get(f"/v2/orders/{broken}", params=creds, headers=close))
    await expect(500, await http.get("/v2/orders", params=creds, headers=close))
    with_token = {**close, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    await expect(500, await http.get(f"/v2/orders/{order}/bug", params=creds, headers=with_token))
    # The admin API, with its token and with a wrong one.
    await expect(200, await http.get("/admin/accounts", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}))
    await expect(
        401, await http.get("/admin/accounts", headers={"Authorization": f"Bearer {WRONG_ADMIN_TOKEN}"})
    )
    for status, response in expected:
        assert response.status_code == status, (
            response.request.url.path,
            response.status_code,
            response.text,
        )


async def test_no_key_or_token_appears_in_any_log_line(served: Served, database: Database):
    tenant = await make_tenant(database, name="Logs")
    unknown = wrong_key()
    async with httpx2.AsyncClient(base_url=served.url, timeout=30) as http:
        await exercise(http, tenant, database, unknown)
    bad_line = f"GET /v2/orders?API_KEY={tenant.api_key} HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"
    assert b" 400 " in await raw_request(served.url, bad_line.encode())

    captured = served.stop()

    # The capture is real: request events, the error log and uvicorn's trace of every scope; never
    # uvicorn's own plain-text traceback of an exception (the edge keeps every one).
    text = captured.decode("utf-8", errors="replace")
    assert '"event": "request"' in text or '"event":"request"' in text
    assert "unexpected_error" in text
    assert "Exception in ASGI application" not in text
    assert "Started scope=" in text
    assert "pv_[redacted]" in text  # keys were there to redact
    for secret in [*secrets_of(tenant.api_key, unknown), ADMIN_TOKEN, WRONG_ADMIN_TOKEN]:
        assert secret.encode() not in captured, f"{secret[:8]}… leaked into the logs"
