"""The worker's slots: a delivery's slot is free for the next claim once its attempt is over, while
its outcome is still being written; and claims wait while too many outcomes are pending."""

from __future__ import annotations

import asyncio

from postventa.delivery.worker import DeliveryWorker
from postventa.meli.client import MeliClient
from postventa.store import outbox


async def test_a_slot_is_free_once_the_attempt_is_over_and_the_task_is_awaited_until_recorded(database):
    worker = DeliveryWorker(database, MeliClient("http://127.0.0.1:9"), concurrency=1)
    recorded = asyncio.Event()
    attempt_over = asyncio.Event()

    async def delivery() -> None:
        worker._attempt_over()  # as deliver() does between the attempt and the outcome's write
        attempt_over.set()
        await recorded.wait()  # the outcome's write

    task = asyncio.create_task(delivery())
    worker._in_flight.add(task)
    task.add_done_callback(worker._finished)
    await attempt_over.wait()

    assert worker._in_flight == set()  # the slot is free for the next claim
    assert worker._recording == {task}
    stop = asyncio.Event()
    stop.set()
    runner = asyncio.create_task(worker.run(stop))  # stopping waits for the pending outcome
    await asyncio.sleep(0.05)
    assert not runner.done()
    recorded.set()
    await asyncio.wait_for(runner, 5)
    assert worker._recording == set()


async def test_claims_wait_while_more_outcomes_than_slots_are_pending(database, monkeypatch):
    claims: list[int] = []

    async def claim_jobs(connection, worker, now, *, limit, **_options):
        claims.append(limit)
        return []

    monkeypatch.setattr(outbox, "claim_jobs", claim_jobs)
    worker = DeliveryWorker(database, MeliClient("http://127.0.0.1:9"), concurrency=2)
    never = asyncio.Event()
    pending = [asyncio.create_task(never.wait()) for _ in range(3)]
    worker._recording.update(pending)  # type: ignore[arg-type]
    try:
        await worker.run_once()
        assert claims == []  # three outcomes pending for two slots: no claim
        pending.pop().cancel()
        worker._recording = set(pending)  # type: ignore[arg-type]
        await worker.run_once()
        assert claims == [2]  # two pending: both slots are claimed for
    finally:
        for task in pending:
            task.cancel()
