"""A real HTTP receiver of webhooks on a loopback port (aiohttp, in the test's own event loop):
it records every request and answers as each path is scripted to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.servers import free_port


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    """How a path answers: statuses in turn (the last one repeats), after a delay; a 3xx redirects
    to `location`."""

    statuses: list[int] = field(default_factory=lambda: [200])
    delay_seconds: float = 0.0
    location: str = "/elsewhere"
    served: int = 0

    def next_status(self) -> int:
        status = self.statuses[min(self.served, len(self.statuses) - 1)]
        self.served += 1
        return status


class Receiver:
    """Requests received, by path; scripts by path (a path without one answers 200)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.received: list[Received] = []
        self.scripts: dict[str, Script] = {}
        self.arrived = asyncio.Condition()

    def at(self, path: str) -> list[Received]:
        """The requests to one path, in arrival order."""
        return [request for request in self.received if request.path == path]

    async def wait_for(self, path: str, count: int, timeout_seconds: float = 10.0) -> list[Received]:
        """Wait until `count` requests reached `path`."""
        async with asyncio.timeout(timeout_seconds), self.arrived:
            await self.arrived.wait_for(lambda: len(self.at(path)) >= count)
        return self.at(path)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(request.path, {k.lower(): v for k, v in request.headers.items()}, body))
        async with self.arrived:
            self.arrived.notify_all()
        script = self.scripts.get(request.path, Script())
        status = script.next_status()
        if script.delay_seconds:
            await asyncio.sleep(script.delay_seconds)
        if 300 <= status < 400:
            return web.Response(status=status, headers={"Location": script.location})
        return web.Response(status=status, text="receiver says no" if status >= 400 else "ok")


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver listening on 127.0.0.1 for the block."""
    found = Receiver(free_port())
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", found.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)  # slow handlers are cut off
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", found.port)
    await site.start()
    try:
        yield found
    finally:
        await runner.cleanup()
