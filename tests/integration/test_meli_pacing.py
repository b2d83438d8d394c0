"""Mercado Libre's budget per application and endpoint, shared by the processes of one application.

Two `MeliClient`s stand for two processes: each has its own budget object (its own blocks, locks
and cool-downs in memory), and they share only the storage, as two processes share Redis or the
database. Against a counting transport and against the emulator (real HTTP, its own per-application
limit), together they never make more calls in a minute than the budget, and a 429 one of them sees
slows the other.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx2
import pytest
from limits.aio.storage import MemoryStorage, Storage
from limits.storage import storage_from_string

from postventa.domain.delivery import FailureKind
from postventa.emulator import EmulatorConfig, create_emulator_app
from postventa.meli.client import MeliClient, MeliError
from postventa.meli.pacing import CallBudget, redis_budget_storage
from postventa.store.engine import Database
from postventa.store.meli_budget import SqlBudgetStorage
from tests.emulator.world import LiveServer, World
from tests.meli_transport import Request, ScriptedTransport, reply

BASE = "http://meli.test"
HUNGRY_SECONDS = 1.5  # how long the clients keep calling once the budget is spent


def application() -> str:
    """An application id of this test alone (the storages outlive a test)."""
    return str(uuid.uuid4().int % 10**16)


def counting_transport(count: list[int]) -> ScriptedTransport:
    def answer(_request: Request) -> Any:
        count.append(1)
        return reply(200, {"id": 1, "status": "paid"})

    return ScriptedTransport(default=answer)


class CountingMemory(MemoryStorage):
    """limits' memory storage, counting its round trips for a block (reservations)."""

    reservations = 0

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        self.reservations += 1
        return await super().acquire_entry(key, limit, expiry, amount)


@pytest.fixture(params=["memory", "redis"])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    """A storage two clients share: one object in memory, or Redis."""
    if request.param == "memory":
        yield MemoryStorage()
        return
    shared, close = redis_budget_storage(request.getfixturevalue("redis_url"))
    yield shared
    await close()


@pytest.fixture
def database_storage(database: Database) -> SqlBudgetStorage:
    """The database's storage (SQLite and PostgreSQL)."""
    return SqlBudgetStorage(database=database)


async def hungry(calls: Callable[[], Awaitable[Any]], tasks: int) -> None:
    """`tasks` tasks making calls until HUNGRY_SECONDS have passed (then stopped where they wait)."""

    async def loop() -> None:
        while True:
            await calls()

    running = [asyncio.create_task(loop()) for _ in range(tasks)]
    await asyncio.sleep(HUNGRY_SECONDS)
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


async def two_processes_spend_one_budget(shared: Storage) -> None:
    per_minute, app = 12, application()
    counted: list[int] = []
    clients = [
        MeliClient(
            BASE, transport=counting_transport(counted), budget=CallBudget(per_minute, per_minute, shared)
        )
        for _ in range(2)
    ]
    await asyncio.gather(
        *(hungry(lambda c=c: c.order("token", 5, application=app), tasks=3) for c in clients)
    )
    assert len(counted) == per_minute  # the whole budget, and not one call more
    other: list[int] = []
    third = MeliClient(
        BASE, transport=counting_transport(other), budget=CallBudget(per_minute, per_minute, shared)
    )
    await third.order("token", 5, application=application())  # another application has its own
    await third.search_orders("token", 7, application=app)  # another endpoint too
    assert len(other) == 2


async def test_two_processes_never_exceed_the_budget_together(storage: Storage) -> None:
    await two_processes_spend_one_budget(storage)


async def test_two_processes_never_exceed_the_budget_together_through_the_database(
    database_storage: SqlBudgetStorage,
) -> None:
    await two_processes_spend_one_budget(database_storage)


async def one_429_slows_the_other_process(shared: Storage) -> None:
    app, cool_down = application(), 0.8
    first = MeliClient(
        BASE,
        transport=ScriptedTransport([reply(429, {"message": "too many requests", "status": 429})]),
        budget=CallBudget(storage=shared, cool_down_seconds=cool_down),
    )
    called_at: list[float] = []

    def answer(_request: Request) -> Any:
        called_at.append(time.monotonic())
        return reply(200, {"id": 1, "status": "paid"})

    second = MeliClient(BASE, transport=ScriptedTransport(default=answer), budget=CallBudget(storage=shared))
    with pytest.raises(MeliError) as refused:
        await first.order("token", 5, application=app)
    refused_at = time.monotonic()
    await second.shipment("token", 9, application=app)  # another endpoint: not slowed
    await second.order("token", 6, application=app)
    assert refused.value.status == 429
    assert called_at[0] - refused_at < cool_down / 2
    assert called_at[1] - refused_at >= cool_down - 0.15  # Mercado Libre sent no Retry-After


async def test_a_429_one_process_sees_slows_the_other(storage: Storage) -> None:
    await one_429_slows_the_other_process(storage)


async def test_a_429_one_process_sees_slows_the_other_through_the_database(
    database_storage: SqlBudgetStorage,
) -> None:
    await one_429_slows_the_other_process(database_storage)


async def test_calls_are_reserved_in_blocks_not_one_round_trip_each() -> None:
    shared = CountingMemory()
    counted: list[int] = []
    meli = MeliClient(BASE, transport=counting_transport(counted), budget=CallBudget(storage=shared))
    app = application()
    for _ in range(100):
        await meli.order("token", 5, application=app)
    assert len(counted) == 100
    assert shared.reservations <= 15  # blocks of 1, 2, 4, 8, then 10 at a time


async def test_a_block_left_unspent_expires_and_what_it_used_sets_the_next(monkeypatch) -> None:
    shared = CountingMemory()
    counted: list[int] = []
    budget = CallBudget(storage=shared, lease_seconds=1)
    meli = MeliClient(BASE, transport=counting_transport(counted), budget=budget)
    app = application()
    for _ in range(3):  # blocks of 1 and 2
        await meli.order("token", 5, application=app)
    await meli.order("token", 5, application=app)  # a block of 4, one used
    await asyncio.sleep(1.1)
    await meli.order("token", 5, application=app)  # the lease ran out: a new block, of 1
    stats = await budget.strategy.get_window_stats(budget.item("GET"), app, "GET", "/orders/{id}")
    assert shared.reservations == 4
    assert budget.item("GET").amount - stats.remaining == 1 + 2 + 4 + 1  # dropped calls stay counted


async def test_calls_that_name_no_application_share_one_key() -> None:
    counted: list[int] = []
    meli = MeliClient(BASE, transport=counting_transport(counted), reads_per_minute=3)
    await hungry(lambda: meli.order("token", 5), tasks=2)
    assert len(counted) == 3


# --- against the emulator, over real HTTP ----------------------------------------------------------

EMULATOR_PER_MINUTE = 8


@pytest.fixture(scope="module")
def emulator() -> Iterator[LiveServer]:
    config = EmulatorConfig(reads_per_minute=EMULATOR_PER_MINUTE, writes_per_minute=EMULATOR_PER_MINUTE)
    with LiveServer(create_emulator_app(config)) as server:
        yield server


async def emulator_seller(emulator: LiveServer) -> tuple[str, str]:
    """A new seller (its own application): (client id, access token)."""
    async with httpx2.AsyncClient(base_url=emulator.url) as http:
        seller = await World(http).seller("MLA")
    return seller.client_id, seller.access_token


async def served_and_refused(clients: list[MeliClient], app: str, token: str) -> tuple[int, int]:
    outcomes: list[int] = []

    async def call(meli: MeliClient) -> None:
        try:
            await meli.me(token, application=app)
            outcomes.append(200)
        except MeliError as error:
            outcomes.append(error.status or 0)

    await asyncio.gather(*(hungry(lambda m=meli: call(m), tasks=2) for meli in clients))
    return outcomes.count(200), outcomes.count(429)


async def test_two_processes_sharing_a_budget_stay_within_the_emulators_limit(
    emulator: LiveServer, database_storage: SqlBudgetStorage
) -> None:
    app, token = await emulator_seller(emulator)
    clients = [
        MeliClient(
            emulator.url, budget=CallBudget(EMULATOR_PER_MINUTE, EMULATOR_PER_MINUTE, database_storage)
        )
        for _ in range(2)
    ]
    try:
        served, refused = await served_and_refused(clients, app, token)
    finally:
        for meli in clients:
            await meli.aclose()
    assert (served, refused) == (EMULATOR_PER_MINUTE, 0)


async def test_two_processes_each_on_its_own_budget_are_refused_and_cool_down(emulator: LiveServer) -> None:
    # The contrast: budgets kept apart add up past Mercado Libre's limit; the 429s then cool the
    # endpoint down for both (each sees its own: nothing is shared here).
    app, token = await emulator_seller(emulator)
    clients = [
        MeliClient(
            emulator.url, budget=CallBudget(EMULATOR_PER_MINUTE, EMULATOR_PER_MINUTE, cool_down_seconds=30)
        )
        for _ in range(2)
    ]
    try:
        served, refused = await served_and_refused(clients, app, token)
    finally:
        for meli in clients:
            await meli.aclose()
    assert served == EMULATOR_PER_MINUTE
    # One 429 at most for each call in flight when the first came (two tasks in each client): then
    # each client waits out its cool-down rather than calling on.
    assert 1 <= refused <= 4


async def test_the_database_storage_is_registered_as_limits_registers_storages(database: Database) -> None:
    built = storage_from_string("async+postventa-sql://", database=database)
    assert isinstance(built, SqlBudgetStorage)
    assert await built.check()


async def test_a_budget_that_cannot_be_checked_sends_nothing() -> None:
    counted: list[int] = []
    unreachable, close = redis_budget_storage("redis://127.0.0.1:1/0")
    meli = MeliClient(
        BASE, transport=counting_transport(counted), budget=CallBudget(storage=unreachable, close=close)
    )
    try:
        with pytest.raises(MeliError) as refused:
            await meli.order("token", 5, application=application())
    finally:
        await meli.aclose()
    assert refused.value.failure.kind is FailureKind.TRANSIENT
    assert refused.value.failure.code == "marketplace_budget_unavailable"
    assert counted == []


async def test_a_large_budget_is_reserved_in_larger_blocks() -> None:
    shared = CountingMemory()
    counted: list[int] = []
    budget = CallBudget(1_000_000, 1_000_000, shared)
    meli = MeliClient(BASE, transport=counting_transport(counted), budget=budget)
    app = application()
    for _ in range(3000):
        await meli.order("token", 5, application=app)
    assert len(counted) == 3000
    assert shared.reservations <= 14  # 1, 2, 4, ... 512, then 1,000 at a time (a hundredth of the budget)
