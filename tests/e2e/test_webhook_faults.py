"""Webhooks through a failing receiver while workers are killed (issue 20): every event accepted at
least once, duplicates only under one `webhook-id`, every signature valid."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from postventa.store.engine import Database
from tests.conftest import LiveServer, make_settings
from tests.e2e.conftest import EmulatorServer, World
from tests.e2e.report import report, scale
from tests.e2e.webhook_faults import as_record, run_webhook_faults

MESSAGES = scale("POSTVENTA_WEBHOOK_FAULT_MESSAGES", 10)  # scripts/webhook_fault_run uses 300
KILLS = scale("POSTVENTA_WEBHOOK_FAULT_KILLS", 2)  # scripts/webhook_fault_run uses 6


@pytest.fixture
async def isolated_world(
    isolated_database: Database, emulator: EmulatorServer
) -> AsyncIterator[tuple[World, Database, str]]:
    """A database of its own and an API that runs no worker (worker processes are started and killed)."""
    url = isolated_database.url.render_as_string(hide_password=False)
    with LiveServer(make_settings(url, meli_api_url=emulator.url, embedded_worker=False)) as server:
        async with (
            httpx2.AsyncClient(base_url=server.url, timeout=30) as api,
            httpx2.AsyncClient(base_url=emulator.url, timeout=30) as meli,
        ):
            yield World(api, meli, server.url), isolated_database, url


@pytest.mark.slow
async def test_every_event_arrives_at_least_once_through_faults_and_kills(
    isolated_world: tuple[World, Database, str], emulator: EmulatorServer
):
    world, database, url = isolated_world
    result = await run_webhook_faults(world, database, url, emulator.url, messages=MESSAGES, kills=KILLS)
    report(as_record(result, "sqlite" if url.startswith("sqlite") else "postgresql"))

    assert result.expected == 2 * MESSAGES
    assert result.missing == 0
    assert result.ids_per_event_over_one == 0
    assert result.bad_signatures == 0
