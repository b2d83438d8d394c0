"""Observability over HTTP: Prometheus metrics (/metrics), readiness (/readyz) and the request id.

Metrics live in process-wide registries that every test shares, so counters are asserted as deltas
(the value after minus the value before), never as absolute values.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from alembic import command
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Connection

from postventa.domain.sites import Site
from postventa.store import outbox
from postventa.store.engine import Database
from postventa.store.links import MarketplaceLink, save_link
from postventa.store.migrate import alembic_config, current_revision, head_revision
from postventa.wiring import create_app
from tests.conftest import BACKENDS, POSTGRES_ADMIN_URL, _postgres_admin, make_settings
from tests.factories import make_order, make_tenant, now
from tests.integration.http_helpers import custom_client, messages_url, send

MESSAGES_ROUTE = "/v2/orders/{orderId}/messages"
TEXT = {"messageOptions": 4, "message": "Hola"}
SELLER_IDS = iter(range(700_000_000, 799_999_999))
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def sample(name: str, **labels: str) -> float:
    """The current value of one sample of the default registry (0 when it was never set)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def parse(text: str) -> Samples:
    """A Prometheus text exposition as {(sample name, labels): value}."""
    return {
        (found.name, frozenset(found.labels.items())): found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@asynccontextmanager
async def app_client(
    database_url: str, database: Database, **overrides: object
) -> AsyncIterator[httpx2.AsyncClient]:
    """The application on `database` (which may be another than the backend's shared one)."""
    app = create_app(make_settings(database_url, **overrides), database=database)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://postventa.test") as http:
        yield http


async def scrape(client: httpx2.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


# --- /metrics -------------------------------------------------------------------------------------


async def test_metrics_is_prometheus_text_open_and_outside_the_schema(client):
    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE postventa_http_requests_total counter" in response.text
    assert "# TYPE postventa_http_request_duration_seconds histogram" in response.text
    assert "# TYPE postventa_messages gauge" in response.text
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not {"/metrics", "/readyz", "/healthz"} & set(paths)


async def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(client):
    response = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


async def test_requests_are_counted_by_route_template_and_status(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    unknown = f"/nowhere/{order_id}"
    before = {
        "200": sample("postventa_http_requests_total", method="GET", route=MESSAGES_ROUTE, status="200"),
        "401": sample("postventa_http_requests_total", method="GET", route=MESSAGES_ROUTE, status="401"),
        "404": sample("postventa_http_requests_total", method="GET", route="unmatched", status="404"),
        "count": sample("postventa_http_request_duration_seconds_count", method="GET", route=MESSAGES_ROUTE),
    }

    assert (await client.get(messages_url(order_id), params=tenant.credentials())).status_code == 200
    assert (await client.get(messages_url(order_id), params=tenant.credentials())).status_code == 200
    bad_key = {**tenant.credentials(), "API_KEY": "pv_nope_nope"}
    assert (await client.get(messages_url(order_id), params=bad_key)).status_code == 401
    assert (await client.get(unknown)).status_code == 404

    def delta(key: str, name: str, **labels: str) -> float:
        return sample(name, **labels) - before[key]

    assert (
        delta("200", "postventa_http_requests_total", method="GET", route=MESSAGES_ROUTE, status="200") == 2
    )
    assert (
        delta("401", "postventa_http_requests_total", method="GET", route=MESSAGES_ROUTE, status="401") == 1
    )
    assert delta("404", "postventa_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert (
        delta("count", "postventa_http_request_duration_seconds_count", method="GET", route=MESSAGES_ROUTE)
        == 3
    )
    # The raw paths never become labels: the ids would make one series per order.
    routes = {found.labels.get("route", "") for metric in REGISTRY.collect() for found in metric.samples}
    assert not [route for route in routes if str(order_id) in route.split("/") or "nowhere" in route]


async def test_the_scrape_shows_what_the_registry_holds(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    labels = {"method": "POST", "route": MESSAGES_ROUTE, "status": "200"}
    before = value(await scrape(client), "postventa_http_requests_total", **labels)

    assert (await send(client, tenant, order_id, **TEXT)).status_code == 200

    assert value(await scrape(client), "postventa_http_requests_total", **labels) - before == 1


async def test_methods_a_client_invents_are_one_label(client):
    before = sample("postventa_http_requests_total", method="other", route="unmatched", status="404")

    await client.request("BREW", f"/coffee/{uuid.uuid4().hex}")

    assert (
        sample("postventa_http_requests_total", method="other", route="unmatched", status="404") - before == 1
    )


async def test_a_rate_limit_refusal_is_counted(database_url, database):
    tenant = await make_tenant(database)
    first, second = [await make_order(database, tenant) for _ in range(2)]
    refused_labels = {"method": "POST", "route": MESSAGES_ROUTE, "status": "429"}
    before = sample("postventa_rate_limit_refusals_total", endpoint_class="send")
    before_429 = sample("postventa_http_requests_total", **refused_labels)

    async with custom_client(database_url, database, rate_limits="send=1/minute,read=1200/minute") as http:
        assert (await send(http, tenant, first, **TEXT)).status_code == 200
        assert (await send(http, tenant, second, **TEXT)).status_code == 429

    assert sample("postventa_rate_limit_refusals_total", endpoint_class="send") - before == 1
    assert sample("postventa_http_requests_total", **refused_labels) - before_429 == 1


async def test_notifications_are_counted_by_topic_and_acceptance(client):
    labels = {"topic": "other", "accepted": "false"}
    before = sample("postventa_inbound_notifications_total", **labels)

    response = await client.post(
        "/webhooks/mercadolibre",
        json={"topic": f"made-up-{uuid.uuid4().hex}", "resource": "/questions/1", "user_id": 1},
    )

    assert response.status_code == 200
    assert response.json() == {"Status": 200, "Accepted": False}
    assert sample("postventa_inbound_notifications_total", **labels) - before == 1


async def _link(database: Database, account_id: int) -> None:
    link = MarketplaceLink(account_id, next(SELLER_IDS), Site.MLA, "app", "secret", "refresh", None, None)
    async with database.transaction(write=True) as connection:
        await save_link(connection, link, now(), database.token_cipher)


async def test_queue_gauges_read_the_database(database_url, isolated_database):
    database = isolated_database
    linked, unlinked = await make_tenant(database), await make_tenant(database)
    await _link(database, linked.account_id)
    async with app_client(database_url, database) as http:
        empty = await scrape(http)
        for tenant, count in ((linked, 2), (unlinked, 1)):
            for _ in range(count):
                order_id = await make_order(database, tenant)
                assert (await send(http, tenant, order_id, **TEXT)).status_code == 200
        after = await scrape(http)

    for status in ("queued", "sending", "sent", "moderated", "failed"):
        assert value(empty, "postventa_messages", status=status) == 0
    assert value(empty, "postventa_messages_due") == 0
    assert value(after, "postventa_messages", status="queued") == 3
    assert value(after, "postventa_messages", status="sent") == 0
    # Only the linked account's messages can be claimed now.
    assert value(after, "postventa_messages_due") == 2


async def test_a_scrape_without_the_database_still_shows_the_process(database_url):
    unreachable = Database("postgresql://postgres@127.0.0.1:1/postventa")
    try:
        async with app_client(database_url, unreachable) as http:
            response = await http.get("/metrics")
    finally:
        await unreachable.dispose()

    assert response.status_code == 200
    assert "postventa_http_requests_total" in response.text
    assert "postventa_messages_due" not in response.text


# --- multiprocess mode ----------------------------------------------------------------------------

_CHILD = """
import sys
from postventa.metrics import HTTP_REQUESTS, QueueSnapshot, exposition, is_multiprocess
assert is_multiprocess()
HTTP_REQUESTS.labels("GET", "/healthz", "200").inc(int(sys.argv[1]))
if sys.argv[2] == "scrape":
    sys.stdout.write(exposition(QueueSnapshot({"queued": 4}, 1), None)[0].decode())
"""


def test_multiprocess_mode_adds_up_every_process(tmp_path: Path):
    """With PROMETHEUS_MULTIPROC_DIR, a scrape in one API process counts the others' requests."""
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def run(increment: int, mode: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(increment), mode],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    run(2, "count")
    samples = parse(run(3, "scrape"))

    assert value(samples, "postventa_http_requests_total", method="GET", route="/healthz", status="200") == 5
    assert value(samples, "postventa_messages", status="queued") == 4
    assert value(samples, "postventa_messages_due") == 1


# --- /readyz --------------------------------------------------------------------------------------


async def _heartbeat(database: Database, at: dt.datetime) -> None:
    async with database.transaction(write=True) as connection:
        await outbox.heartbeat(connection, f"test:{uuid.uuid4().hex[:6]}", at)


async def _readyz(database_url: str, database: Database, clock: Callable[[], dt.datetime] = now):
    app = create_app(make_settings(database_url), database=database, clock=clock)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://postventa.test"
    ) as http:
        return await http.get("/readyz")


async def test_ready_with_a_current_schema_and_a_fresh_heartbeat(database_url, isolated_database):
    await _heartbeat(isolated_database, now() - dt.timedelta(seconds=5))

    response = await _readyz(database_url, isolated_database)

    assert response.status_code == 200
    assert response.json() == {
        "Status": "ready",
        "Checks": {"Database": "ok", "Migrations": "ok", "Worker": "ok"},
    }


async def test_not_ready_without_any_worker_heartbeat(database_url, isolated_database):
    response = await _readyz(database_url, isolated_database)

    assert response.status_code == 503
    assert response.json() == {
        "Status": "not_ready",
        "Checks": {"Database": "ok", "Migrations": "ok", "Worker": "no heartbeat from any delivery worker"},
    }


async def test_not_ready_when_the_newest_heartbeat_is_stale(database_url, isolated_database):
    fixed_now = now()
    await _heartbeat(isolated_database, fixed_now - dt.timedelta(seconds=300))
    await _heartbeat(isolated_database, fixed_now - dt.timedelta(seconds=73))

    response = await _readyz(database_url, isolated_database, clock=lambda: fixed_now)

    assert response.status_code == 503
    assert response.json()["Checks"] == {
        "Database": "ok",
        "Migrations": "ok",
        "Worker": "no heartbeat for 73 s",
    }


@pytest.fixture(params=BACKENDS)
async def database_at_0002(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_available: bool
) -> AsyncIterator[tuple[str, Database]]:
    """A new database of the backend migrated to revision 0002 only (an older version's schema)."""
    if request.param == "sqlite":
        url, name = f"sqlite:///{tmp_path / 'old.db'}", None
    else:
        if not postgres_available:
            pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")
        name = f"postventa_old_{uuid.uuid4().hex[:12]}"
        await _postgres_admin(f'CREATE DATABASE "{name}"')
        url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    database = Database(url)

    def upgrade_to_0002(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")

    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(upgrade_to_0002)
        yield url, database
    finally:
        await database.dispose()
        if name is not None:
            await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_not_ready_when_the_schema_is_behind(database_at_0002):
    url, database = database_at_0002
    assert await current_revision(database) == "0002"

    response = await _readyz(url, database)

    assert response.status_code == 503
    assert response.json() == {
        "Status": "not_ready",
        "Checks": {
            "Database": "ok",
            "Migrations": f"at revision 0002, this version needs {head_revision()}",
            "Worker": "not checked: the schema is not current",
        },
    }


async def test_not_ready_when_the_database_does_not_answer(database_url):
    unreachable = Database("postgresql://postgres@127.0.0.1:1/postventa")
    try:
        response = await _readyz(database_url, unreachable)
    finally:
        await unreachable.dispose()

    assert response.status_code == 503
    checks = response.json()["Checks"]
    assert checks["Database"].startswith("unreachable (")
    assert "127.0.0.1" not in checks["Database"]  # no connection details on an open endpoint
    assert checks["Migrations"] == checks["Worker"] == "unknown"


async def test_healthz_stays_a_process_check(client):
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"Status": "ok"}


# --- request id -----------------------------------------------------------------------------------


async def test_a_valid_incoming_request_id_is_echoed(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.01_x"})

    assert response.headers["x-request-id"] == "lb-7f3a.01_x"


@pytest.mark.parametrize("incoming", [None, "", "has spaces", "x" * 65, "a/b", "<script>"])
async def test_a_missing_or_invalid_request_id_is_replaced_by_a_new_one(client, incoming):
    headers = {"X-Request-ID": incoming} if incoming is not None else {}

    first = await client.get("/healthz", headers=headers)
    second = await client.get("/healthz", headers=headers)

    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_errors_carry_the_request_id_too(client):
    response = await client.get(f"/nowhere/{uuid.uuid4().hex}", headers={"X-Request-ID": "trace-404"})

    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-404"
