"""The in-memory moving window answers exactly as `limits`' own MemoryStorage does, request by request."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from postventa.api.ratelimit import RateLimiter
from postventa.api.ratelimit_memory import SWEEP_EVERY_HITS, LocalMovingWindowStorage

# Steps: how far the clock moves (in tenths of a second) before a request, and the request's cost.
STEPS = st.lists(st.tuples(st.integers(0, 15), st.integers(1, 3)), min_size=1, max_size=60)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    return fake


@settings(max_examples=150, deadline=None)
@given(steps=STEPS, limit=st.integers(1, 6), seconds=st.integers(1, 3))
async def test_same_answers_as_limits_memory_storage(steps, limit, seconds):
    clock = Clock()
    original, time.time = time.time, clock  # hypothesis runs examples without function fixtures
    try:
        item = RateLimitItemPerSecond(limit, seconds)
        ours = MovingWindowRateLimiter(LocalMovingWindowStorage())
        reference = MovingWindowRateLimiter(MemoryStorage())
        for tenths, cost in steps:
            clock.now += tenths / 10
            allowed = await ours.hit(item, "key", "send", cost=cost)
            assert allowed == await reference.hit(item, "key", "send", cost=cost)
            stats = await ours.get_window_stats(item, "key", "send")
            expected = await reference.get_window_stats(item, "key", "send")
            assert stats.remaining == expected.remaining
            if expected.remaining < limit:  # some entry is in the window: it sets the reset
                assert stats.reset_time == pytest.approx(expected.reset_time)
    finally:
        time.time = original


async def test_a_refused_request_is_not_counted(clock):
    storage = LocalMovingWindowStorage()
    assert [await storage.acquire_entry("k", 2, 60) for _ in range(3)] == [True, True, False]
    clock.now += 30
    assert await storage.get_moving_window("k", 2, 60) == (clock.now - 30, 2)
    clock.now += 30.5
    assert await storage.acquire_entry("k", 2, 60) is True
    assert (await storage.get_moving_window("k", 2, 60))[1] == 1


async def test_keys_whose_windows_emptied_are_forgotten(clock):
    storage = LocalMovingWindowStorage()
    await storage.acquire_entry("idle", 5, 1)
    clock.now += 2
    for _ in range(SWEEP_EVERY_HITS):
        await storage.acquire_entry("busy", 10**9, 60)
    assert "idle" not in storage._windows
    assert "busy" in storage._windows


async def test_counters_expire(clock):
    storage = LocalMovingWindowStorage()
    assert await storage.incr("c", 10) == 1
    assert await storage.incr("c", 10, amount=2) == 3
    assert await storage.get_expiry("c") == clock.now + 10
    clock.now += 10
    assert await storage.get("c") == 0
    await storage.incr("c", 10)
    await storage.clear("c")
    assert await storage.get("c") == 0


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.integers(0, 15), min_size=1, max_size=60),
    limit=st.integers(1, 6),
    seconds=st.integers(1, 3),
)
async def test_the_rate_limiters_one_call_path_answers_as_limits_strategy_does(steps, limit, seconds):
    # RateLimiter takes its own path on this storage (hit_now); on any other storage it asks the
    # strategy. Both must give every request the same answer and the same headers; and the answers
    # are `limits`' MemoryStorage's.
    clock = Clock()
    original, time.time = time.time, clock
    try:
        limits = {"send": RateLimitItemPerSecond(limit, seconds), "read": RateLimitItemPerSecond(1000, 1)}
        ours = RateLimiter(limits)
        through_strategy = RateLimiter(limits, LocalMovingWindowStorage())
        through_strategy._local = None
        limits_own = RateLimiter(limits, MemoryStorage())
        assert ours._local is not None
        for tenths in steps:
            clock.now += tenths / 10
            state = await ours.hit("prefix", "send")
            assert state == await through_strategy.hit("prefix", "send")
            reference = await limits_own.hit("prefix", "send")
            assert (state.allowed, state.remaining) == (reference.allowed, reference.remaining)
            assert await ours.peek("prefix", "send") == await through_strategy.peek("prefix", "send")
    finally:
        time.time = original
