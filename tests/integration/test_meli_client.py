"""The Mercado Libre client over real sockets: what each way a call can end becomes, and its reads
against the emulator (caps, a conversation with its status, a message, missed feeds).

A scripted loopback server answers each request as the test says (a status and body, a wrong body,
silence, a dropped connection), so that every branch of the classification runs on the real
HTTP client: a write that may have arrived is "unknown" (reconciled before any retry), a call that
certainly did not leave is "transient".
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx2
import pytest

from postventa.domain.delivery import FailureKind
from postventa.emulator import EmulatorConfig, create_emulator_app
from postventa.meli.client import MeliClient, MeliError
from tests.emulator.world import LiveServer, World
from tests.servers import free_port

Answer = Callable[[bytes], bytes | None]  # the request's bytes -> the response (None: drop the line)


def http_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class ScriptedServer:
    """Reads one whole request per connection turn and answers with `answer(request)`."""

    answer: Answer
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                response = self.answer(request)
                if response is None:
                    break
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Awaitable[ScriptedServer]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> ScriptedServer:
        scripted = ScriptedServer(answer)
        server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        servers.append(server)
        scripted.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return scripted

    yield start
    for server in servers:
        server.close()


async def send(client: MeliClient) -> object:
    return await client.send_message("token", 2000001, 10, 20, "hola", [])


async def failed_send(url: str, **options: float) -> MeliError:
    """What a message sent to `url` fails with (it must fail)."""
    client = MeliClient(url, **options)
    try:
        with pytest.raises(MeliError) as raised:
            await send(client)
    finally:
        await client.aclose()
    return raised.value


async def test_a_message_goes_out_as_json_with_the_token(serve) -> None:
    answer = json.dumps({"id": "0123abcd", "text": "hola", "status": "available"}).encode()
    server = await serve(lambda _request: http_response(201, answer, {"content-type": "application/json"}))
    client = MeliClient(server.url)
    try:
        message = await send(client)
    finally:
        await client.aclose()
    request = server.requests[0]
    head, body = request.split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /messages/packs/2000001/sellers/10?tag=post_sale HTTP/1.1")
    assert b"\r\nAuthorization: Bearer token" in head
    assert b"\r\nContent-Type: application/json" in head
    assert json.loads(body) == {"from": {"user_id": "10"}, "to": {"user_id": "20"}, "text": "hola"}
    assert message.id == "0123abcd"  # type: ignore[attr-defined]


async def test_an_error_status_is_classified_with_its_retry_after(serve) -> None:
    body = json.dumps({"message": "too many requests", "error": "local_rate_limited"}).encode()
    server = await serve(lambda _request: http_response(429, body, {"Retry-After": "7"}))
    error = await failed_send(server.url)
    assert error.status == 429
    assert error.failure.kind is FailureKind.TRANSIENT
    assert error.failure.retry_after_seconds == 7.0


async def test_a_success_without_json_is_an_unknown_outcome(serve) -> None:
    server = await serve(lambda _request: http_response(200, b"<html>maintenance</html>"))
    error = await failed_send(server.url)
    assert error.status == 200
    assert error.failure.kind is FailureKind.UNKNOWN
    assert error.failure.code == "marketplace_bad_response"


async def test_a_dropped_write_is_unknown_and_a_dropped_read_is_transient(serve) -> None:
    server = await serve(lambda _request: None)
    client = MeliClient(server.url)
    try:
        with pytest.raises(MeliError) as write:
            await send(client)
        with pytest.raises(MeliError) as read:
            await client.order("token", 2000001)
    finally:
        await client.aclose()
    assert write.value.failure.kind is FailureKind.UNKNOWN
    assert write.value.failure.code == "marketplace_no_response"
    assert read.value.failure.kind is FailureKind.TRANSIENT


async def test_a_silent_server_times_the_write_out_as_unknown(serve) -> None:
    server = await serve(lambda _request: b"")  # reads the request, never answers
    error = await failed_send(server.url, read_timeout_seconds=0.3)
    assert error.failure.kind is FailureKind.UNKNOWN
    assert "Timeout" in error.failure.message


async def test_nobody_listening_is_transient() -> None:
    error = await failed_send(f"http://127.0.0.1:{free_port()}")
    assert error.failure.kind is FailureKind.TRANSIENT
    assert error.failure.code == "marketplace_unreachable"


async def test_connections_are_kept_between_calls(serve) -> None:
    answer = json.dumps({"id": 5, "status": "paid"}).encode()
    server = await serve(lambda _request: http_response(200, answer))
    client = MeliClient(server.url)
    try:
        for _ in range(5):
            await client.order("token", 5)
    finally:
        await client.aclose()
    assert len(server.requests) == 5
    assert server.connections == 1


async def test_calls_go_through_the_proxy_the_environment_names(serve, monkeypatch) -> None:
    # HTTP_PROXY names a proxy (here a scripted server); the client asks it for the absolute URL.
    answer = json.dumps({"id": "0123abcd", "text": "hola", "status": "available"}).encode()
    proxy = await serve(lambda _request: http_response(201, answer, {"content-type": "application/json"}))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = MeliClient("http://api.mercadolibre.invalid")
    try:
        await send(client)
    finally:
        await client.aclose()
    assert proxy.requests[0].startswith(
        b"POST http://api.mercadolibre.invalid/messages/packs/2000001/sellers/10?tag=post_sale HTTP/1.1"
    )


async def test_no_proxy_exempts_the_host(serve, monkeypatch) -> None:
    answer = json.dumps({"id": "0123abcd", "text": "hola", "status": "available"}).encode()
    server = await serve(lambda _request: http_response(201, answer, {"content-type": "application/json"}))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = MeliClient(server.url)
    try:
        await send(client)
    finally:
        await client.aclose()
    assert server.requests[0].startswith(b"POST /messages/packs/")


# --- the reads over real HTTP against the emulator ---------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[LiveServer]:
    """The emulator on a loopback port; its callback URL answers nothing, so every notification ends
    in /missed_feeds after one quick retry."""
    config = EmulatorConfig(
        notify_url=f"http://127.0.0.1:{free_port()}/notify",
        notify_retry_delays_seconds=(0.01,),
        notify_timeout_seconds=1.0,
    )
    with LiveServer(create_emulator_app(config)) as server:
        yield server


@pytest.fixture
async def world(emulator: LiveServer) -> AsyncIterator[World]:
    async with httpx2.AsyncClient(base_url=emulator.url) as http:
        yield World(http)


@pytest.fixture
async def meli(emulator: LiveServer) -> AsyncIterator[MeliClient]:
    client = MeliClient(emulator.url)
    yield client
    await client.aclose()


async def test_caps_are_read_as_mercado_libre_sends_them(world: World, meli: MeliClient) -> None:
    seller = await world.seller("MLA")
    order = await world.order(seller)
    raw = await world.http.get(
        f"/messages/action_guide/packs/{order['Key']}/caps_available",
        params={"tag": "post_sale"},
        headers=seller.headers,
    )
    caps = await meli.caps_available(seller.access_token, order["Key"], application=seller.client_id)
    assert raw.status_code == 200
    assert caps == {entry["option_id"]: entry["cap_available"] for entry in raw.json()}
    assert "OTHER" in caps


async def test_a_conversation_is_read_with_its_status_and_left_unread(world: World, meli: MeliClient) -> None:
    seller = await world.seller("MLA")
    order = await world.order(seller)
    first = await world.buyer_writes(order["Key"], "Hola")
    await world.buyer_writes(order["Key"], "¿Cuándo llega?")
    read = await meli.conversation_read(
        seller.access_token, order["Key"], seller.id, application=seller.client_id
    )
    assert [m.text for m in read.messages if m.from_user_id != seller.id][-2:] in (
        ["Hola", "¿Cuándo llega?"],
        ["¿Cuándo llega?", "Hola"],
    )
    assert read.status.status == "active"
    assert not read.status.is_agent
    assert read.status.path == f"/packs/{order['Key']}/sellers/{seller.id}"
    message = await meli.message(seller.access_token, first, application=seller.client_id)
    assert message.id == first
    assert message.read_at is None  # the read above did not mark it read
    assert message.pack_id == order["Key"]
    assert message.created_at is not None


async def test_a_message_read_on_mercado_libre_has_its_read_time(world: World, meli: MeliClient) -> None:
    seller = await world.seller("MLA")
    order = await world.order(seller)
    await world.buyer_writes(order["Key"])
    sent = await world.send(seller, order["Key"], "Llega mañana")
    message_id = sent.json()["id"]
    read = await world.http.post(f"/_emulator/messages/{message_id}/read")
    message = await meli.message(seller.access_token, message_id, application=seller.client_id)
    assert read.status_code == 200
    assert message.read_at is not None
    assert message.from_user_id == seller.id
    assert message.client_id == seller.client_id  # written by the seller's application


async def test_a_message_mercado_libre_does_not_have_is_not_found(world: World, meli: MeliClient) -> None:
    seller = await world.seller("MLA")
    with pytest.raises(MeliError) as missing:
        await meli.message(seller.access_token, "0" * 32, application=seller.client_id)
    assert missing.value.status == 404
    assert missing.value.failure.code == "message_not_found"


async def test_missed_feeds_are_the_notifications_the_callback_never_took(
    world: World, meli: MeliClient
) -> None:
    seller = await world.seller("MLA")
    order = await world.order(seller)
    written = await world.buyer_writes(order["Key"])
    deadline = time.monotonic() + 10
    missed: list[tuple[object, object]] = []
    while ("messages", written) not in missed and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        feeds = await meli.missed_feeds(seller.access_token, seller.client_id)
        missed = [(feed["topic"], feed["resource"]) for feed in feeds]
    assert ("messages", written) in missed
    assert ("orders_v2", f"/orders/{order['OrderId']}") in missed
