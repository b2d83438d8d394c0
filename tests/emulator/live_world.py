"""A fresh emulator served by a real uvicorn on a loopback port, driven by a `World` over TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx2

from postventa.emulator import Emulator, EmulatorConfig, create_emulator_app
from tests.emulator.world import LiveServer, World, emulator_of


@dataclass
class LiveEmulator:
    """The world that drives the served emulator, and the emulator itself (to look at its state)."""

    world: World
    emulator: Emulator
    url: str


@asynccontextmanager
async def live_emulator(config: EmulatorConfig | None = None) -> AsyncIterator[LiveEmulator]:
    """Serve a new emulator for the duration of the block."""
    app = create_emulator_app(config)
    with LiveServer(app) as server:
        async with httpx2.AsyncClient(base_url=server.url, timeout=5) as http:
            yield LiveEmulator(World(http), emulator_of(app), server.url)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> bool:
    """Whether `check` turns true within `seconds` (polled every 20 ms)."""
    for _ in range(int(seconds / 0.02)):
        if await check():
            return True
        await asyncio.sleep(0.02)
    return await check()
