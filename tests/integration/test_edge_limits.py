"""Hostile traffic at the HTTP edge (issue 16), against `postventa serve` in a process of its own
over TCP: oversized and slow request heads, slow bodies, clients that go away, large bodies with
a key that cannot succeed. Memory is read from the server's /proc entry while each attack runs.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx2
import orjson
import pytest

from postventa.store.engine import Database
from tests.conftest import ADMIN_TOKEN
from tests.factories import PEPPER, Tenant, make_order, make_tenant
from tests.integration.test_robustness import RawResponse, _read_response
from tests.servers import Running, served_process

MIB = 1024 * 1024
HEADER_TIMEOUT_SECONDS = 1.0
BODY_TIMEOUT_SECONDS = 2.0
KEEP_ALIVE_SECONDS = 1.0
LARGE_BODY_WAIT_SECONDS = 0.5
# What an attack may add to the server's resident memory (docs/operations.md: a refused head costs
# at most its limit and one read; a refused body one read).
MEMORY_BOUND_BYTES = 48 * MIB


@dataclass
class Served:
    """A `postventa serve` process: its port, its log, and its memory and sockets from /proc."""

    running: Running
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.running.log

    def resident_bytes(self) -> int:
        status = Path(f"/proc/{self.running.process.pid}/status").read_text()
        kilobytes = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        assert kilobytes is not None
        return int(kilobytes.group(1)) * 1024


@pytest.fixture(scope="module")
def served(
    database_url: str, database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    with served_process(
        tmp_path_factory.mktemp("edge"),
        admin_token=ADMIN_TOKEN,
        api_key_pepper=PEPPER,
        database_url=database_url,
        embedded_worker="false",
        meli_api_url="http://127.0.0.1:9",
        log_level="info",
        header_timeout_seconds=str(HEADER_TIMEOUT_SECONDS),
        body_timeout_seconds=str(BODY_TIMEOUT_SECONDS),
        keep_alive_seconds=str(KEEP_ALIVE_SECONDS),
        max_large_bodies="1",
        large_body_wait_seconds=str(LARGE_BODY_WAIT_SECONDS),
    ) as (running, url):
        yield Served(running, int(url.rsplit(":", 1)[1]))
        running.process.terminate()
        running.process.wait(timeout=30)


@pytest.fixture
async def tenant(database: Database) -> Tenant:
    return await make_tenant(database, name="Edge")


@pytest.fixture
async def http(served: Served) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=served.url, timeout=30) as client:
        yield client


class PeakMemory:
    """Samples the server's resident memory every few milliseconds while an attack runs."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.before = served.resident_bytes()
        self.peak = self.before
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PeakMemory:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, self.served.resident_bytes())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.served.resident_bytes())
            await asyncio.sleep(0.005)

    @property
    def growth(self) -> int:
        return self.peak - self.before


async def hang_up(writer: asyncio.StreamWriter, *tasks: asyncio.Task[RawResponse]) -> None:
    """Close a test connection for good: its pending reads cancelled, its socket closed."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, asyncio.CancelledError):
        pass


async def flood_headers(port: int, header_bytes: int, headers: int) -> tuple[RawResponse | None, int]:
    """Send a request head of `headers` fields of `header_bytes` each, reading meanwhile, until the
    server answers or stops reading; returns its answer (if any) and how many bytes were written."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(_read_response(reader))
    written = 0
    value = b"x" * header_bytes
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for index in range(headers):
            if answer.done():
                break
            writer.write(b"X-Flood-%d: " % index + value + b"\r\n")
            written += header_bytes
            await asyncio.wait_for(writer.drain(), timeout=10)
    except (ConnectionError, TimeoutError):
        pass
    try:
        return await asyncio.wait_for(answer, timeout=10), written
    except (asyncio.IncompleteReadError, ConnectionError):
        return None, written
    finally:
        await hang_up(writer, answer)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> tuple[float, bytes]:
    """How long until the server closes the connection, and what it said first."""
    started = time.monotonic()
    said = await asyncio.wait_for(reader.read(), timeout=seconds)
    return time.monotonic() - started, said


def error_of(raw: bytes) -> tuple[int, dict[str, object], dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)
    }
    return int(status_line.split()[1]), orjson.loads(body), headers


# 1. Header size and count --------------------------------------------------------------------


async def test_megabyte_headers_are_refused_431_without_growing_memory(served):
    async with PeakMemory(served) as memory:
        results = await asyncio.gather(*(flood_headers(served.port, MIB, 600) for _ in range(2)))

    for answer, written in results:
        assert answer is not None
        assert answer.status_code == 431
        assert orjson.loads(answer.content)["Code"] == "headers_too_large"
        assert answer.headers["connection"] == "close"
        assert written < 600 * MIB  # the server stopped reading long before the end
    assert memory.growth < MEMORY_BOUND_BYTES, f"grew {memory.growth / MIB:.0f} MiB"


async def test_too_many_header_fields_are_431(served):
    answer, _ = await flood_headers(served.port, 10, 101)

    assert answer is not None
    assert answer.status_code == 431
    assert "header fields" in orjson.loads(answer.content)["Message"]


async def test_ordinary_requests_pass_the_head_limits(served, http):
    headers = {f"X-Trace-{index}": "v" * 200 for index in range(50)}

    response = await http.get("/healthz", headers=headers)

    assert response.status_code == 200


# 2. Slow heads, slow bodies, idle connections ----------------------------------------------


async def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout(served):
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        seconds, said = await closed_within(reader, HEADER_TIMEOUT_SECONDS + 5)
    finally:
        await hang_up(writer)

    assert HEADER_TIMEOUT_SECONDS * 0.9 <= seconds < HEADER_TIMEOUT_SECONDS + 2
    status, body, _ = error_of(said)
    assert (status, body["Code"]) == (408, "request_timeout")


async def test_half_a_request_line_is_closed_after_the_head_timeout(served):
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(b"POST /v2/orders/1/mess")
        seconds, said = await closed_within(reader, HEADER_TIMEOUT_SECONDS + 5)
    finally:
        await hang_up(writer)

    assert seconds < HEADER_TIMEOUT_SECONDS + 2
    assert error_of(said)[0] == 408


async def test_a_head_dripped_a_byte_at_a_time_is_closed_all_the_same(served):
    """The time bounds the whole head, not the pause between its bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    started = time.monotonic()
    answer = asyncio.create_task(reader.read())
    try:
        for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 200:
            if answer.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
        said = await asyncio.wait_for(answer, timeout=5)
    finally:
        await hang_up(writer)

    assert time.monotonic() - started < HEADER_TIMEOUT_SECONDS + 2
    assert error_of(said)[0] == 408


async def test_a_body_that_stops_is_answered_408_after_the_body_timeout(served, tenant):
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    query = urlencode(tenant.credentials())
    try:
        writer.write(
            f"POST /v2/orders/1/messages?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
        )
        seconds, said = await closed_within(reader, BODY_TIMEOUT_SECONDS + 5)
    finally:
        await hang_up(writer)

    status, body, headers = error_of(said)
    assert (status, body["Code"], headers["connection"]) == (408, "request_timeout", "close")
    assert seconds < BODY_TIMEOUT_SECONDS + 2


async def test_a_later_head_on_a_kept_alive_connection_gets_the_whole_timeout(served):
    """The clock starts at each head's first byte, not at the connection's or an earlier head's."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = await asyncio.wait_for(_read_response(reader), timeout=5)
        await asyncio.sleep(HEADER_TIMEOUT_SECONDS * 0.6)  # past half the first head's time
        writer.write(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        seconds, said = await closed_within(reader, HEADER_TIMEOUT_SECONDS + 5)
    finally:
        await hang_up(writer)

    assert first.status_code == 200
    assert HEADER_TIMEOUT_SECONDS * 0.9 <= seconds < HEADER_TIMEOUT_SECONDS + 2
    assert error_of(said)[0] == 408


async def test_an_idle_kept_alive_connection_is_closed(served):
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = await asyncio.wait_for(_read_response(reader), timeout=5)
        seconds, said = await closed_within(reader, KEEP_ALIVE_SECONDS + 5)
    finally:
        await hang_up(writer)

    assert answer.status_code == 200
    assert said == b""
    assert seconds < KEEP_ALIVE_SECONDS + 2


# 5. A client that goes away ----------------------------------------------------------------


def metric_count(text: str, route: str, status: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("postventa_http_requests_total{") and f'route="{route}"' in line:
            if f'status="{status}"' in line:
                total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v2/orders/1/messages", ""),
        ("/webhooks/mercadolibre", ""),
        ("/admin/accounts", f"Authorization: Bearer {ADMIN_TOKEN}\r\n"),
    ],
)
async def test_a_client_that_goes_away_mid_body_is_a_499_not_a_server_error(served, http, path, headers):
    _reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    await hang_up(writer)
    await asyncio.sleep(0.5)

    metrics = (await http.get("/metrics")).text
    route = path if path != "/v2/orders/1/messages" else "/v2/orders/{orderId}/messages"
    assert metric_count(metrics, route, "500") == 0
    assert metric_count(metrics, route, "499") >= 1
    log = served.log.read_text()
    assert "Traceback" not in log
    assert "Exception in ASGI application" not in log
    disconnects = [line for line in log.splitlines() if '"client_disconnected"' in line]
    assert disconnects
    assert all('"level":"info"' in line.replace(" ", "") for line in disconnects)


# 6. Large bodies: the key first, a bounded number at once ------------------------------------


async def stream_large_send(
    port: int, query: str, body_bytes: int, *, pause_after: int | None = None
) -> tuple[RawResponse | None, int]:
    """A JSON send announcing `body_bytes`, streamed in 256 KiB parts while reading, until the server
    answers or stops reading (or, with `pause_after`, stalled after that many bytes); the answer and
    the bytes written."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(_read_response(reader))
    written = 0
    part = b"A" * (256 * 1024)
    try:
        writer.write(
            f"POST /v2/orders/1/messages?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {body_bytes}\r\n\r\n".encode()
        )
        writer.write(b'{"fileBase64": "')
        while written < body_bytes - 1024 and not answer.done():
            if pause_after is not None and written >= pause_after:
                await asyncio.wait({answer}, timeout=60)
                break
            writer.write(part)
            written += len(part)
            await asyncio.wait_for(writer.drain(), timeout=5)
    except (ConnectionError, TimeoutError):
        pass
    try:
        return await asyncio.wait_for(answer, timeout=10), written
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        return None, written
    finally:
        await hang_up(writer, answer)


async def test_thirty_large_sends_with_an_unknown_key_are_401_before_their_bodies(served):
    query = urlencode({"API_KEY": "pv_000000000000_nope", "accountId": 1})

    async with PeakMemory(served) as memory:
        results = await asyncio.gather(*(stream_large_send(served.port, query, 34 * MIB) for _ in range(30)))

    for answer, written in results:
        assert answer is not None
        assert answer.status_code == 401
        assert answer.headers["connection"] == "close"
        assert written < 34 * MIB
    assert memory.growth < MEMORY_BOUND_BYTES, f"grew {memory.growth / MIB:.0f} MiB"


async def test_a_key_over_its_limit_is_429_before_a_large_body(database, served, http):
    async with database.transaction(write=True) as connection:
        from postventa.services import admin
        from tests.factories import now

        account = await admin.create_account(connection, "Limited", now())
        key = await admin.create_api_key(
            connection, [account.id], PEPPER, now(), "send=1/minute,read=100/minute"
        )
    tenant = Tenant(account_id=account.id, api_key=key.api_key, key_id=key.id)
    order = await make_order(database, tenant)
    first = await http.post(
        f"/v2/orders/{order}/messages", params=tenant.credentials(messageOptions=4, message="Hola")
    )
    assert first.status_code == 200, first.text

    answer, written = await stream_large_send(served.port, urlencode(tenant.credentials()), 8 * MIB)

    assert answer is not None
    assert answer.status_code == 429
    assert "retry-after" in answer.headers
    assert written < 8 * MIB


async def test_large_bodies_beyond_the_slots_wait_then_get_503_with_retry_after(served, tenant):
    query = urlencode(tenant.credentials())
    holder = asyncio.create_task(stream_large_send(served.port, query, 4 * MIB, pause_after=512 * 1024))
    await asyncio.sleep(0.3)  # the first large body holds the only slot, stalled

    started = time.monotonic()
    answer, _ = await stream_large_send(served.port, query, 4 * MIB)
    waited = time.monotonic() - started

    held, _ = await holder  # the stalled body ran out of time and gave its slot back
    assert held is not None
    assert held.status_code == 408
    assert answer is not None
    assert answer.status_code == 503
    assert orjson.loads(answer.content)["Code"] == "server_busy"
    assert int(answer.headers["retry-after"]) >= 1
    assert waited >= LARGE_BODY_WAIT_SECONDS * 0.9
