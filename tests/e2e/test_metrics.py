"""Metrics of the delivery path: a message delivered through the emulator moves the attempt and the
Mercado Libre call metrics; `postventa worker --metrics-port` serves its own process's metrics.

The e2e postventa server runs in this process (a thread), so its /metrics shows the embedded worker's
and client's counters too. Counters are process-wide: the tests assert deltas.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from postventa.meli.client import endpoint_template
from postventa.store.engine import Database
from postventa.wiring import create_app
from tests.conftest import make_settings
from tests.e2e.conftest import World, wait_for
from tests.factories import PEPPER

POSTVENTA = str(Path(sys.executable).parent / "postventa")
OPTION_ENDPOINT = "/messages/action_guide/packs/{id}/option"
Samples = list[tuple[str, dict[str, str], float]]


def parse(text: str) -> Samples:
    return [
        (found.name, found.labels, found.value)
        for family in text_string_to_metric_families(text)
        for found in family.samples
    ]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(
        value
        for sample_name, sample_labels, value in samples
        if sample_name == name and labels.items() <= sample_labels.items()
    )


def successful_option_calls(samples: Samples) -> float:
    return sum(
        value
        for name, labels, value in samples
        if name == "postventa_meli_requests_total"
        and labels["method"] == "POST"
        and labels["endpoint"] == OPTION_ENDPOINT
        and labels["status"].startswith("2")
    )


async def scrape(world: World) -> Samples:
    response = await world.api.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


async def test_a_delivered_message_moves_the_attempt_and_mercadolibre_metrics(world: World):
    seller = await world.linked_seller("MLA")
    created = await world.emulator_order(seller)
    assert await world.sync(seller) >= 1
    order_id = await world.local_order_id(seller, created["OrderId"])
    before = await scrape(world)

    sent = await world.api.post(
        f"/v2/orders/{order_id}/messages", params=seller.credentials(messageOptions=4, message="Hola")
    )
    assert sent.status_code == 200, sent.text

    async def attempt_counted() -> bool:
        after = await scrape(world)
        moved = total(after, "postventa_delivery_attempts_total", outcome="sent") - total(
            before, "postventa_delivery_attempts_total", outcome="sent"
        )
        return moved >= 1

    await wait_for(attempt_counted)
    after = await scrape(world)
    assert successful_option_calls(after) - successful_option_calls(before) >= 1
    duration = "postventa_meli_request_duration_seconds_count"
    labels = {"method": "POST", "endpoint": OPTION_ENDPOINT}
    assert total(after, duration, **labels) - total(before, duration, **labels) >= 1
    assert total(after, "postventa_meli_requests_total", method="GET", endpoint="/orders/search") >= 1
    # Ids never become labels: one series per endpoint, not per pack or order.
    endpoints = {labels["endpoint"] for _, labels, _ in after if "endpoint" in labels}
    assert endpoints
    assert not [endpoint for endpoint in endpoints if any(c.isdigit() for c in endpoint)]


def test_endpoint_templates_replace_ids():
    assert (
        endpoint_template("/messages/packs/2000012345/sellers/123456") == "/messages/packs/{id}/sellers/{id}"
    )
    assert endpoint_template("/messages/action_guide/packs/99/option") == OPTION_ENDPOINT
    assert endpoint_template("/messages/0f3c9a1be2d44b7d8e1f2a3b4c5d6e7f") == "/messages/{id}"
    assert endpoint_template("/orders/search") == "/orders/search"
    assert endpoint_template("/users/me") == "/users/me"
    assert endpoint_template("/oauth/token") == "/oauth/token"
    assert endpoint_template("/shipments/44?x=1") == "/shipments/{id}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_worker_serves_its_metrics_and_its_heartbeat_makes_the_api_ready(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    port = _free_port()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("POSTVENTA_")}
    environment |= {
        "POSTVENTA_DATABASE_URL": url,
        "POSTVENTA_API_KEY_PEPPER": PEPPER,
        "POSTVENTA_MELI_API_URL": "http://127.0.0.1:9",
        "POSTVENTA_LOG_LEVEL": "warning",
    }
    worker = subprocess.Popen(
        [POSTVENTA, "worker", "--metrics-port", str(port)],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def serving() -> bool:
                assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
                try:
                    return (await http.get("/metrics")).status_code == 200
                except httpx2.TransportError:
                    return False

            await wait_for(serving, timeout=30)
            text = (await http.get("/metrics")).text
        assert "# TYPE postventa_delivery_attempts_total counter" in text
        assert "# TYPE postventa_meli_request_duration_seconds histogram" in text

        database = Database(url)
        try:
            app = create_app(make_settings(url), database=database)
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://postventa.test") as api:

                async def ready() -> bool:
                    return (await api.get("/readyz")).status_code == 200

                await wait_for(ready, timeout=30)
        finally:
            await database.dispose()
    finally:
        worker.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(worker.wait, 30)
        if worker.stderr:
            worker.stderr.close()
    assert returncode == 0
