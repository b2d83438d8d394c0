"""Scale on PostgreSQL, as deployed: two API processes and two worker processes (each its own
`postventa` subprocess, sharing one database, Redis and token key) deliver many messages over
distinct conversations to the emulator, each exactly once, and /metrics shows the counts.
Also `serve --workers 2`: several uvicorn processes on one port.

POSTVENTA_SCALE_MESSAGES sets the size (200 here; scripts/scale_run runs 2,000 and records it).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import pytest
import redis.asyncio as redis
from cryptography.fernet import Fernet

from postventa.store.engine import Database
from postventa.store.migrate import upgrade
from tests.conftest import ADMIN_TOKEN, POSTGRES_ADMIN_URL, _postgres_admin, admin_headers
from tests.e2e.faults import conversation_of, is_send
from tests.e2e.report import report, scale
from tests.factories import PEPPER
from tests.servers import free_port

MESSAGES = scale("POSTVENTA_SCALE_MESSAGES", 200)  # scripts/scale_run uses 2000
WORKER_CONCURRENCY = 8
SEND_CONCURRENCY = 32
REDIS_URL = os.environ.get("POSTVENTA_TEST_REDIS", "redis://127.0.0.1:6379/0")
POSTVENTA = str(Path(sys.executable).parent / "postventa")
START_TIMEOUT_SECONDS = 90.0
ADMIN = admin_headers()


# --- the processes --------------------------------------------------------------------------------


@dataclass
class Processes:
    """The subprocesses of one run, their logs in a directory; all stopped (SIGTERM) at the end."""

    logs: Path
    running: list[tuple[str, asyncio.subprocess.Process]] = field(default_factory=list)

    async def start(self, name: str, *args: str, environment: dict[str, str]) -> asyncio.subprocess.Process:
        log = (self.logs / f"{name}.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            POSTVENTA, *args, env=environment, stdout=log, stderr=log
        )
        log.close()
        self.running.append((name, process))
        return process

    async def stop_all(self) -> None:
        for _name, process in self.running:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for _name, process in self.running:
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()

    def tail(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]


async def wait_until_serving(url: str, processes: Processes, name: str, path: str = "/healthz") -> None:
    """Poll `path` until the process answers (or fail with its log)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    async with httpx2.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}{path}")).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            await asyncio.sleep(0.25)
    raise AssertionError(f"{name} did not start:\n{processes.tail(name)}")


def service_environment(database_url: str, emulator_url: str, token_key: str) -> dict[str, str]:
    """What every postventa process of the deployment shares."""
    return {
        **os.environ,
        "POSTVENTA_DATABASE_URL": database_url,
        "POSTVENTA_REDIS_URL": REDIS_URL,
        "POSTVENTA_TOKEN_KEY": token_key,
        "POSTVENTA_ADMIN_TOKEN": ADMIN_TOKEN,
        "POSTVENTA_API_KEY_PEPPER": PEPPER,
        "POSTVENTA_RATE_LIMITS": "send=100000/minute,read=100000/minute",
        "POSTVENTA_MELI_API_URL": emulator_url,
        "POSTVENTA_MELI_REQUESTS_PER_MINUTE": "1000000",
        "POSTVENTA_EMBEDDED_WORKER": "false",
        "POSTVENTA_RETRY_BASE_SECONDS": "0.2",
        "POSTVENTA_RETRY_MAX_SECONDS": "10",
        "POSTVENTA_LOG_LEVEL": "warning",
    }


@pytest.fixture
def redis_available(postgres_available: bool) -> None:
    async def probe() -> bool:
        client = redis.from_url(REDIS_URL)
        try:
            return bool(await client.ping())
        except (OSError, redis.RedisError):
            return False
        finally:
            await client.aclose()

    if not asyncio.run(probe()):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is not reachable at {REDIS_URL}; CI must test on it.")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")


@pytest.fixture
def postgres_url(postgres_available: bool, redis_available: None) -> Iterator[str]:
    """A fresh PostgreSQL database at this version's schema, for this test alone."""
    if not postgres_available:
        pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")
    name = f"postventa_scale_{uuid.uuid4().hex[:10]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"

    async def migrate() -> None:
        database = Database(url)
        try:
            await upgrade(database)
        finally:
            await database.dispose()

    asyncio.run(migrate())
    yield url
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Deployment:
    """The emulator, two API processes and two workers; clients of each."""

    emulator: httpx2.AsyncClient
    apis: list[httpx2.AsyncClient]
    worker_metrics: list[str]
    processes: Processes


@pytest.fixture
async def deployment(postgres_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    processes = Processes(tmp_path)
    emulator_url = f"http://127.0.0.1:{free_port()}"
    environment = service_environment(postgres_url, emulator_url, Fernet.generate_key().decode())
    api_urls = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    worker_metrics = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    try:
        await processes.start(
            "emulator", "emulator", "--port", emulator_url.rsplit(":", 1)[1], environment=environment
        )
        for n, url in enumerate(api_urls):
            port = url.rsplit(":", 1)[1]
            await processes.start(f"api{n}", "serve", "--port", port, environment=environment)
        for n, url in enumerate(worker_metrics):
            args = (
                "worker",
                "--concurrency",
                str(WORKER_CONCURRENCY),
                "--metrics-port",
                url.rsplit(":", 1)[1],
            )
            await processes.start(f"worker{n}", *args, environment=environment)
        await wait_until_serving(emulator_url, processes, "emulator", "/_emulator/config")
        for n, url in enumerate(api_urls):
            await wait_until_serving(url, processes, f"api{n}")
        limits = httpx2.Limits(max_connections=SEND_CONCURRENCY)
        async with (
            httpx2.AsyncClient(base_url=emulator_url, timeout=60, limits=limits) as emulator,
            httpx2.AsyncClient(base_url=api_urls[0], timeout=300, limits=limits) as first,
            httpx2.AsyncClient(base_url=api_urls[1], timeout=300, limits=limits) as second,
        ):
            yield Deployment(emulator, [first, second], worker_metrics, processes)
    finally:
        await processes.stop_all()


# --- the run --------------------------------------------------------------------------------------


async def gather_bounded(coroutines: list[Any], limit: int = SEND_CONCURRENCY) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def bounded(coroutine: Any) -> Any:
        async with gate:
            return await coroutine

    return await asyncio.gather(*(bounded(coroutine) for coroutine in coroutines))


async def linked_account(world: Deployment, messages: int) -> tuple[int, str, list[int], set[int]]:
    """An emulator seller with `messages` orders (one conversation each), linked and synced."""
    emulator, api = world.emulator, world.apis[0]
    config = {"ReadsPerMinute": 10_000_000, "WritesPerMinute": 10_000_000}
    assert (await emulator.put("/_emulator/config", json=config)).status_code == 200
    seller = (await emulator.post("/_emulator/sellers", json={"SiteId": "MLA"})).json()

    async def emulator_order() -> int:
        body = {"SellerId": seller["SellerId"], "SiteId": "MLA", "LogisticType": "cross_docking"}
        response = await emulator.post("/_emulator/orders", json=body)
        assert response.status_code in (200, 201), response.text
        return int(response.json()["OrderId"])

    conversations = set(await gather_bounded([emulator_order() for _ in range(messages)]))
    account = (await api.post("/admin/accounts", json={"Name": "scale"}, headers=ADMIN)).json()["Id"]
    key = (await api.post("/admin/api-keys", json={"AccountIds": [account]}, headers=ADMIN)).json()["ApiKey"]
    link = {key_: seller[key_] for key_ in ("SellerId", "ClientId", "ClientSecret", "RefreshToken")}
    response = await api.put(
        f"/admin/accounts/{account}/mercadolibre", json={**link, "SiteId": "MLA"}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    response = await api.post(f"/admin/accounts/{account}/mercadolibre/sync", headers=ADMIN)
    assert response.json() == {"Imported": messages}, response.text
    return account, key, await local_orders(api, key, account), conversations


async def local_orders(api: httpx2.AsyncClient, key: str, account: int) -> list[int]:
    ids: list[int] = []
    while True:
        params = {"API_KEY": key, "accountId": account, "limit": 1000, "offset": len(ids)}
        page = (await api.get("/v2/orders", params=params)).json()
        ids += [order["Id"] for order in page["Results"]]
        if len(ids) >= page["Paging"]["Total"]:
            return ids


async def outbound_statuses(database_url: str) -> Counter[str]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT status, count(*) AS n FROM messages WHERE direction = 'outbound' GROUP BY status"
        )
    finally:
        await connection.close()
    return Counter({row["status"]: row["n"] for row in rows})


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (0 when there is none)."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match[3])
    return total


@pytest.mark.slow
async def test_two_api_and_two_worker_processes_deliver_every_message_exactly_once(
    deployment: Deployment, postgres_url: str
):
    world = deployment
    account, key, order_ids, conversations = await linked_account(world, MESSAGES)
    assert (await world.emulator.delete("/_emulator/journal")).status_code in (200, 204)

    async def send(index: int, order_id: int) -> None:
        api = world.apis[index % 2]  # spread over both API processes
        params = {"API_KEY": key, "accountId": account, "messageOptions": 4, "message": f"Hola {order_id}"}
        response = await api.post(f"/v2/orders/{order_id}/messages", params=params)
        assert response.status_code == 200, response.text

    started = time.monotonic()
    await gather_bounded([send(index, order_id) for index, order_id in enumerate(order_ids)])
    accepted = time.monotonic()
    statuses: Counter[str] = Counter()
    deadline = started + max(120.0, MESSAGES * 0.5)
    while True:
        statuses = await outbound_statuses(postgres_url)
        if statuses["queued"] + statuses["sending"] == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    delivered = time.monotonic()

    entries = (await world.emulator.get("/_emulator/journal")).json()["Entries"]
    applied = Counter(
        conversation_of(entry["Path"]) for entry in entries if is_send(entry) and entry["Applied"]
    )
    per_conversation = Counter(applied[conversation] for conversation in conversations)
    api_metrics = [(await api.get("/metrics")).text for api in world.apis]
    async with httpx2.AsyncClient(timeout=10) as client:
        worker_metrics = [(await client.get(f"{url}/metrics")).text for url in world.worker_metrics]
    seconds = delivered - started
    report(
        {
            "run": "scale",
            "backend": "postgresql",
            "messages": MESSAGES,
            "api_processes": 2,
            "worker_processes": 2,
            "worker_concurrency": WORKER_CONCURRENCY,
            "statuses": dict(statuses),
            "duplicates": sum(count for times, count in per_conversation.items() if times > 1),
            "missing": per_conversation[0],
            "accept_seconds": round(accepted - started, 1),
            "seconds": round(seconds, 1),
            "messages_per_second": round(MESSAGES / seconds, 1),
        }
    )

    assert statuses == {"sent": MESSAGES}, statuses
    assert per_conversation == {1: MESSAGES}  # every conversation got exactly one applied send
    assert set(applied) <= conversations
    sent_route = {"method": "POST", "route": "/v2/orders/{orderId}/messages", "status": "200"}
    for text in api_metrics:  # the gauge is read from the database: every process shows all
        assert metric(text, "postventa_messages", status="sent") == MESSAGES
        assert metric(text, "postventa_messages", status="queued") == 0
    # Each process counts the requests it answered; the two add up to every send.
    assert (
        sum(metric(text, "postventa_http_requests_total", **sent_route) for text in api_metrics) == MESSAGES
    )
    delivered_attempts = sum(
        metric(text, "postventa_delivery_attempts_total", outcome=outcome)
        for text in worker_metrics
        for outcome in ("sent", "found")
    )
    assert delivered_attempts == MESSAGES


# --- serve --workers ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_serve_with_several_workers_shares_the_port_and_needs_redis(postgres_url: str, tmp_path: Path):
    processes = Processes(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = service_environment(postgres_url, "http://127.0.0.1:9", Fernet.generate_key().decode())
    without_redis = {name: value for name, value in environment.items() if name != "POSTVENTA_REDIS_URL"}
    refused = await processes.start(
        "refused", "serve", "--workers", "2", "--port", str(free_port()), environment=without_redis
    )
    serving = await processes.start(
        "serve", "serve", "--workers", "2", "--port", str(port), environment=environment
    )
    try:
        # Without Redis each process would count the rate limits alone: refused before serving.
        assert await asyncio.wait_for(refused.wait(), timeout=START_TIMEOUT_SECONDS) == 2
        assert "redis_required" in processes.tail("refused")
        await wait_until_serving(url, processes, "serve")
        async with httpx2.AsyncClient(base_url=url, timeout=30) as client:
            children = await wait_for_children(serving.pid, 2)
            assert len(children) == 2
            for _ in range(20):
                assert (await client.get("/healthz")).status_code == 200
            account = await client.post("/admin/accounts", json={"Name": "multi"}, headers=ADMIN)
            assert account.status_code == 201, account.text
            scraped = (await client.get("/metrics")).text
            # The processes write their metrics to one directory: a scrape counts every process's.
            assert metric(scraped, "postventa_http_requests_total", route="/healthz") >= 20
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n")
        answer = await reader.read(4096)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 400")  # uvicorn's parse errors still answered in JSON
        assert b'"Code":"malformed_request"' in answer
    finally:
        await processes.stop_all()
    assert serving.returncode == 0


async def wait_for_children(pid: int, count: int) -> list[int]:
    """The worker processes `pid` spawned (not multiprocessing's helpers), once there are `count`."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        children = [
            int(stat.parent.name)
            for stat in Path("/proc").glob("[0-9]*/stat")
            if _parent_of(stat) == pid and b"spawn_main" in _read(stat.parent / "cmdline")
        ]
        if len(children) >= count or time.monotonic() > deadline:
            return children
        await asyncio.sleep(0.25)


def _parent_of(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
