"""The worker's slots: a delivery's slot is free for the next claim once its attempt is over, while
its outcome is still being written; claims wait while too many outcomes are pending; messages
claimed ahead of a free slot start as slots free, and are delivered before the worker stops."""

from __future__ import annotations

import asyncio

from postventa.delivery.worker import DeliveryWorker
from postventa.meli.client import MeliClient
from postventa.store import outbox
from postventa.store.outbox import ClaimedMessage


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


async def test_claims_wait_while_more_than_twice_as_many_outcomes_as_slots_are_pending(database, monkeypatch):
    # Claims by worker id: a live server's worker of another test in this process calls the same
    # module function while it is patched.
    claims_by: dict[str, list[int]] = {}

    async def claim_jobs(connection, worker_id, now, *, limit, **_options):
        claims_by.setdefault(worker_id, []).append(limit)
        return []

    monkeypatch.setattr(outbox, "claim_jobs", claim_jobs)
    worker = DeliveryWorker(database, MeliClient("http://127.0.0.1:9"), concurrency=2)
    claims = claims_by.setdefault(worker.worker_id, [])
    never = asyncio.Event()
    pending = [asyncio.create_task(never.wait()) for _ in range(5)]
    worker._recording.update(pending)  # type: ignore[arg-type]
    try:
        await worker.run_once()
        assert claims == []  # five outcomes pending for two slots: no claim
        pending.pop().cancel()
        worker._recording = set(pending)  # type: ignore[arg-type]
        await worker.run_once()
        assert claims == [4]  # four pending: both slots, and two ahead of them, are claimed for
    finally:
        for task in pending:
            task.cancel()


async def test_messages_claimed_ahead_start_as_slots_free_and_are_handed_back_on_stop(database, monkeypatch):
    # Claims by worker id: a live server's worker of another test in this process calls the same
    # module function while it is patched.
    claims_by: dict[str, list[int]] = {}
    next_id = iter(range(1, 100))

    async def claim_jobs(connection, worker_id, now, *, limit, **_options):
        claims_by.setdefault(worker_id, []).append(limit)
        if worker_id != worker.worker_id:
            return []
        return [(ClaimedMessage(next(next_id), 1, False), None) for _ in range(limit)]

    monkeypatch.setattr(outbox, "claim_jobs", claim_jobs)
    released: list[list[int]] = []

    async def release_claimed(connection, message_ids, worker_id, now):
        if worker_id == worker.worker_id:
            released.append(list(message_ids))
        return len(message_ids)

    monkeypatch.setattr(outbox, "release_claimed", release_claimed)
    worker = DeliveryWorker(database, MeliClient("http://127.0.0.1:9"), concurrency=1)
    started: list[int] = []
    attempts_over = {message_id: asyncio.Event() for message_id in range(1, 100)}

    async def deliver(claimed, job=None, *, claimed_at=None):  # the attempt, then its outcome
        started.append(claimed.id)
        await attempts_over[claimed.id].wait()
        worker._attempt_over()

    monkeypatch.setattr(worker, "deliver", deliver)

    assert await worker.run_once() == 2  # one for the slot, one ahead of it
    await asyncio.sleep(0)
    assert started == [1]
    assert [message.id for message, *_ in worker._ready] == [2]
    assert await worker.run_once() == 0  # the slot busy and one ahead: nothing more wanted

    attempts_over[1].set()
    await asyncio.sleep(0.01)
    assert started == [1, 2]  # started as the slot freed, without waiting for a claim
    assert claims_by[worker.worker_id] == [2]

    assert await worker.run_once() == 1  # one ahead again
    stop = asyncio.Event()
    stop.set()
    stopping = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.01)
    assert not stopping.done()  # the attempt in flight is waited for
    assert released == [[3]]  # the one claimed ahead is handed back, not started
    attempts_over[2].set()
    await asyncio.wait_for(stopping, 5)
    assert started == [1, 2]
    assert claims_by[worker.worker_id] == [2, 1]
