"""Webhooks safe by default (issue 20), against a real receiver on SQLite and PostgreSQL: loopback,
private and redirecting destinations refused unless allowed, at registration and again at each
delivery (a host that resolves elsewhere since: DNS rebinding); 10 s at most an attempt; a slow
endpoint never delays another."""

from __future__ import annotations

import asyncio
import time

import pytest

from postventa.config import Settings
from postventa.domain.errors import PostventaError
from postventa.services import webhooks
from postventa.wiring import build_background, meli_client
from tests.conftest import make_settings
from tests.factories import buyer_replies, make_order, make_tenant, now
from tests.integration.test_webhook_delivery import add_endpoint, deliveries, dispatcher
from tests.integration.test_webhook_delivery import close_posters as close_posters
from tests.integration.webhook_receiver import Script, receiver


@pytest.fixture
def database(isolated_database):
    """The dispatcher claims every due delivery: these tests get a database of their own."""
    return isolated_database


async def attempts_of(database, endpoint_id: int):
    async with database.transaction() as connection:
        return await webhooks.list_attempts(connection, endpoint_id)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://localhost/hook", "webhook_url_private"),
        ("https://127.0.0.1/hook", "webhook_url_private"),
        ("https://[::1]/hook", "webhook_url_private"),
        ("https://[::ffff:127.0.0.1]/hook", "webhook_url_private"),
        ("https://169.254.169.254/latest", "webhook_url_private"),
        ("http://localhost/hook", "webhook_url_scheme"),
    ],
)
async def test_registration_refuses_local_destinations_unless_allowed(url, code):
    with pytest.raises(PostventaError) as refused:
        await webhooks.check_url(url, allow_private=False)  # the system's resolver
    assert refused.value.refusal.code == code
    assert (await webhooks.check_url(url, allow_private=True)).url == url


async def test_delivery_refuses_loopback_unless_allowed(database):
    tenant = await make_tenant(database)
    async with receiver() as hooks:
        made = await add_endpoint(database, tenant, hooks.url + "/local")  # registered while allowed
        await buyer_replies(database, await make_order(database, tenant), "hola")
        await dispatcher(database, allow_private=False, schedule=()).drain()
        [attempt] = await attempts_of(database, made.endpoint.id)
        assert attempt.http_status is None
        assert attempt.error is not None
        assert attempt.error.startswith("refused: 'Url' must be an https:// URL")
        assert hooks.received == []


async def test_a_host_that_resolves_to_loopback_at_delivery_is_refused(database):
    """Registered when it resolved to a public address; at delivery it resolves to loopback."""
    tenant = await make_tenant(database)

    async def public(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    async with receiver() as hooks:
        url = f"https://hooks.example.test:{hooks.port}/rebound"
        checked = await webhooks.check_url(url, allow_private=False, resolver=public)
        async with database.transaction(write=True) as connection:
            made = await webhooks.register_endpoint(
                connection, database.token_cipher, tenant.account_id, checked, None, now()
            )
        await buyer_replies(database, await make_order(database, tenant), "hola")
        rebinding = dispatcher(database, allow_private=False, schedule=())  # its resolver answers 127.0.0.1
        await rebinding.drain()
        [attempt] = await attempts_of(database, made.endpoint.id)
        assert attempt.error is not None
        assert "private, loopback or link-local" in attempt.error
        assert "127.0.0.1" in attempt.error
        assert hooks.received == []


async def test_redirects_are_not_followed(database):
    tenant = await make_tenant(database)
    async with receiver() as hooks:
        hooks.scripts["/moved"] = Script(statuses=[302], location="/target")
        made = await add_endpoint(database, tenant, hooks.url + "/moved")
        await buyer_replies(database, await make_order(database, tenant), "hola")
        await dispatcher(database, schedule=()).drain()
        [attempt] = await attempts_of(database, made.endpoint.id)
        assert (attempt.http_status, attempt.error) == (302, "HTTP 302: redirect not followed")
        assert attempt.delivery_status == "failed"
        assert [request.path for request in hooks.received] == ["/moved"]


async def test_an_attempt_ends_at_its_timeout(database):
    tenant = await make_tenant(database)
    async with receiver() as hooks:
        hooks.scripts["/slow"] = Script(delay_seconds=2.0)
        made = await add_endpoint(database, tenant, hooks.url + "/slow")
        await buyer_replies(database, await make_order(database, tenant), "hola")
        await dispatcher(database, timeout=0.3, schedule=()).drain()
        [attempt] = await attempts_of(database, made.endpoint.id)
        assert (attempt.http_status, attempt.error) == (None, "timeout after 0.3 s")
        assert 250 <= attempt.duration_ms < 1500


async def test_a_slow_endpoint_does_not_delay_another(database):
    slow_tenant, fast_tenant = await make_tenant(database), await make_tenant(database)
    async with receiver() as hooks:
        hooks.scripts["/slow"] = Script(delay_seconds=4.0)
        await add_endpoint(database, slow_tenant, hooks.url + "/slow")
        await add_endpoint(database, fast_tenant, hooks.url + "/fast")
        for tenant in (slow_tenant, fast_tenant):
            order_id = await make_order(database, tenant)
            for number in range(6):
                await buyer_replies(database, order_id, f"mensaje {number}")
        worker = dispatcher(database, timeout=3.0, concurrency=4, per_endpoint=2, idle_wait_seconds=0.05)
        stop = asyncio.Event()
        started = time.monotonic()
        running = asyncio.create_task(worker.run(stop))
        try:
            await hooks.wait_for("/fast", 6, timeout_seconds=3.0)
            fast_seconds = time.monotonic() - started
            assert len(hooks.at("/slow")) == 2  # its share of the slots, held, and no more
        finally:
            stop.set()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    assert fast_seconds < 3.0  # before the slow endpoint's first attempts could end
    assert len(await deliveries(database)) == 12


async def test_every_worker_process_runs_a_dispatcher_of_its_own(database):
    settings: Settings = make_settings(
        "sqlite:///unused.db",
        webhook_retry_schedule="0.5,2",
        webhook_allow_private=True,
        webhook_endpoint_concurrency=3,
    )
    meli = meli_client(settings)
    background = build_background(settings, database, meli)
    await meli.aclose()
    assert background.webhooks is not None
    assert background.webhooks.retry_schedule == (0.5, 2.0)
    assert background.webhooks.per_endpoint == 3
    assert background.webhooks.poster.allow_private
    assert background.webhooks.worker_id == background.worker.worker_id
