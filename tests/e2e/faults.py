"""A fault run: many messages over distinct conversations while the emulator injects one fault kind.

Shared by the CI test (small) and scripts/fault_run.py (the full run whose results are in docs/).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from postventa.emulator.config import REQUESTS_PER_MINUTE
from tests.e2e.conftest import World, wait_for

UNLIMITED = 10_000_000

FAULT_KINDS: dict[str, dict[str, Any]] = {
    "429": {"Kind": "429"},
    "429_retry_after": {"Kind": "429", "RetryAfterSeconds": 1},
    "500": {"Kind": "500"},
    "503": {"Kind": "503"},
    "delay": {"Kind": "delay", "DelaySeconds": 0.3},
    "timeout": {"Kind": "timeout", "DelaySeconds": 2},
    "reset": {"Kind": "reset"},
    "lost_response": {"Kind": "lost_response"},
}


@dataclass
class DeliveryTally:
    """What a long run observed: final statuses, and sends Mercado Libre applied per conversation."""

    messages: int
    statuses: Counter[str] = field(default_factory=Counter)
    applied_per_conversation: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def duplicates(self) -> int:
        return sum(1 for count in self.applied_per_conversation.values() if count > 1)

    @property
    def missing(self) -> int:
        return self.messages - sum(1 for count in self.applied_per_conversation.values() if count >= 1)


@dataclass
class FaultRunResult(DeliveryTally):
    """What a fault run observed."""

    kind: str = ""
    faults_injected: int = 0
    retry_after_violations: int = 0


def is_send(entry: dict[str, Any]) -> bool:
    path = entry["Path"]
    return entry["Method"] == "POST" and (
        path.endswith("/option") or ("/messages/packs/" in path and "/sellers/" in path)
    )


def conversation_of(path: str) -> int:
    parts = path.strip("/").split("/")
    return int(parts[parts.index("packs") + 1])


async def run_faults(
    world: World, kind: str, messages: int, *, rate: float = 0.2, timeout: float = 120.0
) -> FaultRunResult:
    """Queue `messages` sends on distinct orders under one fault kind; wait until all settle.

    Mercado Libre's own per-application limit is lifted for the run: the run is about the injected
    faults (429s included, as a fault kind), and the e2e server paces far above 500 calls a minute.
    """
    await world.configure(ReadsPerMinute=UNLIMITED, WritesPerMinute=UNLIMITED)
    try:
        return await _run_faults(world, kind, messages, rate=rate, timeout=timeout)
    finally:
        await world.faults([])
        await world.configure(ReadsPerMinute=REQUESTS_PER_MINUTE, WritesPerMinute=REQUESTS_PER_MINUTE)


async def _run_faults(
    world: World, kind: str, messages: int, *, rate: float, timeout: float
) -> FaultRunResult:
    seller = await world.linked_seller("MLA")
    created = [await world.emulator_order(seller) for _ in range(messages)]
    await world.sync(seller)
    order_ids = [await world.local_order_id(seller, item["OrderId"]) for item in created]
    conversations = {item["PackId"] or item["OrderId"] for item in created}
    mark = await world.journal_mark()
    await world.faults([{"Route": "*", "Rate": rate, **FAULT_KINDS[kind]}])
    started = asyncio.get_running_loop().time()

    async def send(order_id: int) -> None:
        response = await world.api.post(
            f"/v2/orders/{order_id}/messages",
            params=seller.credentials(messageOptions=4, message=f"Hola {order_id}"),
        )
        assert response.status_code == 200, response.text

    await asyncio.gather(*(send(order_id) for order_id in order_ids))
    result = FaultRunResult(kind=kind, messages=messages)

    async def settled() -> bool:
        result.statuses = Counter()
        for order_id in order_ids:
            status = (await world.conversation(seller, order_id))[0]["Status"]
            result.statuses[status] += 1
        return result.statuses["queued"] + result.statuses["sending"] == 0

    try:
        await wait_for(settled, timeout=timeout, every=0.5)
    except AssertionError:
        stuck = [
            m
            for o in order_ids
            for m in await world.conversation(seller, o)
            if m["Status"] in ("queued", "sending")
        ]
        raise AssertionError(f"not settled: {dict(result.statuses)}; e.g. {stuck[:3]}") from None
    result.seconds = asyncio.get_running_loop().time() - started
    await world.faults([])
    entries = [entry for entry in await world.journal(mark) if entry["Method"] != "NOTIFY"]
    sends = [entry for entry in entries if is_send(entry) and conversation_of(entry["Path"]) in conversations]
    for entry in sends:
        if entry["Applied"]:
            result.applied_per_conversation[conversation_of(entry["Path"])] += 1
    result.faults_injected = sum(1 for entry in entries if entry.get("Fault"))
    result.retry_after_violations = _retry_after_violations(sends, FAULT_KINDS[kind].get("RetryAfterSeconds"))
    return result


def _retry_after_violations(sends: list[dict[str, Any]], retry_after: float | None) -> int:
    """Sends that came back sooner than the Retry-After of the 429 before them (same conversation)."""
    if retry_after is None:
        return 0
    by_conversation: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in sends:
        by_conversation[conversation_of(entry["Path"])].append(entry)
    violations = 0
    for entries in by_conversation.values():
        for before, after in pairwise(entries):
            if before["Fault"] == "429" and before["Status"] == 429:
                gap = dt.datetime.fromisoformat(after["At"]) - dt.datetime.fromisoformat(before["At"])
                if gap.total_seconds() < retry_after - 0.05:
                    violations += 1
    return violations
