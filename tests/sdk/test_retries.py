"""Safe retries, through both clients against the real application with scripted faults in front of
it (tests/sdk/scripted.py): waits on 429, one stored message for a send whose answer was lost, reads
retried on 5xx and lost connections, answers that are not retried, max_retries=0, and the log."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

import httpx2
import pytest
from postventa_sdk import (
    AsyncClient,
    Client,
    Conflict,
    NotFound,
    RateLimited,
    Reason,
    RetryPolicy,
    ServerError,
    TransportError,
)
from sqlalchemy import select

from postventa.store.engine import Database
from postventa.store.tables import messages
from tests.conftest import LiveServer
from tests.factories import Tenant, make_order, make_tenant
from tests.sdk.conftest import ASGI_URL, FAST_RETRIES, SdkClient, call
from tests.sdk.scripted import (
    DropAfterProcessing,
    Refuse,
    Scripted,
    Step,
    key_in_use,
    rate_limited,
    server_error,
)

MakeClient = Callable[..., tuple[SdkClient, Scripted]]
NO_RETRIES = RetryPolicy(max_retries=0)


@pytest.fixture(params=["AsyncClient", "Client"])
async def scripted(
    request: pytest.FixtureRequest, app, tenant: Tenant, live_server: LiveServer
) -> AsyncIterator[MakeClient]:
    """Makes the tenant's client behind a scripted transport: AsyncClient over the application in
    process, or the blocking Client over real TCP to the same database."""
    made: list[SdkClient] = []

    def make(*steps: Step, retry: RetryPolicy = FAST_RETRIES) -> tuple[SdkClient, Scripted]:
        client: SdkClient
        if request.param == "AsyncClient":
            transport = Scripted(httpx2.ASGITransport(app=app), *steps)
            client = AsyncClient(
                ASGI_URL, tenant.api_key, tenant.account_id, transport=transport, retry=retry
            )
        else:
            transport = Scripted(httpx2.HTTPTransport(), *steps)
            client = Client(
                live_server.url, tenant.api_key, tenant.account_id, transport=transport, retry=retry
            )
        made.append(client)
        return client, transport

    yield make
    for client in made:
        await call(client.aclose() if isinstance(client, AsyncClient) else client.close())


async def stored_messages(database: Database, order_id: int) -> list[int]:
    """The ids of the order's messages, as the database holds them."""
    async with database.transaction() as connection:
        rows = await connection.execute(
            select(messages.c.id).where(messages.c.order_id == order_id).order_by(messages.c.id)
        )
        return [row.id for row in rows]


def retry_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the SDK logged: one warning per retry."""
    return [record for record in caplog.records if record.name == "postventa_sdk"]


# --- 429: wait as asked, then succeed --------------------------------------------------------------


async def test_429_waits_the_retry_after_and_the_send_succeeds_once(scripted, database, tenant, caplog):
    order_id = await make_order(database, tenant)
    patient = RetryPolicy(max_retries=3, jitter=False)
    client, transport = scripted(rate_limited(1), retry=patient)

    started = time.monotonic()
    sent = await call(client.send_message(order_id, reason=Reason.OTHER, text="Hola"))
    waited = time.monotonic() - started

    assert waited >= 1.0
    assert transport.outcomes == [429, 200]
    first, second = transport.seen
    assert first.idempotency_key == second.idempotency_key == sent.idempotency_key
    assert await stored_messages(database, order_id) == [sent.id]
    (record,) = retry_records(caplog)
    assert (record.levelname, record.event, record.retry, record.max_retries) == (
        "WARNING",
        "postventa_sdk.retry",
        1,
        3,
    )
    assert (record.method, record.path, record.wait_seconds) == (
        "POST",
        f"/v2/orders/{order_id}/messages",
        1.0,
    )
    assert record.reason == "429 rate_limited"
    assert "in 1.00 s (retry 1 of 3): 429 rate_limited" in record.getMessage()
    assert tenant.api_key not in caplog.text


async def test_429_is_raised_when_retries_are_off_or_spent(scripted, database, tenant):
    order_id = await make_order(database, tenant)
    off, off_transport = scripted(rate_limited(5), retry=NO_RETRIES)
    spent, spent_transport = scripted(rate_limited(0), rate_limited(0), rate_limited(0))

    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        await call(off.conversation(order_id))
    assert time.monotonic() - started < 4  # raised at once, not after the 5 s wait
    assert caught.value.retry_after == 5.0
    with pytest.raises(RateLimited):
        await call(spent.conversation(order_id))

    assert off_transport.outcomes == [429]
    assert spent_transport.outcomes == [429, 429, 429]  # the first try and FAST_RETRIES' two


# --- sends: retried under one Idempotency-Key, stored once ----------------------------------------


async def test_a_send_whose_answer_was_lost_is_retried_with_its_key_and_stored_once(
    scripted, database, tenant, caplog
):
    order_id = await make_order(database, tenant)
    client, transport = scripted(DropAfterProcessing())

    sent = await call(client.send_message(order_id, reason=Reason.OTHER, text="Hola, ¿llegó bien?"))

    assert transport.outcomes == ["ReadError", 200]
    lost, retried = transport.seen
    assert lost.method == retried.method == "POST"
    assert lost.idempotency_key == retried.idempotency_key == sent.idempotency_key
    assert lost.dropped_body == f'"{sent.id}"'.encode()  # the id the first attempt stored
    assert sent.replayed is True  # the server answered the retry from the stored response
    assert await stored_messages(database, order_id) == [sent.id]
    conversation = await call(client.conversation(order_id))
    assert [(message.id, message.text) for message in conversation.messages] == [
        (sent.id, "Hola, ¿llegó bien?")
    ]
    assert [record.reason for record in retry_records(caplog)] == ["no response (ReadError)"]


@pytest.mark.parametrize(
    "fault",
    [server_error(503), server_error(502), key_in_use(), Refuse()],
    ids=["503", "502", "409 idempotency_key_in_use", "connection refused"],
)
async def test_a_send_is_retried_after_a_fault_before_the_application(scripted, database, tenant, fault):
    order_id = await make_order(database, tenant)
    client, transport = scripted(fault)

    sent = await call(client.send_message(order_id, reason=Reason.OTHER, text="Hola"))

    assert len(transport.seen) == 2
    assert transport.outcomes[1] == 200
    assert transport.seen[0].idempotency_key == transport.seen[1].idempotency_key == sent.idempotency_key
    assert sent.replayed is False  # the application saw only the retry
    assert await stored_messages(database, order_id) == [sent.id]


async def test_two_sends_have_two_keys(scripted, database, tenant):
    first_order, second_order = await make_order(database, tenant), await make_order(database, tenant)
    client, transport = scripted()

    first = await call(client.send_message(first_order, reason=Reason.OTHER, text="Hola"))
    second = await call(client.send_message(second_order, reason=Reason.OTHER, text="Hola"))

    assert first.idempotency_key != second.idempotency_key
    assert [seen.idempotency_key for seen in transport.seen] == [
        first.idempotency_key,
        second.idempotency_key,
    ]


# --- reads: retried on 5xx and lost connections; answers are answers ------------------------------


async def test_reads_are_retried_on_5xx_and_connection_errors(scripted, database, tenant, caplog):
    order_id = await make_order(database, tenant)
    client, transport = scripted(server_error(500), Refuse())

    order = await call(client.order(order_id))

    assert order.id == order_id
    assert transport.outcomes == [500, "ConnectError", 200]
    assert all(seen.method == "GET" for seen in transport.seen)
    records = retry_records(caplog)
    assert [(record.retry, record.reason) for record in records] == [
        (1, "500 http_500"),
        (2, "no response (ConnectError)"),
    ]
    assert all(0 < record.wait_seconds <= FAST_RETRIES.backoff_max_seconds for record in records)


async def test_retries_give_up_after_max_retries(scripted, database, tenant):
    order_id = await make_order(database, tenant)
    client, transport = scripted(server_error(503), server_error(503), server_error(503))
    refused, refused_transport = scripted(Refuse(), Refuse(), Refuse())

    with pytest.raises(ServerError) as caught:
        await call(client.conversation(order_id))
    with pytest.raises(TransportError):
        await call(refused.conversation(order_id))

    assert caught.value.status == 503
    assert transport.outcomes == [503, 503, 503]
    assert refused_transport.outcomes == ["ConnectError"] * 3


async def test_max_retries_zero_disables_retries(scripted, database, tenant, caplog):
    order_id = await make_order(database, tenant)
    failing, failing_transport = scripted(server_error(503), retry=NO_RETRIES)
    refused, refused_transport = scripted(Refuse(), retry=NO_RETRIES)
    lost, lost_transport = scripted(DropAfterProcessing(), retry=NO_RETRIES)

    with pytest.raises(ServerError):
        await call(failing.message_options(order_id))
    with pytest.raises(TransportError):
        await call(refused.orders_page())
    with pytest.raises(TransportError):
        await call(lost.send_message(order_id, reason=Reason.OTHER, text="Hola"))

    assert (failing_transport.outcomes, refused_transport.outcomes) == ([503], ["ConnectError"])
    assert lost_transport.outcomes == ["ReadError"]
    assert len(await stored_messages(database, order_id)) == 1  # stored; the caller may retry with the key
    assert retry_records(caplog) == []


def test_the_max_retries_argument_sets_the_policy():
    with Client("http://127.0.0.1:9", "pv_a_b", 1, max_retries=5) as blocking:
        assert blocking.retry == RetryPolicy(max_retries=5)
    with Client("http://127.0.0.1:9", "pv_a_b", 1) as default:
        assert default.retry == RetryPolicy(max_retries=3)
    with Client("http://127.0.0.1:9", "pv_a_b", 1, max_retries=5, retry=NO_RETRIES) as explicit:
        assert explicit.retry is NO_RETRIES  # a whole policy wins over the shorthand


async def test_error_answers_are_not_retried(scripted, database, tenant, caplog):
    order_id = await make_order(database, tenant)
    others_order = await make_order(database, await make_tenant(database))
    client, transport = scripted()
    await call(client.send_message(order_id, reason=Reason.OTHER, text="Hola"))

    with pytest.raises(Conflict):
        await call(client.send_message(order_id, reason=Reason.OTHER, text="¿Hola?"))
    with pytest.raises(NotFound):
        await call(client.conversation(others_order))

    assert transport.outcomes == [200, 409, 404]
    assert retry_records(caplog) == []
