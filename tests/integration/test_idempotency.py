"""The send's Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) over HTTP, on SQLite and
PostgreSQL: a retry replays the recorded response and stores nothing new; the key with another
request is 422, while its first request runs 409; refusals are recorded, unexpected failures are not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from structlog.testing import capture_logs

from postventa.api.routes import messages as messages_route
from postventa.domain.errors import PostventaError
from postventa.domain.parameters import Parameters
from postventa.services import idempotency
from postventa.store import idempotency as idempotency_store
from postventa.store.engine import Database
from postventa.wiring import create_app
from tests.conftest import LiveServer, make_settings
from tests.factories import Tenant, buyer_replies, make_order, make_tenant
from tests.integration.http_helpers import (
    PDF,
    answered_order,
    assert_accepted,
    assert_rate_limit_headers,
    assert_refused,
    conversation,
    custom_client,
    messages_url,
)

TEXT = {"messageOptions": "4", "message": "Hola"}
REPLAYED = "idempotent-replayed"


def new_key() -> str:
    return f"key-{secrets.token_hex(8)}"


async def send_keyed(
    http: httpx2.AsyncClient, tenant: Tenant, order_id: int, key: str, **params: Any
) -> httpx2.Response:
    """A send with the parameters in the query string and the Idempotency-Key header."""
    return await http.post(
        messages_url(order_id), params=tenant.credentials(**params), headers={"Idempotency-Key": key}
    )


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@asynccontextmanager
async def app_client(
    database_url: str, database: Database, *, clock: Clock | None = None, **overrides: object
) -> AsyncIterator[httpx2.AsyncClient]:
    """The application in process, with a test clock; app exceptions become 500s, as on the wire."""
    app = create_app(make_settings(database_url, **overrides), database=database, clock=clock or Clock())
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://postventa.test") as http:
        yield http


@pytest.fixture(scope="module")
def server(database_url: str, database: Database) -> Iterator[LiveServer]:
    """A real uvicorn server of the backend, without the delivery worker."""
    with LiveServer(make_settings(database_url, embedded_worker=False)) as live:
        yield live


@pytest.fixture
async def wire(server: LiveServer) -> AsyncIterator[httpx2.AsyncClient]:
    limits = httpx2.Limits(max_connections=20, max_keepalive_connections=0)
    async with httpx2.AsyncClient(base_url=server.url, limits=limits, timeout=60) as http:
        yield http


def assert_replay_of(replay: httpx2.Response, first: httpx2.Response) -> None:
    assert replay.status_code == first.status_code
    assert replay.content == first.content
    assert replay.headers["content-type"] == first.headers["content-type"]
    assert replay.headers.get("location") == first.headers.get("location")
    assert replay.headers[REPLAYED] == "true"
    assert REPLAYED not in first.headers


def text_fingerprint(tenant: Tenant, order_id: int, **params: str) -> str:
    """The fingerprint of a query-string send with these parameters (what the route computes)."""
    parameters = Parameters.collect([list(tenant.credentials(**params).items())])
    return idempotency.request_fingerprint("POST", str(order_id), tenant.account_id, parameters)


async def insert_running(
    database: Database, tenant: Tenant, key: str, request_hash: str, *, locked_until: dt.datetime
) -> None:
    now = dt.datetime.now(dt.UTC)
    async with database.transaction(write=True) as connection:
        lock = await idempotency_store.insert_running(
            connection,
            api_key_id=tenant.key_id,
            key=key,
            request_hash=request_hash,
            now=now,
            locked_until=locked_until,
            expires_at=now + dt.timedelta(hours=1),
        )
    assert lock is not None


# --- replay -----------------------------------------------------------------------------------------


async def test_retry_after_a_client_timeout_replays_the_same_message(server, wire, database, monkeypatch):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    key = new_key()
    original = messages_route.send_message

    async def slow_send_message(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.8)
        return await original(*args, **kwargs)

    monkeypatch.setattr(messages_route, "send_message", slow_send_message)
    async with httpx2.AsyncClient(base_url=server.url, timeout=httpx2.Timeout(10, read=0.2)) as impatient:
        with pytest.raises(httpx2.ReadTimeout):
            await send_keyed(impatient, tenant, order_id, key, **TEXT)

    retries = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the client retries while the first request still runs
        retry = await send_keyed(wire, tenant, order_id, key, **TEXT)
        retries.append(retry)
        if retry.status_code != 409:
            break
        assert_refused(retry, 409, "idempotency_key_in_use")
        await asyncio.sleep(0.1)

    replay = retries[-1]
    message_id = assert_accepted(replay)
    assert replay.headers[REPLAYED] == "true"
    assert replay.headers["location"] == f"/v2/orders/{order_id}/messages/{message_id}"
    assert_rate_limit_headers(replay)
    assert [message["Id"] for message in await conversation(wire, tenant, order_id)] == [message_id]


async def test_quoted_and_bare_forms_of_a_key_are_the_same_key(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    key = new_key()

    first = await send_keyed(client, tenant, order_id, f'"{key}"', **TEXT)
    replay = await send_keyed(client, tenant, order_id, key, **TEXT)

    assert_accepted(first)
    assert_replay_of(replay, first)
    assert len(await conversation(client, tenant, order_id)) == 1


async def test_a_send_without_the_header_is_not_idempotent(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    first = await client.post(messages_url(order_id), params=tenant.credentials(**TEXT))
    second = await client.post(messages_url(order_id), params=tenant.credentials(**TEXT))

    assert_accepted(first)
    assert_refused(second, 409, "awaiting_buyer_reply")
    assert REPLAYED not in first.headers


def multipart(boundary: str, fields: dict[str, str], file_name: str, content: bytes) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


async def test_multipart_retry_with_another_boundary_is_a_replay(client, database):
    tenant = await make_tenant(database)
    order_id = await answered_order(client, database, tenant)
    key = new_key()
    fields = {"API_KEY": tenant.api_key, "accountId": str(tenant.account_id), **TEXT}

    async def post(boundary: str, content: bytes = PDF) -> httpx2.Response:
        return await client.post(
            messages_url(order_id),
            content=multipart(boundary, fields, "factura.pdf", content),
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Idempotency-Key": key,
            },
        )

    first = await post("first-boundary-1111")
    replay = await post("second-boundary-2222")
    other_file = await post("third-boundary-3333", PDF + b"%changed\n")

    message_id = assert_accepted(first)
    assert_replay_of(replay, first)
    assert_refused(other_file, 422, "idempotency_key_reused")
    messages = await conversation(client, tenant, order_id)
    assert [message["Id"] for message in messages if message["Attachment"]] == [message_id]


# --- refusals of the key ------------------------------------------------------------------------------


async def test_the_key_with_another_request_is_422_and_stores_nothing(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    key = new_key()

    first = await send_keyed(client, tenant, order_id, key, **TEXT)
    reused = await send_keyed(client, tenant, order_id, key, messageOptions="4", message="Chau")
    replay = await send_keyed(client, tenant, order_id, key, **TEXT)

    assert_accepted(first)
    assert_refused(reused, 422, "idempotency_key_reused")
    assert REPLAYED not in reused.headers
    assert_replay_of(replay, first)  # the 422 was not recorded
    assert [message["Text"] for message in await conversation(client, tenant, order_id)] == ["Hola"]


async def test_a_duplicate_while_the_first_request_runs_is_409(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    key = new_key()
    in_a_minute = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    await insert_running(
        database, tenant, key, text_fingerprint(tenant, order_id, **TEXT), locked_until=in_a_minute
    )

    duplicate = await send_keyed(client, tenant, order_id, key, **TEXT)
    other_request = await send_keyed(client, tenant, order_id, key, messageOptions="4", message="Chau")

    assert_refused(duplicate, 409, "idempotency_key_in_use")
    assert_refused(other_request, 422, "idempotency_key_reused")
    assert await conversation(client, tenant, order_id) == []


async def test_a_running_key_whose_lock_ran_out_is_taken_over(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    key = new_key()
    a_second_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await insert_running(
        database, tenant, key, text_fingerprint(tenant, order_id, **TEXT), locked_until=a_second_ago
    )

    taken_over = await send_keyed(client, tenant, order_id, key, **TEXT)
    replay = await send_keyed(client, tenant, order_id, key, **TEXT)

    assert_accepted(taken_over)
    assert_replay_of(replay, taken_over)
    assert len(await conversation(client, tenant, order_id)) == 1


@pytest.mark.parametrize(
    "value",
    ["", " ", "two words", '"unterminated', '"a"b"', '""', '"bad \\escape"', "x" * 256, "clé"],
)
async def test_a_malformed_key_is_400(client, database, value):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await client.post(
        messages_url(order_id),
        params=tenant.credentials(**TEXT),
        headers=[(b"Idempotency-Key", value.encode("latin-1"))],
    )

    assert_refused(response, 400, "invalid_idempotency_key")
    assert await conversation(client, tenant, order_id) == []


@pytest.mark.parametrize("value", ["a", "x" * 255, '"with space and \\" quote"', "550e8400-e29b-41d4-a716"])
async def test_well_formed_keys_are_taken(client, database, value):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await client.post(
        messages_url(order_id), params=tenant.credentials(**TEXT), headers={"Idempotency-Key": value}
    )

    assert_accepted(response)


async def test_the_same_key_under_another_api_key_is_independent(client, database):
    first_tenant, second_tenant = await make_tenant(database), await make_tenant(database)
    first_order, second_order = (
        await make_order(database, first_tenant),
        await make_order(database, second_tenant),
    )
    key = new_key()

    first = await send_keyed(client, first_tenant, first_order, key, **TEXT)
    second = await send_keyed(client, second_tenant, second_order, key, **TEXT)

    assert assert_accepted(first) != assert_accepted(second)
    assert REPLAYED not in second.headers


async def test_an_expired_key_is_treated_as_new(database_url, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    key = new_key()
    clock = Clock()
    async with app_client(database_url, database, clock=clock, idempotency_ttl_seconds=60) as http:
        first = await send_keyed(http, tenant, order_id, key, **TEXT)
        await buyer_replies(database, order_id)
        clock.now += dt.timedelta(seconds=61)
        again = await send_keyed(http, tenant, order_id, key, **TEXT)

    assert assert_accepted(again) != assert_accepted(first)
    assert REPLAYED not in again.headers


async def test_replays_count_against_the_rate_limit(database_url, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    key = new_key()
    async with custom_client(database_url, database, rate_limits="send=2/minute,read=5/minute") as http:
        first = await send_keyed(http, tenant, order_id, key, **TEXT)
        replay = await send_keyed(http, tenant, order_id, key, **TEXT)
        limited = await send_keyed(http, tenant, order_id, key, **TEXT)

    assert_replay_of(replay, first)
    assert replay.headers["x-ratelimit-remaining"] == "0"
    assert_refused(limited, 429, "rate_limited")


# --- what is recorded ---------------------------------------------------------------------------------


async def test_a_refused_send_replays_its_refusal(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    key = new_key()
    assert_accepted(await client.post(messages_url(order_id), params=tenant.credentials(**TEXT)))

    refused = await send_keyed(client, tenant, order_id, key, messageOptions="4", message="¿Llegó?")
    await buyer_replies(database, order_id)  # a new request would be accepted now
    replay = await send_keyed(client, tenant, order_id, key, messageOptions="4", message="¿Llegó?")

    assert_refused(refused, 409, "awaiting_buyer_reply")
    assert_refused(replay, 409, "awaiting_buyer_reply")
    assert_replay_of(replay, refused)
    assert len(await conversation(client, tenant, order_id)) == 2  # the first send and the reply


async def test_a_precondition_refusal_is_replayed(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)  # Argentina: no SEND_INVOICE_LINK
    key = new_key()

    refused = await send_keyed(client, tenant, order_id, key, messageOptions="3", message="https://x.test")
    replay = await send_keyed(client, tenant, order_id, key, messageOptions="3", message="https://x.test")

    assert refused.status_code == 412
    assert_replay_of(replay, refused)


async def test_an_unexpected_failure_releases_the_key(database_url, database, monkeypatch):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    key = new_key()

    async def broken_send_message(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    async with app_client(database_url, database) as http:
        monkeypatch.setattr(messages_route, "send_message", broken_send_message)
        with capture_logs() as logs:  # and skip rendering the traceback on the console
            failed = await send_keyed(http, tenant, order_id, key, **TEXT)
        monkeypatch.undo()
        retried = await send_keyed(http, tenant, order_id, key, **TEXT)

    assert failed.status_code == 500
    assert "unexpected_error" in [entry["event"] for entry in logs]
    assert failed.headers["content-type"].startswith("text/plain")
    assert_accepted(retried)
    assert REPLAYED not in retried.headers


async def test_a_failure_recording_the_response_stores_no_message(database_url, database, monkeypatch):
    """The response is recorded in the message's transaction: neither is kept without the other."""
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    key = new_key()

    async def broken_complete(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("crash after the message was written")

    async with app_client(database_url, database) as http:
        monkeypatch.setattr(idempotency, "complete", broken_complete)
        with capture_logs() as logs:
            failed = await send_keyed(http, tenant, order_id, key, **TEXT)
        monkeypatch.undo()
        assert await conversation(http, tenant, order_id) == []
        retried = await send_keyed(http, tenant, order_id, key, **TEXT)

    assert failed.status_code == 500
    assert "unexpected_error" in [entry["event"] for entry in logs]
    assert_accepted(retried)
    assert REPLAYED not in retried.headers


async def test_ten_simultaneous_identical_requests_store_one_message(wire, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    key = new_key()

    responses = await asyncio.gather(*(send_keyed(wire, tenant, order_id, key, **TEXT) for _ in range(10)))

    accepted = [response for response in responses if response.status_code == 200]
    assert accepted, [(response.status_code, response.text) for response in responses]
    assert Counter(response.status_code for response in responses).keys() <= {200, 409}
    for response in responses:
        if response.status_code == 409:
            assert_refused(response, 409, "idempotency_key_in_use")
    assert len({response.text for response in accepted}) == 1
    stored = await conversation(wire, tenant, order_id)
    assert [message["Id"] for message in stored] == [assert_accepted(accepted[0])]


# --- the store's fences ---------------------------------------------------------------------------------


async def test_a_request_whose_lock_was_taken_over_cannot_record(database):
    tenant = await make_tenant(database)
    start = dt.datetime.now(dt.UTC)
    claim = {"api_key_id": tenant.key_id, "key": new_key(), "request_hash": "a" * 64, "ttl_seconds": 600}
    async with database.transaction(write=True) as connection:
        first = await idempotency.claim_key(connection, now=start, **claim)
    later = start + dt.timedelta(seconds=idempotency.LOCK_SECONDS + 1)
    async with database.transaction(write=True) as connection:
        second = await idempotency.claim_key(connection, now=later, **claim)
    assert isinstance(first, idempotency_store.KeyLock)
    assert isinstance(second, idempotency_store.KeyLock)
    response = idempotency_store.StoredResponse(200, {"content-type": "application/json"}, b'"1"')

    async with database.transaction(write=True) as connection:
        with pytest.raises(PostventaError) as refused:
            await idempotency.complete(connection, first, response)
        await idempotency.complete(connection, second, response)
    async with database.transaction(write=True) as connection:
        replay = await idempotency.claim_key(connection, now=later, **claim)

    assert refused.value.refusal.code == "idempotency_key_in_use"
    assert replay == response


async def test_an_expired_row_left_by_the_purge_is_replaced(database, monkeypatch):
    tenant = await make_tenant(database)
    start = dt.datetime.now(dt.UTC)
    claim = {"api_key_id": tenant.key_id, "key": new_key(), "ttl_seconds": 60}
    async with database.transaction(write=True) as connection:
        first = await idempotency.claim_key(connection, now=start, request_hash="a" * 64, **claim)
        assert isinstance(first, idempotency_store.KeyLock)
        await idempotency.complete(connection, first, idempotency_store.StoredResponse(200, {}, b"1"))

    async def purge_nothing(*_args: Any) -> int:
        return 0

    monkeypatch.setattr(idempotency_store, "purge_expired", purge_nothing)
    async with database.transaction(write=True) as connection:
        replaced = await idempotency.claim_key(
            connection, now=start + dt.timedelta(seconds=61), request_hash="b" * 64, **claim
        )

    assert isinstance(replaced, idempotency_store.KeyLock)
    assert replaced.id == first.id


async def test_the_openapi_document_declares_the_key_and_its_answers(client):
    document = (await client.get("/openapi.json")).json()
    send = document["paths"]["/v2/orders/{orderId}/messages"]["post"]

    headers = {parameter["name"] for parameter in send["parameters"] if parameter["in"] == "header"}
    assert "Idempotency-Key" in headers
    assert "Idempotent-Replayed" in send["responses"]["200"]["headers"]
    assert "idempotency_key_reused" in send["responses"]["422"]["description"]
    assert "idempotency_key_in_use" in send["responses"]["409"]["description"]
