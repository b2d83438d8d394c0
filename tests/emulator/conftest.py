"""Fixtures: a fresh emulator per test, reached in-process over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest
from fastapi import FastAPI

from postventa.emulator import EmulatorConfig, create_emulator_app
from tests.emulator.world import World, emulator_of


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Override in a module to configure the emulator."""
    return EmulatorConfig()


@pytest.fixture
async def emulator_app(emulator_config: EmulatorConfig) -> AsyncIterator[FastAPI]:
    app = create_emulator_app(emulator_config)
    yield app
    await emulator_of(app).close()


@pytest.fixture
async def meli(emulator_app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=emulator_app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://api.mercadolibre.test") as http:
        yield http


@pytest.fixture
def world(meli: httpx2.AsyncClient) -> World:
    return World(meli)
