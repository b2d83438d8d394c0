"""Shared fixtures: a real database per backend (SQLite file, PostgreSQL database made for the run),
the application over in-process HTTP, and a real uvicorn server for wire-level tests.

Every test makes its own accounts (tests/factories.py), so tests share a database without seeing
each other's data, exactly as tenants do.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx2
import pytest
import redis

from postventa.api.server import ConnectionLimits, protocol_for
from postventa.config import Settings
from postventa.store.engine import Database
from postventa.store.migrate import upgrade
from postventa.wiring import create_app, meli_client
from tests.factories import PEPPER
from tests.servers import ThreadedServer, serve_processes

# Every postventa process the tests start inherits this: with two xdist workers running servers,
# workers and benchmarks side by side, the default pools would exhaust PostgreSQL's 100 connections.
os.environ.setdefault("POSTVENTA_DATABASE_POOL_SIZE", "4")

POSTGRES_ADMIN_URL = os.environ.get(
    "POSTVENTA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ADMIN_TOKEN = "test-admin-token"
BACKENDS = ["sqlite", "postgresql"]


def postgres_reachable(url: str) -> bool:
    """Whether the PostgreSQL at `url` answers within a few seconds."""

    async def probe() -> bool:
        try:
            connection = await asyncpg.connect(url, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await connection.close()
        return True

    return asyncio.run(probe())


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    available = postgres_reachable(POSTGRES_ADMIN_URL)
    if not available and os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}; CI must test on it.")
    return available


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, empty database of each backend, dropped at the end of the run."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'postventa.db'}"
        return
    if not request.getfixturevalue("postgres_available"):
        pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")
    name = f"postventa_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _postgres_admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "api_key_pepper": PEPPER,
        "rate_limits": "send=1000000/minute,read=1000000/minute",
        # No worker unless a test asks for one, and never the real Mercado Libre.
        "embedded_worker": False,
        "meli_api_url": "http://127.0.0.1:9",
        # Console pages ask for changes every second: the browser tests wait for them.
        "console_refresh_seconds": 1,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[Database]:
    """The migrated database, shared by the tests of one backend."""
    db = Database(database_url)
    await upgrade(db)
    yield db
    await db.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def client(settings: Settings, database: Database) -> AsyncIterator[httpx2.AsyncClient]:
    """The application over in-process HTTP (ASGI). ASGI transports run no lifespan: the Mercado Libre
    client (which a send asks for caps when the account is linked) is this fixture's to close."""
    meli = meli_client(settings)
    app = create_app(settings, database=database, meli=meli)
    transport = httpx2.ASGITransport(app=app)
    try:
        async with httpx2.AsyncClient(transport=transport, base_url="http://postventa.test") as http:
            yield http
    finally:
        await meli.aclose()


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class LiveServer(ThreadedServer):
    """postventa served over real TCP (with the JSON parse-error protocol), with its settings."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(create_app(settings), http=protocol_for(ConnectionLimits.from_settings(settings)))
        self.settings = settings


@pytest.fixture(scope="session")
def live_server(database_url: str, database: Database) -> Iterator[LiveServer]:
    """postventa served over real TCP on the backend's database (migrated by `database`)."""
    with LiveServer(make_settings(database_url)) as server:
        yield server


@pytest.fixture(scope="session")
def served_postventa(
    database_url: str, database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`postventa serve` in a process of its own (the installed command) on the backend's migrated
    database, no worker: its base URL. For black-box tests of clients (the SDK, the CLI)."""
    directory = tmp_path_factory.mktemp("served")
    with serve_processes(
        1, directory, database_url=database_url, admin_token=ADMIN_TOKEN, api_key_pepper=PEPPER
    ) as (url,):
        yield url


def tmp_file(directory: Path, name: str, content: bytes) -> Path:
    path = directory / name
    path.write_bytes(content)
    return path


@asynccontextmanager
async def fresh_database_url(database_url: str, tmp_path: Path, label: str) -> AsyncIterator[str]:
    """The URL of a new migrated database of the same backend as `database_url`, dropped after."""
    name = f"postventa_{label}_{uuid.uuid4().hex[:10]}"
    on_sqlite = database_url.startswith("sqlite")
    if on_sqlite:
        url = f"sqlite:///{tmp_path / f'{label}.db'}"
    else:
        await _postgres_admin(f'CREATE DATABASE "{name}"')
        url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        migrating = Database(url)
        await upgrade(migrating)
        await migrating.dispose()
        yield url
    finally:
        if not on_sqlite:
            await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def fresh_database(database_url: str, tmp_path: Path, label: str) -> AsyncIterator[Database]:
    """`fresh_database_url`, opened (and closed before it is dropped)."""
    async with fresh_database_url(database_url, tmp_path, label) as url:
        db = Database(url)
        try:
            yield db
        finally:
            await db.dispose()


@pytest.fixture
async def isolated_database(database_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database of the backend for this test alone (no other worker may claim from it)."""
    async with fresh_database(database_url, tmp_path, "iso") as db:
        yield db


REDIS_URL = os.environ.get("POSTVENTA_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis; missing, the tests that need it skip, or fail with CI=true."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is not reachable at {REDIS_URL}; CI must test on it.")
        pytest.skip("Redis not reachable (set CI=true to make this a failure)")
    finally:
        client.close()
    return REDIS_URL
