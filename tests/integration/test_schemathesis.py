"""Bad input at scale: schemathesis over the service's own OpenAPI document, in process (ASGI).

Every operation of the document (the public API, the admin API and the webhook; /metrics, /readyz
and /healthz are not in it) gets schemathesis' examples, coverage and fuzzing phases in positive
and negative modes, from a fixed seed (SEED) and a bounded number of fuzzing cases per operation
(FUZZ_EXAMPLES_PER_OPERATION; the coverage phase adds its own fixed set, about 1,500 requests in
all). Every response must pass schemathesis' default checks: no 5xx, a documented status, content
type and headers, a body that matches the documented schema, invalid input refused, and a 405 that
lists the path's methods in `Allow`. One check is off, with the reason next to it.

Seven cases in eight carry valid credentials (the tenant's API key and account, the admin token)
and point at what exists (orders, messages, an API key, a webhook endpoint, a console user), so
they reach the deep checks (parameters, preconditions, conversation rules, the admin API's own)
instead of stopping at 401/404: sends go to a fresh order each (of every kind the rules tell apart)
or to a conversation waiting for the buyer, so they end in 200, 400, 409 and 412; a DELETE goes to
a spare of its kind, so that the others keep theirs. Mercado Libre is the emulator, on a loopback
port. SQLite only: the document and the rules do not depend on the backend, and the PostgreSQL
paths have their own tests.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import itertools
import json
import tempfile
import uuid
import zlib
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import schemathesis
from argon2 import PasswordHasher
from schemathesis.config import SchemathesisConfig

from postventa.emulator.app import create_emulator_app
from postventa.meli.client import MeliClient
from postventa.services import admin, console_users
from postventa.store.engine import Database
from postventa.store.migrate import upgrade
from postventa.store.sealing import TokenCipher
from postventa.wiring import create_app
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.factories import Tenant, buyer_replies, make_order, make_tenant, now, window
from tests.integration.http_helpers import PDF, assert_accepted, messages_url
from tests.servers import ThreadedServer

SEED = 20_240_611
FUZZ_EXAMPLES_PER_OPERATION = 40
VALID_CREDENTIALS_IN_EIGHT = 7  # cases (of every 8) that get valid credentials and real ids
FRESH_ORDERS = 400  # orders nobody wrote to: more than the send cases, so each send gets its own
BUSY_ORDER_EVERY = 7  # one send in 7 goes to a conversation waiting for the buyer (409)

CONFIG = {
    "seed": SEED,
    "generation": {
        "mode": "all",  # positive and negative
        "max-examples": FUZZ_EXAMPLES_PER_OPERATION,
        "database": "none",  # no example database: a run depends on the seed alone
    },
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    "checks": {
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_headers_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
        "negative_data_rejection": {"enabled": True},
        # Not applicable: schema-valid requests are refused by rules a schema cannot express (a
        # reason the order's country does not take is 412, a second message before the buyer
        # replied is 409, an id that exists in no account is 404), so "valid data is accepted"
        # does not hold for this API.
        "positive_data_acceptance": {"enabled": False},
    },
}


@dataclass
class World:
    """What the cases point at: a tenant, a conversation with messages, orders to send to."""

    tenant: Tenant
    read_order_id: int  # its conversation: a message, the buyer's reply, a message with a PDF
    message_id: int
    attachment_message_id: int
    spare_key_id: int  # the key the admin cases may revoke (not the tenant's)
    webhook_id: int  # an endpoint of the tenant's account: changed, rotated, its attempts read
    spare_webhook_id: int  # the one the DELETE cases delete
    user_id: int  # a console user of the tenant's account, changed by the PATCH cases
    spare_user_id: int  # the one the DELETE cases delete
    send_orders: Iterator[int]


def _fresh_order(index: int) -> dict[str, Any]:
    """Orders of every kind the rules tell apart, so sends end in 200 and 412 alike."""
    kinds: list[dict[str, Any]] = [
        {"LogisticType": "cross_docking"},  # Argentina, cross docking: 1, 2 and 4 go
        {"SiteId": "MLM", "LogisticType": "drop_off"},  # Mexico: 3 goes
        {"LogisticType": "self_service", "EstimatedDelivery": window(1)},  # flex with a window: 5 goes
        {"LogisticType": "fulfillment", "Status": 20},  # fulfillment, not delivered: 412
        {"Status": 90},  # cancelled: 412
        {"Marketplace": "Tiendanube", "SiteId": None},  # not Mercado Libre: 412
    ]
    return {"ExternalOrderId": f"FRESH-{index}", "SiteId": "MLA", **kinds[index % len(kinds)]}


async def _conversation(database: Database, database_url: str, tenant: Tenant) -> tuple[int, int, int]:
    """An order whose conversation has a message, the buyer's reply and a message with a PDF."""
    app = create_app(make_settings(database_url), database=database)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://postventa.test") as http:
        order_id = await make_order(database, tenant)
        text = tenant.credentials(messageOptions=4, message="Hola")
        message_id = assert_accepted(await http.post(messages_url(order_id), params=text))
        await buyer_replies(database, order_id)
        attachment = {"fileBase64": base64.b64encode(PDF).decode(), "documentName": "factura"}
        with_pdf = tenant.credentials(messageOptions=4, message="La factura", documentExtension="pdf")
        response = await http.post(messages_url(order_id), json={**with_pdf, **attachment})
        return order_id, message_id, assert_accepted(response)


async def _webhook_endpoints(database: Database, database_url: str, tenant: Tenant) -> tuple[int, int]:
    """Two endpoints of the tenant's account, registered through the admin API. Their receiver is
    an internal one (allowed by POSTVENTA_WEBHOOK_ALLOW_PRIVATE here; no worker runs, so nothing is
    sent to it): the application under test keeps the default rules for the URLs it is sent."""
    settings = make_settings(database_url, token_key=TOKEN_KEY, webhook_allow_private=True)
    transport = httpx2.ASGITransport(app=create_app(settings, database=database))
    async with httpx2.AsyncClient(transport=transport, base_url="http://postventa.test") as http:
        ids = []
        for _ in range(2):
            response = await http.post(
                f"/admin/accounts/{tenant.account_id}/webhooks",
                json={"Url": "http://127.0.0.1:9/postventa-events"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["Id"])
        return ids[0], ids[1]


async def _console_user(database: Database, tenant: Tenant) -> int:
    async with database.transaction(write=True) as connection:
        user = await console_users.create_user(
            connection,
            email=f"operator-{uuid.uuid4().hex[:10]}@example.com",
            password="a console password",
            account_ids=[tenant.account_id],
            now=now(),
        )
    return user.id


async def _build_world(database_url: str) -> World:
    database = Database(database_url, token_cipher=TokenCipher([TOKEN_KEY]))
    try:
        await upgrade(database)
        tenant = await make_tenant(database)
        spare = await make_tenant(database, name="Spare")
        order_id, message_id, attachment_message_id = await _conversation(database, database_url, tenant)
        webhook_id, spare_webhook_id = await _webhook_endpoints(database, database_url, tenant)
        user_id, spare_user_id = await _console_user(database, tenant), await _console_user(database, tenant)
        document = {"Orders": [_fresh_order(index) for index in range(FRESH_ORDERS)]}
        async with database.transaction(write=True) as connection:
            imported = await admin.import_orders(connection, tenant.account_id, document, now())
    finally:
        await database.dispose()
    send_orders = [order.id for order in imported]
    send_orders[::BUSY_ORDER_EVERY] = [order_id] * len(send_orders[::BUSY_ORDER_EVERY])
    return World(
        tenant=tenant,
        read_order_id=order_id,
        message_id=message_id,
        attachment_message_id=attachment_message_id,
        spare_key_id=spare.key_id,
        webhook_id=webhook_id,
        spare_webhook_id=spare_webhook_id,
        user_id=user_id,
        spare_user_id=spare_user_id,
        send_orders=itertools.cycle(send_orders),
    )


def _run(coroutine: Coroutine[Any, Any, World]) -> World:
    """Run the setup on a loop of its own, in a thread: the application runs on schemathesis' loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


# schemathesis' pytest integration reads the schema at import, to collect one test per operation
# (its fixture-based lazy loading does not work with pytest 9). Nothing is written here: the
# application opens its database on its first request, after `world` has made it.
DATABASE_FILE = Path(tempfile.gettempdir()) / f"postventa-schemathesis-{uuid.uuid4().hex}.db"
DATABASE_URL = f"sqlite:///{DATABASE_FILE}"
TOKEN_KEY = base64.urlsafe_b64encode(bytes(32)).decode()  # a key given: no key file is created
EMULATOR_SERVER = ThreadedServer(create_emulator_app(), log_level="critical")
EMULATOR = MeliClient(EMULATOR_SERVER.url)
APP = create_app(make_settings(DATABASE_URL, token_key=TOKEN_KEY), meli=EMULATOR)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=SchemathesisConfig.from_dict(CONFIG))


# Argon2 at its production cost takes a tenth of a second a hash: the cases that create or change
# a console user would spend seconds on it. The hashes keep their format; the cost is not under test.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """The database the application opens, migrated and filled; removed afterwards."""
    try:
        with EMULATOR_SERVER, pytest.MonkeyPatch.context() as patch:
            patch.setattr(console_users, "_HASHER", CHEAP_HASHER)
            yield _run(_build_world(DATABASE_URL))
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{DATABASE_FILE}{suffix}").unlink(missing_ok=True)


def _mostly(case: Any) -> bool:
    """Seven cases in eight, chosen by the generated data itself so that a seed replays the choice."""
    generated = json.dumps([case.path_parameters, case.query, case.body], sort_keys=True, default=repr)
    return zlib.crc32(generated.encode()) % 8 < VALID_CREDENTIALS_IN_EIGHT


_BODY_NAMES = {"api_key": "API_KEY", "accountid": "accountId", "orderid": "orderId"}


def _negated(case: Any) -> set[str]:
    """The parts of the request ("path", "query", "body") generated invalid on purpose."""
    meta = case.meta
    if meta is None:
        return set()
    return {location.value for location, info in meta.components.items() if info.mode.is_negative}


def _replace(container: dict[str, Any] | None, values: dict[str, Any]) -> None:
    for name in list(container or {}):
        if name in values:
            container[name] = values[name]  # type: ignore[index]


def _with_real_ids(case: Any, world: World) -> None:
    """Valid credentials and existing ids written over what was generated, in the parts generated
    valid. A part generated invalid keeps its values and only gains the credentials it lacks, so
    what schemathesis negated still reaches the service, now past the key and account checks."""
    negated, tenant = _negated(case), world.tenant
    if case.path.startswith("/admin"):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {ADMIN_TOKEN}"}
        if "path" not in negated:
            deleting = case.method == "DELETE"
            ids = {
                "keyId": world.spare_key_id,
                "accountId": tenant.account_id,
                "orderId": world.read_order_id,
                "webhookId": world.spare_webhook_id if deleting else world.webhook_id,
                "userId": world.spare_user_id if deleting else world.user_id,
            }
            _replace(case.path_parameters, ids)
        return
    if not case.path.startswith("/v2/"):
        return  # the webhook takes no credentials
    if "path" not in negated:
        order_id = next(world.send_orders) if case.method == "POST" else world.read_order_id
        attachment = case.path.endswith("/attachment")
        message_id = world.attachment_message_id if attachment else world.message_id
        path_ids = {"orderId": order_id, "messageId": message_id, "accountId": tenant.account_id}
        _replace(case.path_parameters, path_ids)
    credentials = {"API_KEY": tenant.api_key, "accountId": tenant.account_id}
    values = {**credentials, "orderId": (case.path_parameters or {}).get("orderId")}
    if "query" in negated:
        case.query = {**credentials, **(case.query or {})}
    else:
        case.query = {**(case.query or {}), **credentials}
        _replace(case.query, values)
    if isinstance(case.body, dict) and "body" not in negated:
        _replace(
            case.body,
            {name: values[_BODY_NAMES[name.lower()]] for name in case.body if name.lower() in _BODY_NAMES},
        )


@schema.parametrize()
def test_openapi_document_holds(case: Any, world: World) -> None:
    """Every generated request gets a documented, conforming answer, and invalid input is refused."""
    if _mostly(case):
        _with_real_ids(case, world)
    case.call_and_validate()
