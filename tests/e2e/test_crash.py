"""Workers killed with SIGKILL mid-delivery and restarted: every message delivered exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from postventa.store.engine import Database
from tests.conftest import LiveServer, make_settings
from tests.e2e.conftest import EmulatorServer, World
from tests.e2e.crash import run_crashes
from tests.e2e.report import report, scale

MESSAGES = scale("POSTVENTA_CRASH_MESSAGES", 40)  # scripts/crash_run uses 300
KILLS = scale("POSTVENTA_CRASH_KILLS", 5)  # scripts/crash_run uses 12


@pytest.fixture
async def isolated_world(
    isolated_database: Database, emulator: EmulatorServer
) -> AsyncIterator[tuple[World, str]]:
    """A database of its own (no other worker may claim its messages) and an API that runs no worker."""
    url = isolated_database.url.render_as_string(hide_password=False)
    with LiveServer(make_settings(url, meli_api_url=emulator.url, embedded_worker=False)) as server:
        async with (
            httpx2.AsyncClient(base_url=server.url, timeout=30) as api,
            httpx2.AsyncClient(base_url=emulator.url, timeout=30) as meli,
        ):
            yield World(api, meli, server.url), url


@pytest.mark.slow
async def test_killed_workers_deliver_every_message_exactly_once(
    isolated_world: tuple[World, str], emulator: EmulatorServer
):
    world, url = isolated_world
    result = await run_crashes(
        world, url, emulator.url, messages=MESSAGES, kills=KILLS, timeout=max(180.0, MESSAGES)
    )
    report(
        {
            "run": "crash",
            "backend": url.split(":", 1)[0],
            "messages": result.messages,
            "kills": result.kills,
            "statuses": dict(result.statuses),
            "duplicates": result.duplicates,
            "missing": result.missing,
            "seconds": round(result.seconds, 1),
        }
    )

    assert result.statuses == {"sent": MESSAGES}
    assert result.missing == 0
    assert result.duplicates == 0
