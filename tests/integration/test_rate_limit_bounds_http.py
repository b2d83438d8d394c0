"""A quota's bounds at every place limits are set (docs/decisions.md): the admin API's create and
PATCH answer 400 `invalid_body`, the CLI's `keys create --rate-limits` and `keys limits` exit 2 with
the code, and `postventa serve` with such a POSTVENTA_RATE_LIMITS exits at start, naming the rule."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import admin_headers
from tests.integration.http_helpers import assert_refused
from tests.integration.test_admin_cli import POSTVENTA, postventa, run_cli

ADMIN = admin_headers()
OUT_OF_BOUNDS = {
    "zero_window": ("send=1/0 second,read=100/minute", "window from 1 second to 1 day"),
    "ten_billion_years": ("send=1/10000000000 year,read=100/minute", "window from 1 second to 1 day"),
    "two_days": ("send=10/minute,read=5/2 days", "window from 1 second to 1 day"),
    "a_month": ("send=10/minute,read=1/month", "window from 1 second to 1 day"),
    "over_a_million": ("send=1000001/minute,read=100/minute", "from 1 to 1000000 requests"),
}


async def new_account(client) -> int:
    response = await client.post("/admin/accounts", json={"Name": "Tienda"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return int(response.json()["Id"])


@pytest.mark.parametrize("case", list(OUT_OF_BOUNDS))
async def test_the_admin_api_refuses_limits_out_of_bounds(client, case):
    limits, complaint = OUT_OF_BOUNDS[case]
    account_id = await new_account(client)

    created = await client.post(
        "/admin/api-keys", json={"AccountIds": [account_id], "RateLimits": limits}, headers=ADMIN
    )
    assert complaint in assert_refused(created, 400, "invalid_body")["Message"]

    key = await client.post("/admin/api-keys", json={"AccountIds": [account_id]}, headers=ADMIN)
    patched = await client.patch(
        f"/admin/api-keys/{key.json()['Id']}", json={"RateLimits": limits}, headers=ADMIN
    )
    assert complaint in assert_refused(patched, 400, "invalid_body")["Message"]


async def test_the_admin_api_takes_the_widest_limits_in_bounds(client):
    account_id = await new_account(client)
    limits = "send=1000000/86400 seconds,read=1/second"

    created = await client.post(
        "/admin/api-keys", json={"AccountIds": [account_id], "RateLimits": limits}, headers=ADMIN
    )

    assert created.status_code == 201, created.text
    assert created.json()["RateLimits"] == limits


@pytest.fixture(scope="module")
def cli_account(tmp_path_factory) -> tuple[str, int]:
    database_url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'postventa.db'}"
    return database_url, postventa(database_url, "accounts", "create", "Tienda")["Id"]


@pytest.mark.parametrize("case", ["zero_window", "ten_billion_years", "over_a_million"])
def test_the_cli_refuses_limits_out_of_bounds(cli_account, case):
    database_url, account_id = cli_account
    limits, complaint = OUT_OF_BOUNDS[case]

    created = run_cli(database_url, "keys", "create", "--account", account_id, "--rate-limits", limits)
    assert (created.returncode, created.stdout) == (2, "")
    assert "invalid_body" in created.stderr
    assert complaint in created.stderr

    key = postventa(database_url, "keys", "create", "--account", account_id)
    changed = run_cli(database_url, "keys", "limits", key["Id"], limits)
    assert (changed.returncode, changed.stdout) == (2, "")
    assert complaint in changed.stderr


def test_serve_with_default_limits_out_of_bounds_exits_at_start(tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("POSTVENTA_")}
    env.update(
        POSTVENTA_DATABASE_URL=f"sqlite:///{tmp_path / 'postventa.db'}",
        POSTVENTA_TOKEN_KEY_FILE=str(tmp_path / "token.key"),
        POSTVENTA_RATE_LIMITS="send=1/10000000000 year,read=1200/minute",
        POSTVENTA_EMBEDDED_WORKER="false",
        COLUMNS="1000",
    )

    result = subprocess.run(
        [str(POSTVENTA), "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "'1/10000000000 year' must have a window from 1 second to 1 day" in result.stderr
