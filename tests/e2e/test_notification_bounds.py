"""Forged notifications cannot drown the real ones, and SIGTERM stops whatever is queued (issue 16,
items 3 and 4): `postventa serve` and `postventa worker` as processes over real TCP, against the
emulator, on both databases."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import func, select

from postventa.store import inbound as inbound_store
from postventa.store.engine import Database
from postventa.store.tables import inbound_notifications
from tests.conftest import ADMIN_TOKEN, fresh_database_url
from tests.e2e.conftest import EmulatorServer, Seller, World, wait_for
from tests.e2e.test_inbound import inbound_texts, sent_order
from tests.factories import PEPPER
from tests.servers import Running, postventa_process, served_process

FLOOD = 1500
QUEUED = 1000
GRACE_SECONDS = 3.0
# Past the grace: the process closes its connections and exits.
EXIT_MARGIN_SECONDS = 2.0


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    """An emulator of this module's own: its faults (a slow Mercado Libre) touch no other test."""
    with EmulatorServer() as server:
        yield server


@contextmanager
def postventa(command: list[str], directory: Path, **settings: str) -> Iterator[Running]:
    """A postventa command with this test's admin token and pepper (tests.servers.postventa_process)."""
    with postventa_process(
        command, directory, admin_token=ADMIN_TOKEN, api_key_pepper=PEPPER, **settings
    ) as running:
        yield running


@contextmanager
def served(directory: Path, **settings: str) -> Iterator[tuple[Running, str]]:
    """`postventa serve` with this test's admin token and pepper, once healthy: the process and URL."""
    with served_process(directory, admin_token=ADMIN_TOKEN, api_key_pepper=PEPPER, **settings) as served:
        yield served


@asynccontextmanager
async def world_of(url: str, emulator: EmulatorServer) -> AsyncIterator[World]:
    limits = httpx2.Limits(max_connections=100)
    async with (
        httpx2.AsyncClient(base_url=url, timeout=30, limits=limits) as api,
        httpx2.AsyncClient(base_url=emulator.url, timeout=30) as meli,
    ):
        yield World(api, meli, url)
        await meli.put("/_emulator/faults", json={"Faults": []})


async def forge(world: World, notifications: list[dict[str, object]], *, at_once: int = 50) -> None:
    """Post the notifications, `at_once` at a time, as an attacker would."""
    gate = asyncio.Semaphore(at_once)

    async def post(body: dict[str, object]) -> None:
        async with gate:
            response = await world.api.post("/webhooks/mercadolibre", json=body)
            assert response.status_code == 200, response.text

    await asyncio.gather(*(post(body) for body in notifications))


def random_resources(count: int) -> list[str]:
    """Resources an attacker makes up: message ids of Mercado Libre's shape, and others."""
    return [secrets.token_hex(16) if index % 2 else secrets.token_urlsafe(12) for index in range(count)]


async def notification_rows(database: Database, user_id: int) -> list[dict[str, object]]:
    table = inbound_notifications
    async with database.transaction() as connection:
        rows = await connection.execute(select(table).where(table.c.user_id == user_id))
        return [dict(row._mapping) for row in rows]


@pytest.fixture
async def database_of(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, Database]]:
    """A fresh migrated database of the backend (no other test's notifications in it)."""
    async with fresh_database_url(database_url, tmp_path, "bounds") as url:
        database = Database(url)
        try:
            yield url, database
        finally:
            await database.dispose()


async def test_a_flood_of_forged_notifications_does_not_drown_the_real_ones(
    database_of: tuple[str, Database], emulator: EmulatorServer, tmp_path: Path
):
    url, database = database_of
    # Mercado Libre's real pace (500 reads a minute per application) and the notification bounds'
    # defaults; the poll every 2 s.
    with served(
        tmp_path,
        database_url=url,
        embedded_worker="true",
        meli_api_url=emulator.url,
        poll_interval_seconds="2",
        worker_lease_seconds="20",
        meli_timeout_seconds="2",
    ) as (_process, base_url):
        async with world_of(base_url, emulator) as world:
            flooded, other = await world.linked_seller("MLA"), await world.linked_seller("MLA")
            flooded_order, flooded_conversation = await sent_order(world, flooded)
            other_order, other_conversation = await sent_order(world, other)
            foreign = await world.meli.post(
                f"/_emulator/packs/{other_conversation}/buyer-messages", json={"Text": "Hola"}
            )
            foreign_order = await world.emulator_order(other)
            mark = await world.journal_mark()

            # 1,500 notifications naming the seller, made-up resources (one of them 50 times)...
            repeated = secrets.token_hex(16)
            resources = random_resources(FLOOD - 50) + [repeated] * 50
            await forge(
                world, [{"topic": "messages", "resource": r, "user_id": flooded.seller_id} for r in resources]
            )
            # ...then what Mercado Libre would answer 403 and 404 to: another seller's message and
            # order, an order nobody has.
            await forge(
                world,
                [
                    {
                        "topic": "messages",
                        "resource": foreign.json()["MessageId"],
                        "user_id": flooded.seller_id,
                    },
                    {
                        "topic": "orders_v2",
                        "resource": f"/orders/{foreign_order['OrderId']}",
                        "user_id": flooded.seller_id,
                    },
                    {"topic": "orders_v2", "resource": "/orders/999999999999", "user_id": flooded.seller_id},
                ],
            )

            # The buyers answer, in the flooded seller's conversation and in another seller's.
            started = time.monotonic()
            for conversation in (flooded_conversation, other_conversation):
                written = await world.meli.post(
                    f"/_emulator/packs/{conversation}/buyer-messages", json={"Text": "Llegó bien"}
                )
                assert written.status_code == 200, written.text
            latency: dict[str, float] = {}

            async def both_recorded() -> bool:
                for name, seller, order in (
                    ("flooded", flooded, flooded_order),
                    ("other", other, other_order),
                ):
                    if name not in latency and "Llegó bien" in await inbound_texts(world, seller, order):
                        latency[name] = time.monotonic() - started
                return len(latency) == 2

            await wait_for(both_recorded, timeout=10, every=0.2)
            print(f"reply latency during the flood: {latency}")  # noqa: T201 (shown with -s)

            # Repeats of one resource are one row; the per-seller bound holds; what Mercado Libre
            # answers 403 or 404 to is done after one attempt.
            answers = {
                foreign.json()["MessageId"]: "403:",
                f"/orders/{foreign_order['OrderId']}": "403:",
                "/orders/999999999999": "404:",
            }

            async def settled() -> bool:
                rows = await notification_rows(database, flooded.seller_id)
                done = {
                    str(row["resource"]): str(row["last_error"] or "")[:4]
                    for row in rows
                    if row["resource"] in answers and row["processed_at"] and row["attempts"] == 1
                }
                return done == answers

            await wait_for(settled, timeout=10, every=0.5)

            async def bounded() -> bool:  # held to the bound at least once a second
                rows = await notification_rows(database, flooded.seller_id)
                return sum(1 for row in rows if row["processed_at"] is None) <= 1000

            await wait_for(bounded, timeout=3)
            rows = await notification_rows(database, flooded.seller_id)
            assert len(rows) <= FLOOD - 49 + 3 + 5  # the 50 repeats coalesced (+ the seller's own messages)
            assert sum(1 for row in rows if row["resource"] == repeated) == 1
            pending = [row for row in rows if row["processed_at"] is None]
            assert not any(row["attempts"] > 1 for row in rows)
            dropped = [row for row in rows if str(row["last_error"] or "").startswith("dropped")]
            assert dropped  # the oldest, never a newer one than one still pending
            assert max(row["received_at"] for row in dropped) <= min(row["received_at"] for row in pending)

            # The seller's notifications spent at most its calls (120 a minute), not the budget.
            reads = [entry for entry in await world.journal(mark) if entry["Method"] == "GET"]
            message_reads = [
                entry
                for entry in reads
                if entry["Path"].startswith("/messages/") and not entry["Path"].startswith("/messages/packs/")
            ]
            assert len(message_reads) <= 130, len(message_reads)


async def queue_notifications(database: Database, seller: Seller, count: int) -> None:
    now = dt.datetime.now(dt.UTC)
    async with database.transaction(write=True) as connection:
        for resource in (secrets.token_hex(16) for _ in range(count)):
            await inbound_store.save_notification(connection, "messages", resource, seller.seller_id, now)


async def pending_and_due(database: Database, seller: Seller) -> tuple[int, int]:
    table = inbound_notifications
    now = dt.datetime.now(dt.UTC)
    pending = (table.c.user_id == seller.seller_id, table.c.processed_at.is_(None))
    async with database.transaction() as connection:
        total = (await connection.execute(select(func.count()).where(*pending))).scalar_one()
        due = (
            await connection.execute(
                select(func.count()).where(*pending, table.c.next_attempt_at <= now, table.c.attempts == 0)
            )
        ).scalar_one()
    return int(total), int(due)


async def slow_meli_with_queued(world: World, database: Database) -> Seller:
    """A linked seller with QUEUED notifications, and a Mercado Libre that takes 10 s per message."""
    seller = await world.linked_seller("MLA")
    await world.faults([{"Route": "GET /messages/*", "Kind": "delay", "Rate": 1, "DelaySeconds": 10}])
    await queue_notifications(database, seller, QUEUED)
    return seller


def stopped_within(running: Running, seconds: float) -> float:
    """SIGTERM, then how long the process took to exit; fails if it takes over `seconds`, or exits
    otherwise than as stopped (0, or uvicorn's re-raised SIGTERM)."""
    started = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    try:
        running.process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {seconds} s after SIGTERM:\n{running.log.read_text()[-2000:]}")
    assert running.process.returncode in (0, -signal.SIGTERM), running.log.read_text()[-2000:]
    return time.monotonic() - started


async def reading_a_message(database: Database, seller: Seller) -> None:
    """Until the processor claimed notifications and is reading one (the emulator holds it 10 s)."""
    table = inbound_notifications

    async def claimed() -> bool:
        async with database.transaction() as connection:
            taken = select(func.count()).where(table.c.user_id == seller.seller_id, table.c.attempts > 0)
            return int((await connection.execute(taken)).scalar_one()) > 0

    await wait_for(claimed, timeout=20)
    await asyncio.sleep(0.5)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sigterm_stops_serve_within_the_grace_with_notifications_queued(
    database_of: tuple[str, Database], emulator: EmulatorServer, tmp_path: Path
):
    url, database = database_of
    with served(
        tmp_path,
        database_url=url,
        embedded_worker="true",
        meli_api_url=emulator.url,
        shutdown_grace_seconds=str(GRACE_SECONDS),
    ) as (process, base_url):
        async with world_of(base_url, emulator) as world:
            seller = await slow_meli_with_queued(world, database)
            await reading_a_message(database, seller)
            took = stopped_within(process, GRACE_SECONDS + EXIT_MARGIN_SECONDS)
    print(f"serve exited {took:.1f} s after SIGTERM")  # noqa: T201
    assert await pending_and_due(database, seller) == (QUEUED, QUEUED)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_sigterm_stops_the_worker_within_the_grace_with_notifications_queued(
    database_of: tuple[str, Database], emulator: EmulatorServer, tmp_path: Path
):
    url, database = database_of
    with served(tmp_path, database_url=url, embedded_worker="false", meli_api_url=emulator.url) as (
        _,
        base_url,
    ):
        async with world_of(base_url, emulator) as world:
            seller = await slow_meli_with_queued(world, database)
            with postventa(
                ["worker"],
                tmp_path,
                database_url=url,
                meli_api_url=emulator.url,
                shutdown_grace_seconds=str(GRACE_SECONDS),
            ) as worker:
                await reading_a_message(database, seller)
                assert worker.process.poll() is None, worker.log.read_text()
                took = stopped_within(worker, GRACE_SECONDS + EXIT_MARGIN_SECONDS)
    print(f"worker exited {took:.1f} s after SIGTERM")  # noqa: T201
    assert await pending_and_due(database, seller) == (QUEUED, QUEUED)
