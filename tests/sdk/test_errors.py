"""Every error class, raised by the real application with its code; no response kept apart."""

from __future__ import annotations

import httpx2
import pytest
from postventa_sdk import (
    ApiError,
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    NotFound,
    PostventaError,
    PreconditionFailed,
    RateLimited,
    Reason,
    RetryPolicy,
    ServerError,
    TransportError,
    Unauthorized,
    UnprocessableEntity,
)
from structlog.testing import capture_logs

from postventa.store.engine import Database
from postventa.wiring import create_app
from tests.conftest import make_settings
from tests.factories import Tenant, make_order, make_tenant
from tests.sdk.conftest import ASGI_URL, asgi_client, call


def assert_error(caught: pytest.ExceptionInfo[ApiError], status: int, code: str) -> ApiError:
    """The error's status and code, a readable message and the request id, under the one root."""
    error = caught.value
    assert isinstance(error, ApiError)
    assert isinstance(error, PostventaError)
    assert (error.status, error.code) == (status, code)
    assert error.message.strip()
    assert error.request_id
    return error


async def test_bad_request(sdk, database, tenant):
    order_id = await make_order(database, tenant)

    with pytest.raises(BadRequest) as caught:
        await call(sdk.send_message(order_id, reason=Reason.OTHER, text="x" * 351))

    assert_error(caught, 400, "message_too_long")


async def test_unauthorized(sdk, database, tenant):
    order_id = await make_order(database, tenant)
    sdk._http.headers["X-API-Key"] = "pv_unknown_key"

    with pytest.raises(Unauthorized) as caught:
        await call(sdk.conversation(order_id))

    assert_error(caught, 401, "api_key_invalid")


async def test_forbidden(sdk, database, tenant):
    other = await make_tenant(database)
    sdk.account_id = other.account_id

    with pytest.raises(Forbidden) as caught:
        await call(sdk.order(await make_order(database, other)))

    assert_error(caught, 403, "account_not_allowed")


async def test_not_found(sdk, database, tenant):
    others_order = await make_order(database, await make_tenant(database))

    with pytest.raises(NotFound) as caught:
        await call(sdk.send_message(others_order, reason=Reason.OTHER, text="Hola"))

    assert_error(caught, 404, "order_not_found")


async def test_conflict(sdk, database, tenant):
    order_id = await make_order(database, tenant)
    await call(sdk.send_message(order_id, reason=Reason.OTHER, text="Hola"))

    with pytest.raises(Conflict) as caught:
        await call(sdk.send_message(order_id, reason=Reason.OTHER, text="¿Hola?"))

    assert_error(caught, 409, "awaiting_buyer_reply")


async def test_precondition_failed(sdk, database, tenant):
    order_id = await make_order(database, tenant, SiteId="MLA")

    with pytest.raises(PreconditionFailed) as caught:
        await call(sdk.send_message(order_id, reason=Reason.SEND_INVOICE_LINK, text="https://f.example/1"))

    assert_error(caught, 412, "reason_not_available_in_country")


async def test_unprocessable_entity_for_a_reused_idempotency_key(sdk, database, tenant):
    order_id = await make_order(database, tenant)
    await call(sdk.send_message(order_id, reason=Reason.OTHER, text="Hola", idempotency_key="pedido-1"))

    with pytest.raises(UnprocessableEntity) as caught:
        await call(sdk.send_message(order_id, reason=Reason.OTHER, text="Otra", idempotency_key="pedido-1"))

    assert_error(caught, 422, "idempotency_key_reused")


async def test_rate_limited_when_the_wait_is_longer_than_the_policy_allows(database_url, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    app = create_app(
        make_settings(database_url, rate_limits="send=1/minute,read=100/minute"), database=database
    )
    patient = RetryPolicy(max_retries=3, max_wait_seconds=5)
    async with asgi_client(app, tenant, retry=patient) as client:
        await client.send_message(order_id, reason=Reason.OTHER, text="Hola")

        with pytest.raises(RateLimited) as caught:
            await client.send_message(order_id, reason=Reason.OTHER, text="¿Hola?")

    error = assert_error(caught, 429, "rate_limited")
    assert isinstance(error, RateLimited)
    assert error.retry_after is not None
    assert 5 < error.retry_after <= 60


async def test_server_error_is_the_plain_text_500(database_url, database, tmp_path):
    tenant = await make_tenant(database)
    unmigrated = Database(f"sqlite:///{tmp_path / 'unmigrated.db'}")  # every query fails: a real 500
    app = create_app(make_settings(database_url), database=unmigrated)
    try:
        transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)  # as a server answers
        async with asgi_client(app, tenant, transport=transport, max_retries=0, retry=None) as client:
            # Captured, not rendered: the console renderer pretty-prints the traceback for seconds.
            with capture_logs() as logged, pytest.raises(ServerError) as caught:
                await client.order(1)
    finally:
        await unmigrated.dispose()

    error = assert_error(caught, 500, "http_500")
    assert error.request_id is not None
    assert error.message == f"Internal server error. Request id: {error.request_id}"
    assert [event["request_id"] for event in logged if event["event"] == "unexpected_error"] == [
        error.request_id  # the id the client reports is the one in the server's log
    ]


async def test_no_response_is_a_transport_error_not_an_api_error(caplog):
    tenant = Tenant(account_id=1, api_key="pv_abc_def", key_id=1)
    quick = RetryPolicy(max_retries=2, backoff_base_seconds=0.01)
    with Client("http://127.0.0.1:9", tenant.api_key, tenant.account_id, retry=quick) as client:
        with pytest.raises(TransportError) as caught:
            client.order(1)

    assert not isinstance(caught.value, ApiError)
    assert isinstance(caught.value, PostventaError)
    assert isinstance(caught.value.__cause__, httpx2.ConnectError)
    assert [record.retry for record in caplog.records if record.name == "postventa_sdk"] == [1, 2]


async def test_a_timeout_is_a_transport_error():
    async def slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    client = AsyncClient(
        ASGI_URL, "pv_a_b", 1, retry=RetryPolicy(max_retries=0), transport=httpx2.MockTransport(slow)
    )
    async with client:
        with pytest.raises(TransportError, match="no response"):
            await client.conversation(1)
