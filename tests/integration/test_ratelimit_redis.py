"""Check 4 in production: per-key limits set by the admin API and the CLI, the IETF RateLimit fields
next to Alephee's x-ratelimit-*, counters shared through Redis by every API process (two real
`postventa serve` processes hammered by one key), and a 503 rather than a 500 when Redis is down."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from postventa.services import reading
from postventa.store.engine import Database
from postventa.store.migrate import upgrade
from postventa.wiring import create_app
from tests.conftest import ADMIN_TOKEN, admin_headers, fresh_database_url, make_settings
from tests.factories import PEPPER, make_order, make_tenant
from tests.integration.http_helpers import (
    assert_accepted,
    assert_rate_limit_headers,
    assert_refused,
    messages_url,
)
from tests.integration.test_admin_cli import cli_json, run_cli
from tests.servers import serve_processes

UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"
ADMIN = admin_headers()
TEXT = {"messageOptions": 4, "message": "Hola"}
POLICY = re.compile(r'^"(?P<name>send|read)";q=(?P<q>\d+);w=(?P<w>\d+)$')
STANDING = re.compile(r'^"(?P<name>send|read)";r=(?P<r>\d+);t=(?P<t>\d+)$')


@pytest.fixture(params=["memory", "redis"])
def counters(request: pytest.FixtureRequest) -> str | None:
    """Where the counters live: None (in memory) or the Redis URL."""
    return request.getfixturevalue("redis_url") if request.param == "redis" else None


@asynccontextmanager
async def api(
    database_url: str, database: Database, **overrides: object
) -> AsyncIterator[httpx2.AsyncClient]:
    """The application in process with these settings; its Redis connections are closed after."""
    app = create_app(make_settings(database_url, **overrides), database=database)
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://postventa.test"
        ) as http:
            yield http
    finally:
        await app.state.context.rate_limiter.aclose()


async def admin_post(http: httpx2.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(path, json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


@dataclass(frozen=True)
class Key:
    """An API key made through the admin API, and the one account it opens."""

    id: int
    api_key: str
    account_id: int

    def params(self, **extra: Any) -> dict[str, Any]:
        return {"API_KEY": self.api_key, "accountId": self.account_id, **extra}


async def new_key(http: httpx2.AsyncClient, rate_limits: str | None) -> tuple[Key, int]:
    """A new account, an order of it, and a key for it with these limits: (key, order id)."""
    account = await admin_post(http, "/admin/accounts", {"Name": "Tienda"})
    key = await admin_post(
        http, "/admin/api-keys", {"AccountIds": [account["Id"]], "RateLimits": rate_limits}
    )
    assert key["RateLimits"] == rate_limits
    orders = {"Orders": [{"ExternalOrderId": f"RL-{uuid.uuid4().hex[:10]}", "SiteId": "MLA"}]}
    imported = await http.put(f"/admin/accounts/{account['Id']}/orders", json=orders, headers=ADMIN)
    assert imported.status_code == 200, imported.text
    return Key(key["Id"], key["ApiKey"], account["Id"]), imported.json()["Results"][0]["Id"]


async def read(http: httpx2.AsyncClient, key: Key, order_id: int) -> httpx2.Response:
    return await http.get(f"/v2/orders/{order_id}/messages", params=key.params())


async def send(http: httpx2.AsyncClient, key: Key, order_id: int) -> httpx2.Response:
    return await http.post(f"/v2/orders/{order_id}/messages", params=key.params(**TEXT))


def ietf(response: httpx2.Response) -> tuple[dict[str, str], dict[str, str]]:
    """RateLimit-Policy and RateLimit, parsed; both must be there in structured-field form."""
    policy = POLICY.match(response.headers["ratelimit-policy"])
    standing = STANDING.match(response.headers["ratelimit"])
    assert policy, response.headers["ratelimit-policy"]
    assert standing, response.headers["ratelimit"]
    assert policy["name"] == standing["name"]
    return policy.groupdict(), standing.groupdict()


def assert_headers_agree(response: httpx2.Response, *, allowed: bool = True) -> None:
    """The IETF fields say what the x-ratelimit-* headers say."""
    assert_rate_limit_headers(response, allowed=allowed)
    policy, standing = ietf(response)
    assert policy["q"] == response.headers["x-ratelimit-limit"]
    assert standing["r"] == response.headers["x-ratelimit-remaining"]
    assert standing["t"] == response.headers["x-ratelimit-reset"]


# --- per-key limits through the admin API ---------------------------------------------------------


async def test_key_limits_apply_and_patch_changes_them(database_url, database, counters):
    async with api(database_url, database, redis_url=counters) as http:
        key, order_id = await new_key(http, "send=2/minute,read=3/minute")
        for remaining in ("2", "1", "0"):
            response = await read(http, key, order_id)
            assert response.status_code == 200, response.text
            assert (response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"]) == (
                "3",
                remaining,
            )
        assert_refused(await read(http, key, order_id), 429, "rate_limited")

        patched = await http.patch(
            f"/admin/api-keys/{key.id}",
            json={"RateLimits": "send=2/minute,read=5/minute"},
            headers=ADMIN,
        )
        assert patched.status_code == 200, patched.text
        assert patched.json() == {"Id": key.id, "RateLimits": "send=2/minute,read=5/minute"}
        response = await read(http, key, order_id)
        assert response.status_code == 200, response.text
        # The new quota counts afresh; the send quota, unchanged, was not touched by the reads.
        assert (response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"]) == (
            "5",
            "4",
        )
        sent = await send(http, key, order_id)
        assert_accepted(sent)
        assert (sent.headers["x-ratelimit-limit"], sent.headers["x-ratelimit-remaining"]) == ("2", "1")

        back = await http.patch(f"/admin/api-keys/{key.id}", json={"RateLimits": None}, headers=ADMIN)
        assert back.json() == {"Id": key.id, "RateLimits": None}
        response = await read(http, key, order_id)
        assert response.headers["x-ratelimit-limit"] == "1000000"  # POSTVENTA_RATE_LIMITS of the tests


async def test_a_key_without_own_limits_has_the_defaults(database_url, database):
    async with api(database_url, database, rate_limits="send=4/minute,read=9/minute") as http:
        key, order_id = await new_key(http, None)
        assert (await read(http, key, order_id)).headers["x-ratelimit-limit"] == "9"
        assert (await send(http, key, order_id)).headers["x-ratelimit-limit"] == "4"


BAD_LIMITS = {
    "read_missing": "send=10/minute",
    "not_a_number": "send=ten/minute,read=100/minute",
    "unknown_class": "send=1/minute,read=1/minute,write=1/minute",
    "twice": "send=1/minute,send=2/minute,read=1/minute",
    "zero": "send=0/minute,read=1/minute",
    "two_rules": "send=1/second;5/minute,read=1/minute",
    "blank": "  ",
    "too_long": "send=1/minute,read=1/minute" + " " * 180 + ",",
    "not_a_string": 5,
}


@pytest.mark.parametrize("case", list(BAD_LIMITS))
async def test_bad_limits_are_400_on_create_and_patch(client, case):
    account = await admin_post(client, "/admin/accounts", {"Name": "Tienda"})
    created = await client.post(
        "/admin/api-keys", json={"AccountIds": [account["Id"]], "RateLimits": BAD_LIMITS[case]}, headers=ADMIN
    )
    body = assert_refused(created, 400, "invalid_body")
    assert body["Message"].startswith("RateLimits"), body

    key = await admin_post(client, "/admin/api-keys", {"AccountIds": [account["Id"]]})
    patched = await client.patch(
        f"/admin/api-keys/{key['Id']}", json={"RateLimits": BAD_LIMITS[case]}, headers=ADMIN
    )
    assert assert_refused(patched, 400, "invalid_body")["Message"].startswith("RateLimits")


async def test_patch_refusals(client):
    missing = await client.patch("/admin/api-keys/999999999", json={"RateLimits": None}, headers=ADMIN)
    assert_refused(missing, 404, "api_key_not_found")
    assert_refused(
        await client.patch("/admin/api-keys/abc", json={"RateLimits": None}, headers=ADMIN),
        400,
        "key_id_invalid",
    )
    assert_refused(await client.patch("/admin/api-keys/1", json={}, headers=ADMIN), 400, "invalid_body")
    unauthorized = await client.patch("/admin/api-keys/1", json={"RateLimits": None})
    assert_refused(unauthorized, 401, "admin_token_invalid")


# --- headers --------------------------------------------------------------------------------------


async def test_ietf_fields_name_the_policy_quota_window_and_standing(database_url, database, counters):
    async with api(database_url, database, redis_url=counters) as http:
        key, order_id = await new_key(http, "send=5/minute,read=7/2minutes")
        policy, standing = ietf(await read(http, key, order_id))
        assert policy == {"name": "read", "q": "7", "w": "120"}
        assert standing["name"] == "read"
        assert standing["r"] == "6"
        assert 1 <= int(standing["t"]) <= 120

        response = await send(http, key, order_id)
        assert_accepted(response)
        policy, standing = ietf(response)
        assert policy == {"name": "send", "q": "5", "w": "60"}
        assert (standing["name"], standing["r"]) == ("send", "4")
        assert 1 <= int(standing["t"]) <= 60


async def test_headers_count_down_over_sequential_requests(database_url, database, counters):
    async with api(database_url, database, redis_url=counters) as http:
        key, order_id = await new_key(http, "send=3/minute,read=6/minute")
        resets = []
        for expected in range(5, -1, -1):
            response = await read(http, key, order_id)
            assert response.status_code == 200, response.text
            assert_headers_agree(response)
            assert response.headers["x-ratelimit-remaining"] == str(expected)
            resets.append(int(response.headers["x-ratelimit-reset"]))
        # The moving window frees its oldest request first: the reset never moves later.
        assert resets == sorted(resets, reverse=True)
        assert 1 <= resets[-1] <= 60


async def test_a_429_carries_retry_after_and_stores_nothing(database_url, database, counters):
    async with api(database_url, database, redis_url=counters) as http:
        key, order_id = await new_key(http, "send=1/minute,read=100/minute")
        assert_accepted(await send(http, key, order_id))
        refused = await send(http, key, order_id)

        assert_refused(refused, 429, "rate_limited")
        assert_headers_agree(refused, allowed=False)
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["retry-after"] == refused.headers["x-ratelimit-retryafter"]
        assert ietf(refused)[1]["r"] == "0"
        messages = (await read(http, key, order_id)).json()["Results"]
        assert len(messages) == 1  # the refused send stored nothing (it would have been a 409 otherwise)


@pytest.mark.parametrize(
    ("scenario", "status", "code"),
    [
        ("account_missing", 400, "account_id_missing"),
        ("account_not_allowed", 403, "account_not_allowed"),
        ("order_id_invalid", 400, "order_id_invalid"),
        ("order_not_found", 404, "order_not_found"),
        ("reason_invalid", 400, "reason_invalid"),
        ("precondition", 412, "order_cancelled"),
        ("conflict", 409, "awaiting_buyer_reply"),
        ("read_not_found", 404, "message_not_found"),
    ],
)
async def test_raised_refusals_carry_every_rate_limit_header(client, database, scenario, status, code):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    cancelled = await make_order(database, tenant, Status=90)
    if scenario == "conflict":
        assert_accepted(await client.post(messages_url(order_id), params=tenant.credentials(**TEXT)))
    url, params = messages_url(order_id), tenant.credentials(**TEXT)
    if scenario == "account_missing":
        params.pop("accountId")
    elif scenario == "account_not_allowed":
        params["accountId"] = 2**62
    elif scenario == "order_id_invalid":
        url = messages_url("abc")
    elif scenario == "order_not_found":
        url = messages_url(2**62)
    elif scenario == "reason_invalid":
        params["messageOptions"] = 9
    elif scenario == "precondition":
        url = messages_url(cancelled)
    if scenario == "read_not_found":
        response = await client.get(f"{messages_url(order_id)}/{2**62}", params=tenant.credentials())
    else:
        response = await client.post(url, params=params)

    assert_refused(response, status, code)
    assert_headers_agree(response)


async def test_401_has_no_rate_limit_headers(client):
    response = await client.get("/v2/orders", params={"API_KEY": "pv_0123456789ab_nope", "accountId": 1})
    assert_refused(response, 401, "api_key_invalid")
    assert not {"x-ratelimit-limit", "ratelimit", "ratelimit-policy", "retry-after"} & set(response.headers)


# --- Redis ----------------------------------------------------------------------------------------


async def test_unreachable_redis_is_503_not_500(database_url, database):
    async with api(database_url, database, redis_url=UNREACHABLE_REDIS_URL) as http:
        key, order_id = await new_key(http, None)
        started = time.monotonic()
        for response in (await read(http, key, order_id), await send(http, key, order_id)):
            body = assert_refused(response, 503, "rate_limit_unavailable")
            assert "retry" in body["Message"].lower()
        assert time.monotonic() - started < 10
        # Checks 2 and 3 still answer as the contract says; only the headers are missing.
        response = await http.get("/v2/orders", params={"API_KEY": key.api_key})
        assert_refused(response, 400, "account_id_missing")
        assert "x-ratelimit-limit" not in response.headers
    async with database.transaction() as connection:
        stored = await reading.conversation(connection, key.account_id, order_id, dt.datetime.now(dt.UTC))
    assert stored.messages == []


async def test_counters_are_kept_per_key_prefix_across_databases(tmp_path, redis_url):
    """Two databases sharing one Redis both have an API key number 1: they must not share a counter."""
    clients = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name / 'postventa.db'}"
        database = Database(url)
        await upgrade(database)
        clients.append((url, database))
    try:
        async with (
            api(clients[0][0], clients[0][1], redis_url=redis_url) as first,
            api(clients[1][0], clients[1][1], redis_url=redis_url) as second,
        ):
            first_key, first_order = await new_key(first, "send=1/minute,read=2/minute")
            second_key, second_order = await new_key(second, "send=1/minute,read=2/minute")
            assert first_key.id == second_key.id == 1
            for _ in range(2):
                assert (await read(first, first_key, first_order)).status_code == 200
            assert (await read(first, first_key, first_order)).status_code == 429
            response = await read(second, second_key, second_order)
            assert response.status_code == 200
            assert response.headers["x-ratelimit-remaining"] == "1"
    finally:
        for _, database in clients:
            await database.dispose()


# --- two API processes sharing Redis, hammered by one key ------------------------------------------


@pytest.fixture
async def shared_database_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database of the backend for this test's processes alone."""
    async with fresh_database_url(database_url, tmp_path, "rl") as url:
        yield url


async def hammer(urls: list[str], method: str, path: str, params: dict[str, Any], total: int) -> list[Any]:
    """TOTAL simultaneous requests, spread in turn over the processes: (process, response) pairs."""
    async with httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=total)) as http:

        async def one(index: int) -> tuple[int, httpx2.Response]:
            process = index % len(urls)
            return process, await http.request(method, f"{urls[process]}{path}", params=params)

        return await asyncio.gather(*(one(index) for index in range(total)))


def assert_exactly_allowed(answers: list[Any], allowed: int, processes: int) -> None:
    statuses = Counter(response.status_code for _, response in answers)
    assert len(answers) - statuses[429] == allowed, statuses
    assert Counter(process for process, _ in answers) == {
        index: len(answers) // processes for index in range(processes)
    }
    for _, response in answers:
        if response.status_code == 429:
            assert_refused(response, 429, "rate_limited")
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["retry-after"] == response.headers["x-ratelimit-retryafter"]
            assert ietf(response)[1]["r"] == "0"


@pytest.mark.slow
async def test_two_processes_sharing_redis_allow_exactly_the_key_limit(
    shared_database_url, redis_url, tmp_path
):
    with serve_processes(
        2,
        tmp_path,
        database_url=shared_database_url,
        redis_url=redis_url,
        admin_token=ADMIN_TOKEN,
        api_key_pepper=PEPPER,
    ) as urls:
        async with httpx2.AsyncClient(base_url=urls[0]) as http:
            key, order_id = await new_key(http, "send=30/minute,read=40/minute")
        params = key.params()

        reads = await hammer(urls, "GET", f"/v2/orders/{order_id}/messages", params, total=120)
        assert_exactly_allowed(reads, 40, processes=2)
        assert {response.status_code for _, response in reads} == {200, 429}

        sends = await hammer(urls, "POST", f"/v2/orders/{order_id}/messages", key.params(**TEXT), total=120)
        assert_exactly_allowed(sends, 30, processes=2)
        # Of the 30 sends allowed on one conversation, exactly one was accepted; the rest wait (409).
        statuses = Counter(response.status_code for _, response in sends)
        assert statuses == {200: 1, 409: 29, 429: 90}, statuses

        async with httpx2.AsyncClient(base_url=urls[1]) as http:
            # Both processes agree the key is spent: reads are refused on the other one too.
            assert (await http.get(f"/v2/orders/{order_id}/messages", params=params)).status_code == 429


# --- the command line -----------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_sets_and_clears_a_key_limits(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'cli.db'}"
    account = cli_json(run_cli(database_url, "accounts", "create", "Tienda"))
    created = cli_json(
        run_cli(
            database_url,
            "keys",
            "create",
            "--account",
            account["Id"],
            "--rate-limits",
            "send=5/minute,read=9/minute",
        )
    )
    assert created["RateLimits"] == "send=5/minute,read=9/minute"

    changed = cli_json(run_cli(database_url, "keys", "limits", created["Id"], "send=1/minute,read=2/minute"))
    assert changed == {"Id": created["Id"], "RateLimits": "send=1/minute,read=2/minute"}
    assert cli_json(run_cli(database_url, "keys", "limits", created["Id"])) == {
        "Id": created["Id"],
        "RateLimits": None,
    }

    bad = run_cli(database_url, "keys", "limits", created["Id"], "send=1/minute")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert "invalid_body" in bad.stderr
    unknown = run_cli(database_url, "keys", "limits", 999999, "send=1/minute,read=1/minute")
    assert (unknown.returncode, unknown.stdout) == (3, "")
    assert "api_key_not_found" in unknown.stderr
