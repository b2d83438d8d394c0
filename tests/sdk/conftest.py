"""The SDK against the real application: `AsyncClient` over in-process ASGI and `Client` over a real
uvicorn server, so every test of the methods runs through both."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx2
import pytest
from postventa_sdk import AsyncClient, Client, RetryPolicy

from postventa.config import Settings
from postventa.store.engine import Database
from postventa.wiring import create_app
from tests.conftest import LiveServer
from tests.factories import Tenant, make_tenant

ASGI_URL = "http://postventa.test"
# Quick retries: the tests that time a wait set their own policy.
FAST_RETRIES = RetryPolicy(max_retries=2, backoff_base_seconds=0.01, backoff_max_seconds=0.05)

SdkClient = Client | AsyncClient


async def call(result: Any) -> Any:
    """A method's result, whichever client ran it (the async client's are awaited)."""
    return await result if inspect.isawaitable(result) else result


async def collect(items: Iterable[Any] | AsyncIterator[Any]) -> list[Any]:
    """Every item of an iterator or async iterator."""
    if isinstance(items, AsyncIterator):
        return [item async for item in items]
    return list(items)


def asgi_client(app: Any, tenant: Tenant, **options: Any) -> AsyncClient:
    """An AsyncClient of the tenant over the application in process (optionally a wrapped transport)."""
    transport = options.pop("transport", None) or httpx2.ASGITransport(app=app)
    options.setdefault("retry", FAST_RETRIES)
    return AsyncClient(ASGI_URL, tenant.api_key, tenant.account_id, transport=transport, **options)


@pytest.fixture
def app(settings: Settings, database: Database) -> Any:
    """The application on the backend's database."""
    return create_app(settings, database=database)


@pytest.fixture
async def tenant(database: Database) -> Tenant:
    """An account of its own, with a key."""
    return await make_tenant(database)


@pytest.fixture(params=["asgi", "live"])
async def sdk(
    request: pytest.FixtureRequest, app: Any, tenant: Tenant, live_server: LiveServer
) -> AsyncIterator[SdkClient]:
    """The tenant's client: AsyncClient in process, or the blocking Client over real TCP."""
    if request.param == "asgi":
        async with asgi_client(app, tenant) as client:
            yield client
        return
    with Client(live_server.url, tenant.api_key, tenant.account_id, retry=FAST_RETRIES) as blocking:
        yield blocking
