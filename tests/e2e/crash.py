"""A crash run: worker processes killed with SIGKILL at random moments while they deliver.

Shared by the CI test (small) and scripts/crash_run.py (the full run whose results are in docs/).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import World, wait_for
from tests.e2e.faults import DeliveryTally, conversation_of, is_send

POSTVENTA = str(Path(sys.executable).parent / "postventa")


@dataclass
class CrashRunResult(DeliveryTally):
    """What a crash run observed."""

    kills: int = 0


def worker_environment(database_url: str, emulator_url: str) -> dict[str, str]:
    """A worker process against the test database and the emulator, with short timeouts and leases."""
    return {
        **os.environ,
        "POSTVENTA_DATABASE_URL": database_url,
        "POSTVENTA_MELI_API_URL": emulator_url,
        "POSTVENTA_MELI_TIMEOUT_SECONDS": "1",
        "POSTVENTA_WORKER_LEASE_SECONDS": "5",
        "POSTVENTA_RETRY_BASE_SECONDS": "0.2",
        "POSTVENTA_RETRY_MAX_SECONDS": "10",
        "POSTVENTA_LOG_LEVEL": "warning",
    }


async def start_worker(environment: dict[str, str], concurrency: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        POSTVENTA,
        "worker",
        "--concurrency",
        str(concurrency),
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def run_crashes(
    world: World,
    database_url: str,
    emulator_url: str,
    *,
    messages: int,
    kills: int,
    seed: int = 7,
    timeout: float = 180.0,
) -> CrashRunResult:
    """Queue messages (the API runs no worker), then kill and restart workers while they deliver."""
    chance = random.Random(seed)
    seller = await world.linked_seller("MLA")
    created = [await world.emulator_order(seller) for _ in range(messages)]
    await world.sync(seller)
    order_ids = [await world.local_order_id(seller, item["OrderId"]) for item in created]
    conversations = {item["PackId"] or item["OrderId"] for item in created}
    mark = await world.journal_mark()
    # Every Mercado Libre call takes a while, so kills land in the middle of attempts.
    await world.faults([{"Route": "*", "Kind": "delay", "DelaySeconds": 0.15, "Rate": 1.0}])
    for order_id in order_ids:
        response = await world.api.post(
            f"/v2/orders/{order_id}/messages",
            params=seller.credentials(messageOptions=4, message=f"Hola {order_id}"),
        )
        assert response.status_code == 200, response.text
    environment = worker_environment(database_url, emulator_url)
    started = asyncio.get_running_loop().time()
    for _ in range(kills):
        process = await start_worker(environment, concurrency=4)
        await asyncio.sleep(chance.uniform(0.5, 2.0))
        process.send_signal(signal.SIGKILL)
        await process.wait()
    final = await start_worker(environment, concurrency=8)
    result = CrashRunResult(messages=messages, kills=kills)
    try:

        async def settled() -> bool:
            result.statuses = Counter()
            for order_id in order_ids:
                result.statuses[(await world.conversation(seller, order_id))[0]["Status"]] += 1
            return result.statuses["queued"] + result.statuses["sending"] == 0

        await wait_for(settled, timeout=timeout, every=1.0)
    finally:
        final.send_signal(signal.SIGTERM)
        await final.wait()
        await world.faults([])
    result.seconds = asyncio.get_running_loop().time() - started
    for entry in await world.journal(mark):
        if is_send(entry) and entry["Applied"] and conversation_of(entry["Path"]) in conversations:
            result.applied_per_conversation[conversation_of(entry["Path"])] += 1
    return result
