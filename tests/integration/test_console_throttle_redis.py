"""Failed console sign-ins counted where every API process sees them (console/throttle.py): with
POSTVENTA_REDIS_URL, two application instances (two `serve --workers` processes, in effect) sharing
the test Redis count the same failures, where in memory each counts its own; emails are not kept
readable in Redis; and a Redis that cannot be reached refuses sign-ins with 503, never a 500 and
never a sign-in let through uncounted."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx2
import pytest
import redis.asyncio

from postventa.console.throttle import FAILURES_PER_ADDRESS, FAILURES_PER_EMAIL, SignInThrottle
from postventa.store.engine import Database
from postventa.wiring import create_app
from tests.conftest import make_settings
from tests.factories import make_tenant
from tests.integration.test_console_http import ENGLISH, PASSWORD, make_user, sign_in

UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"
FAILED = "The email or the password is not right"


def fresh_address() -> str:
    """A client address of this test alone: counts per address live 15 minutes in the shared Redis."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@asynccontextmanager
async def console(
    database_url: str, database: Database, address: str, redis_url: str | None
) -> AsyncIterator[httpx2.AsyncClient]:
    """One application instance over in-process HTTP, its lifespan run (so its Redis connections
    close as in a server), its requests coming from `address`."""
    app = create_app(make_settings(database_url, redis_url=redis_url), database=database)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, client=(address, 50_000))
        async with httpx2.AsyncClient(
            transport=transport, base_url="http://postventa.test", headers=ENGLISH
        ) as http:
            yield http


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "memory"])
async def test_two_instances_sharing_redis_count_the_same_failures(
    database_url: str, database: Database, redis_url: str, shared: bool
):
    tenant = await make_tenant(database)
    email = await make_user(database, tenant.account_id)
    address, counters = fresh_address(), redis_url if shared else None
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(console(database_url, database, address, counters))
        second = await stack.enter_async_context(console(database_url, database, address, counters))
        # The email's limit, shared out: three failures on one instance, the rest on the other.
        for http in [first] * 3 + [second] * (FAILURES_PER_EMAIL.amount - 3):
            assert (await sign_in(http, email, "not the password")).status_code == 401

        right_password = await sign_in(second, email, PASSWORD)

    if shared:
        assert right_password.status_code == 401  # the fifth failure was counted by the other instance
        assert FAILED in right_password.text
    else:
        assert right_password.status_code == 303  # each instance saw fewer than five


async def test_an_address_is_counted_across_instances_and_emails_are_kept_hashed(redis_url: str):
    first, second = SignInThrottle.from_settings(redis_url), SignInThrottle.from_settings(redis_url)
    address, email = fresh_address(), f"someone-{uuid.uuid4().hex}@example.com"
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        for index in range(FAILURES_PER_ADDRESS.amount):
            await (first if index % 2 else second).failed(f"guess-{index}-{email}", address)

        assert not await first.allows(email, address)
        assert not await second.allows(email, address)
        assert await first.allows(email, fresh_address())  # the email has no failure of its own
        keys = [key.decode() async for key in client.scan_iter(match="postventa-console*")]
        hashed = hashlib.sha256(f"guess-0-{email}".encode()).hexdigest()
        assert any(hashed in key for key in keys)
        assert not any(email in key for key in keys)
    finally:
        await client.aclose()
        await first.aclose()
        await second.aclose()


async def test_a_redis_that_cannot_be_reached_refuses_sign_ins_with_503(
    database_url: str, database: Database
):
    tenant = await make_tenant(database)
    email = await make_user(database, tenant.account_id)
    async with console(database_url, database, fresh_address(), UNREACHABLE_REDIS_URL) as http:
        wrong = await sign_in(http, email, "not the password")
        right = await sign_in(http, email, PASSWORD)

    for refused in (wrong, right):  # a right password included: nothing is tried uncounted
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
        assert "Signing in is not possible right now" in refused.text
        assert "pv_session" not in refused.headers.get("set-cookie", "")
