"""A webhook fault run (issue 20): messages sent and answered while the integrator's receiver fails
(500s, answers after the 10 s timeout, connections reset) and worker processes are killed with
SIGKILL; every event must be accepted at least once, and duplicates must share their `webhook-id`.

Shared by the CI test (small) and scripts/webhook_fault_run (the full run, on both databases).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
from collections import Counter, defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from postventa.services import webhooks
from postventa.store.engine import Database
from postventa.store.tables import messages
from tests.e2e.conftest import Seller, World, wait_for
from tests.e2e.crash import start_worker, worker_environment
from tests.factories import now
from tests.servers import free_port

# A fifth of the requests fail, each kind as often: more retries than a run ever needs, short.
FAULT_SHARE = 0.2
FAULTS = ("500", "timeout", "reset")
TIMEOUT_FAULT_SECONDS = 10.5  # past the attempt's 10 s: the attempt fails, then the answer comes
RETRY_SCHEDULE = "0.2,0.5,1,1,2,2,2,2,2,2,2,2"
WEBHOOK_LEASE_SECONDS = "12"


@dataclass
class Receiver:
    """The integrator: verifies each request, and fails some as the run asks."""

    secret: str = ""
    chance: random.Random = field(default_factory=lambda: random.Random(11))
    injected: Counter[str] = field(default_factory=Counter)
    # (type, data Id) -> the webhook-ids it arrived under, and how many 2xx it was acknowledged with
    ids: dict[tuple[str, int], set[str]] = field(default_factory=lambda: defaultdict(set))
    accepted: Counter[tuple[str, int]] = field(default_factory=Counter)
    bad_signatures: int = 0
    faulty: bool = True

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            event = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.bad_signatures += 1
            return web.Response(status=400)
        key = (str(event["type"]), int(event["data"]["Id"]))
        self.ids[key].add(request.headers["webhook-id"])
        fault = self.chance.choice(FAULTS) if self.faulty and self.chance.random() < FAULT_SHARE else None
        if fault is not None:
            self.injected[fault] += 1
        if fault == "500":
            return web.Response(status=500, text="receiver down")
        if fault == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        if fault == "timeout":
            await asyncio.sleep(TIMEOUT_FAULT_SECONDS)
            return web.Response(status=200)  # too late: the attempt timed out
        self.accepted[key] += 1
        return web.Response(status=204)


@asynccontextmanager
async def serving(receiver: Receiver):
    """The receiver on a loopback port; its URL."""
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        await runner.cleanup()


@dataclass
class WebhookRunResult:
    """What a webhook fault run observed."""

    messages: int
    kills: int
    expected: int = 0
    missing: int = 0
    duplicates: int = 0
    ids_per_event_over_one: int = 0
    bad_signatures: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


async def _register(database: Database, account_id: int, url: str) -> str:
    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    checked = await webhooks.check_url(url, allow_private=True, resolver=loopback)
    async with database.transaction(write=True) as connection:
        made = await webhooks.register_endpoint(
            connection,
            database.token_cipher,
            account_id,
            checked,
            ["message.sent", "message.received"],
            now(),
        )
    return made.secret


async def _ids(database: Database, account_id: int, status: str) -> set[int]:
    async with database.transaction() as connection:
        rows = await connection.execute(
            select(messages.c.id).where(messages.c.account_id == account_id, messages.c.status == status)
        )
        return {int(row.id) for row in rows}


async def _kill_workers(environment: dict[str, str], kills: int, chance: random.Random) -> None:
    for _ in range(kills):
        process = await start_worker(environment, concurrency=4)
        await asyncio.sleep(chance.uniform(1.0, 3.0))
        process.send_signal(signal.SIGKILL)
        await process.wait()


async def run_webhook_faults(
    world: World, database: Database, database_url: str, emulator_url: str, *, messages: int, kills: int
) -> WebhookRunResult:
    """Send `messages`, have each answered by its buyer, while the receiver fails and workers die."""
    chance = random.Random(5)
    seller: Seller = await world.linked_seller("MLA")
    created = [await world.emulator_order(seller) for _ in range(messages)]
    await world.sync(seller)
    order_ids = [await world.local_order_id(seller, item["OrderId"]) for item in created]
    receiver = Receiver()
    result = WebhookRunResult(messages=messages, kills=kills)
    started = asyncio.get_running_loop().time()
    async with serving(receiver) as url:
        receiver.secret = await _register(database, seller.account_id, url)
        for order_id in order_ids:
            sent = await world.api.post(
                f"/v2/orders/{order_id}/messages",
                params=seller.credentials(messageOptions=4, message=f"Hola {order_id}"),
            )
            assert sent.status_code == 200, sent.text
        environment = worker_environment(database_url, emulator_url) | {
            "POSTVENTA_WEBHOOK_ALLOW_PRIVATE": "true",
            "POSTVENTA_WEBHOOK_RETRY_SCHEDULE": RETRY_SCHEDULE,
            "POSTVENTA_WEBHOOK_LEASE_SECONDS": WEBHOOK_LEASE_SECONDS,
            "POSTVENTA_WEBHOOK_ENDPOINT_CONCURRENCY": "32",
            "POSTVENTA_POLL_INTERVAL_SECONDS": "2",
        }
        killing = asyncio.create_task(_kill_workers(environment, kills, chance))
        final = await start_worker(environment, concurrency=8)
        try:

            async def all_sent() -> bool:
                return len(await _ids(database, seller.account_id, "sent")) == messages

            await wait_for(all_sent, timeout=max(120.0, messages), every=1.0)
            for item in created:
                conversation = item["PackId"] or item["OrderId"]
                answered = await world.meli.post(
                    f"/_emulator/packs/{conversation}/buyer-messages",
                    json={"Text": f"Gracias {conversation}"},
                )
                assert answered.status_code in (200, 201), answered.text

            async def all_received() -> bool:
                return len(await _ids(database, seller.account_id, "received")) == messages

            await wait_for(all_received, timeout=max(120.0, messages), every=1.0)
            await killing
            expected = {("message.sent", i) for i in await _ids(database, seller.account_id, "sent")}
            expected |= {("message.received", i) for i in await _ids(database, seller.account_id, "received")}

            async def all_accepted() -> bool:
                return expected <= set(receiver.accepted)

            await wait_for(all_accepted, timeout=max(120.0, messages), every=1.0)
        finally:
            killing.cancel()
            final.send_signal(signal.SIGTERM)
            await final.wait()
    result.seconds = asyncio.get_running_loop().time() - started
    result.expected = len(expected)
    result.missing = len(expected - set(receiver.accepted))
    result.duplicates = sum(receiver.accepted.values()) - len(receiver.accepted)
    result.ids_per_event_over_one = sum(1 for ids in receiver.ids.values() if len(ids) > 1)
    result.bad_signatures = receiver.bad_signatures
    result.faults = dict(receiver.injected)
    return result


def as_record(result: WebhookRunResult, backend: str) -> dict[str, Any]:
    """One JSON line of the run's report."""
    return {"run": "webhook_faults", "backend": backend, **json.loads(json.dumps(result.__dict__))}
