"""Administration (contract §5): the admin API over HTTP, then the same operations from the CLI: as
the installed command in a real subprocess on a fresh SQLite file, and in process (typer's runner,
the same code without a new interpreter's start-up) for the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner

from postventa.cli.main import app as cli_app
from postventa.store.engine import Database
from postventa.wiring import create_app
from tests.conftest import POSTGRES_ADMIN_URL, _postgres_admin, admin_headers, make_settings
from tests.factories import PEPPER

POSTVENTA = Path(sys.executable).with_name("postventa")
ADMIN = admin_headers()


def assert_error(response: httpx2.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"Status", "Message", "Code"}
    assert body["Status"] == status
    if code is not None:
        assert body["Code"] == code, body
    return body


async def new_account(client, name: str = "Tienda") -> int:
    response = await client.post("/admin/accounts", json={"Name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return int(response.json()["Id"])


async def new_key(client, *account_ids: int) -> dict[str, Any]:
    response = await client.post("/admin/api-keys", json={"AccountIds": list(account_ids)}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def import_orders(client, account_id: int, orders: list[dict[str, Any]]) -> httpx2.Response:
    return await client.put(f"/admin/accounts/{account_id}/orders", json={"Orders": orders}, headers=ADMIN)


async def listed_orders(client, api_key: str, account_id: int) -> dict[str, dict[str, Any]]:
    """The account's orders by ExternalOrderId, read through the public API."""
    params = {"API_KEY": api_key, "accountId": account_id, "limit": 1000}
    response = await client.get("/v2/orders", params=params)
    assert response.status_code == 200, response.text
    return {order["ExternalOrderId"]: order for order in response.json()["Results"]}


async def test_create_account_and_key_then_the_key_works(client):
    created = await client.post("/admin/accounts", json={"Name": "Tienda Uno"}, headers=ADMIN)
    assert created.status_code == 201
    assert set(created.json()) == {"Id", "Name"}
    assert created.json()["Name"] == "Tienda Uno"
    account_id = created.json()["Id"]

    key = await new_key(client, account_id)

    assert {"Id", "ApiKey"} <= set(key)
    assert isinstance(key["ApiKey"], str)
    listed = await client.get("/v2/orders", params={"API_KEY": key["ApiKey"], "accountId": account_id})
    assert listed.status_code == 200
    assert listed.json()["Total"] == 0


async def test_key_for_an_unknown_account_is_400(client):
    account_id = await new_account(client)
    response = await client.post("/admin/api-keys", json={"AccountIds": [account_id, 2**62]}, headers=ADMIN)
    assert str(2**62) in assert_error(response, 400)["Message"]


async def test_revoked_key_gets_401_and_unknown_key_is_404(client):
    account_id = await new_account(client)
    key = await new_key(client, account_id)
    params = {"API_KEY": key["ApiKey"], "accountId": account_id}

    revoked = await client.delete(f"/admin/api-keys/{key['Id']}", headers=ADMIN)

    assert revoked.status_code == 204
    assert revoked.content == b""
    assert_error(await client.get("/v2/orders", params=params), 401, "api_key_invalid")
    assert_error(await client.delete("/admin/api-keys/999999999", headers=ADMIN), 404)
    assert_error(await client.delete("/admin/api-keys/abc", headers=ADMIN), 400)


async def test_orders_are_upserted_by_external_order_id(client):
    account_id = await new_account(client)
    key = await new_key(client, account_id)
    first = await import_orders(client, account_id, [{"ExternalOrderId": "U-1", "SiteId": "MLA"}])
    assert first.status_code == 200, first.text

    again = await import_orders(
        client,
        account_id,
        [{"ExternalOrderId": "U-1", "SiteId": "MLB", "Status": 20, "Buyer": {"Nickname": "COMPRADOR"}}],
    )

    assert again.status_code == 200, again.text
    [result] = first.json()["Results"]
    assert again.json()["Results"] == [result]
    assert result["ExternalOrderId"] == "U-1"
    order = (await listed_orders(client, key["ApiKey"], account_id))["U-1"]
    assert (order["SiteId"], order["Status"]["Key"], order["Buyer"]["Nickname"]) == ("MLB", 20, "COMPRADOR")


def ml(**fields: Any) -> dict[str, Any]:
    """An order that is valid but for the fields given."""
    return {"ExternalOrderId": "X", "SiteId": "MLA", **fields}


# The bad order is the third of the document; the first updates an existing order, the second is new.
INVALID_ORDERS = {
    "missing_site_for_mercadolibre": ({"ExternalOrderId": "X"}, "SiteId"),
    "unknown_site": (ml(SiteId="MXX"), "SiteId"),
    "unknown_status": (ml(Status=55), "Status"),
    "unknown_logistic_type": (ml(LogisticType="teleport"), "LogisticType"),
    "from_hour_not_before_to_hour": (
        ml(EstimatedDelivery={"Date": "2030-01-01", "FromHour": 18, "ToHour": 9}),
        "EstimatedDelivery",
    ),
    "duplicate_external_order_id": (ml(ExternalOrderId="NEW"), "ExternalOrderId"),
    "unknown_field": (ml(Colour="red"), "Colour"),
    "control_character_in_buyer": (ml(Buyer={"Name": "a\u0000b"}), "Orders[2]"),
    "control_character_in_marketplace": (ml(SiteId=None, Marketplace="Otro\u0000"), "Marketplace"),
    "external_order_id_number_over_64_digits": (ml(ExternalOrderId=10**70), "ExternalOrderId"),
    "buyer_code_number_over_64_digits": (ml(Buyer={"Code": 10**70}), "Code"),
    "date_created_past_year_9999_in_utc": (ml(DateCreated="9999-12-31T23:00:00-05:00"), "DateCreated"),
    "date_created_before_year_1_in_utc": (ml(DateCreated="0001-01-01T00:00:00+05:00"), "DateCreated"),
}


@pytest.mark.parametrize("case", list(INVALID_ORDERS))
async def test_an_invalid_order_refuses_the_whole_import(client, case):
    bad_order, field = INVALID_ORDERS[case]
    account_id = await new_account(client)
    key = await new_key(client, account_id)
    assert (
        await import_orders(client, account_id, [{"ExternalOrderId": "KEEP", "SiteId": "MLA"}])
    ).status_code == 200
    document = [
        {"ExternalOrderId": "KEEP", "SiteId": "MLA", "Status": 20},
        {"ExternalOrderId": "NEW", "SiteId": "MLA"},
        bad_order,
    ]

    response = await import_orders(client, account_id, document)

    message = assert_error(response, 400)["Message"]
    assert "Orders[2]" in message, message
    assert field in message, message
    orders = await listed_orders(client, key["ApiKey"], account_id)
    assert list(orders) == ["KEEP"]
    assert orders["KEEP"]["Status"]["Key"] == 10


async def test_buyer_message_shows_in_the_conversation(client):
    account_id = await new_account(client)
    key = await new_key(client, account_id)
    [order] = (await import_orders(client, account_id, [ml(ExternalOrderId="B-1")])).json()["Results"]
    text = "Hola, ¿llega hoy?"

    reply = await client.post(
        f"/admin/orders/{order['Id']}/buyer-messages", json={"Text": text}, headers=ADMIN
    )

    assert reply.status_code == 201
    assert set(reply.json()) == {"Id"}
    params = {"API_KEY": key["ApiKey"], "accountId": account_id}
    conversation = await client.get(f"/v2/orders/{order['Id']}/messages", params=params)
    [message] = conversation.json()["Results"]
    assert (message["Id"], message["Direction"], message["Text"]) == (reply.json()["Id"], "inbound", text)
    unknown = await client.post("/admin/orders/999999999/buyer-messages", json={"Text": "x"}, headers=ADMIN)
    assert_error(unknown, 404, "order_not_found")


ADMIN_CALLS = [
    ("POST", "/admin/accounts", {"Name": "Intrusa"}),
    ("GET", "/admin/accounts", None),
    ("POST", "/admin/api-keys", {"AccountIds": [1]}),
    ("DELETE", "/admin/api-keys/999999999", None),
    ("PUT", "/admin/accounts/999999999/orders", {"Orders": [{"ExternalOrderId": "I", "SiteId": "MLA"}]}),
    ("POST", "/admin/orders/999999999/buyer-messages", {"Text": "Hola"}),
]
BAD_AUTHORIZATIONS = {
    "missing": {},
    "wrong_token": {"Authorization": "Bearer not-the-token"},
    "token_with_suffix": {"Authorization": ADMIN["Authorization"] + "x"},
    "other_scheme": {"Authorization": "Basic " + ADMIN["Authorization"].split()[1]},
    "no_scheme": {"Authorization": ADMIN["Authorization"].split()[1]},
    "empty_bearer": {"Authorization": "Bearer "},
}


@pytest.mark.parametrize("auth", list(BAD_AUTHORIZATIONS))
@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS, ids=[f"{m} {p}" for m, p, _ in ADMIN_CALLS])
async def test_admin_api_without_the_token_is_401(client, method, path, body, auth):
    response = await client.request(method, path, json=body, headers=BAD_AUTHORIZATIONS[auth])
    assert_error(response, 401, "admin_token_invalid")


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS, ids=[f"{m} {p}" for m, p, _ in ADMIN_CALLS])
async def test_admin_api_is_off_without_a_configured_token(database, database_url, method, path, body):
    app = create_app(make_settings(database_url, admin_token=None), database=database)
    async with asgi_client(app) as http:
        response = await http.request(method, path, json=body, headers=ADMIN)
    assert_error(response, 404)


def run_cli(
    database_url: str, *args: object, wide: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`postventa ARGS` on the database, in process, with what it printed and its exit code as a
    subprocess would give them; wide=False leaves the terminal width to the default (80). On a
    thread of its own: a command runs its own event loop, and async tests call this from theirs."""
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("POSTVENTA_")}
    env.update(POSTVENTA_DATABASE_URL=database_url, POSTVENTA_API_KEY_PEPPER=PEPPER)
    env["COLUMNS"] = "1000" if wide else None
    arguments = [str(arg) for arg in args]

    def invoke() -> Any:
        return CliRunner().invoke(cli_app, arguments, env=env, input=stdin)

    with ThreadPoolExecutor(max_workers=1) as thread:
        result = thread.submit(invoke).result(timeout=120)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(arguments, result.exit_code, result.stdout, result.stderr)


def run_installed_cli(database_url: str, *args: object) -> subprocess.CompletedProcess[str]:
    """`postventa ARGS` as the installed command, in a subprocess of its own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("POSTVENTA_")}
    env.update(POSTVENTA_DATABASE_URL=database_url, POSTVENTA_API_KEY_PEPPER=PEPPER, COLUMNS="1000")
    command = [str(POSTVENTA), *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def cli_json(result: subprocess.CompletedProcess[str]) -> Any:
    """The one JSON line a successful command prints."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def write_json(directory: Path, content: object) -> Path:
    path = directory / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


@asynccontextmanager
async def api_on(database_url: str) -> AsyncIterator[httpx2.AsyncClient]:
    """The public API, in process, on a database the CLI wrote."""
    database = Database(database_url)
    try:
        app = create_app(make_settings(database_url), database=database)
        async with asgi_client(app) as http:
            yield http
    finally:
        await database.dispose()


def asgi_client(app: Any) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://admin.test")


def postventa(database_url: str, *args: object) -> Any:
    """Run a command that must succeed; its JSON output."""
    return cli_json(run_cli(database_url, *args))


Runner = Callable[..., subprocess.CompletedProcess[str]]


async def cli_round_trip(database_url: str, directory: Path, run_cli: Runner = run_cli) -> None:
    """Every command once, each checked through the public API."""

    def postventa(database_url: str, *args: object) -> Any:
        return cli_json(run_cli(database_url, *args))

    account = postventa(database_url, "accounts", "create", "Tienda CLI")
    assert account["Name"] == "Tienda CLI"
    key = postventa(database_url, "keys", "create", "--account", account["Id"])
    credentials = {"API_KEY": key["ApiKey"], "accountId": account["Id"]}
    orders = [{"ExternalOrderId": f"C-{uuid.uuid4().hex[:8]}", "SiteId": "MLA"}]
    first_file = write_json(directory, {"AccountId": account["Id"], "Orders": orders})
    [result] = postventa(database_url, "orders", "import", first_file)["Results"]
    orders[0]["Status"] = 20
    second_file = write_json(directory, {"Orders": orders})
    again = postventa(database_url, "orders", "import", second_file, "--account", account["Id"])
    assert again["Results"] == [result]
    reply = postventa(database_url, "buyer-reply", result["Id"], "Hola, ¿cuándo llega?")
    async with api_on(database_url) as http:
        order = (await http.get(f"/v2/orders/{result['Id']}", params=credentials)).json()
        assert (order["ExternalOrderId"], order["Status"]["Key"]) == (orders[0]["ExternalOrderId"], 20)
        conversation = (await http.get(f"/v2/orders/{result['Id']}/messages", params=credentials)).json()
        messages = [(m["Id"], m["Direction"], m["Text"]) for m in conversation["Results"]]
        assert messages == [(reply["Id"], "inbound", "Hola, ¿cuándo llega?")]
        assert run_cli(database_url, "keys", "revoke", key["Id"]).returncode == 0
        assert (await http.get("/v2/orders", params=credentials)).status_code == 401
    assert run_cli(database_url, "db", "upgrade").returncode == 0


async def test_cli_on_a_fresh_sqlite_file(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'fresh' / 'postventa.db'}"
    await cli_round_trip(database_url, tmp_path, run_installed_cli)


async def test_cli_on_the_backend_test_database(database, database_url, tmp_path):
    await cli_round_trip(database_url, tmp_path)


@pytest.fixture(scope="module")
def cli_database(tmp_path_factory) -> tuple[str, int, str]:
    """A SQLite file with one account and its key, made by the CLI."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'postventa.db'}"
    account = postventa(database_url, "accounts", "create", "Tienda")
    key = postventa(database_url, "keys", "create", "--account", account["Id"])
    return database_url, account["Id"], key["ApiKey"]


VALID = {"ExternalOrderId": "OK-1", "SiteId": "MLA"}


def _file(document: object) -> Any:
    return lambda account_id: json.dumps(document).replace('"ACCOUNT"', str(account_id)).encode()


# Each makes the file's bytes (None: no file) for the account; the valid order is never imported.
BAD_FILES: dict[str, tuple[Any, str]] = {
    "missing_file": (lambda _: None, "cannot read"),
    "invalid_json": (lambda _: b'{"Orders": [', "not valid JSON"),
    "not_utf8": (lambda _: b'{"Orders": ["\xff"]}', "not valid JSON"),
    "not_an_object": (_file([VALID]), "must hold an object"),
    "no_account": (_file({"Orders": [VALID]}), "AccountId"),
    "account_not_an_integer": (_file({"AccountId": "1", "Orders": [VALID]}), "AccountId"),
    "unknown_account": (_file({"AccountId": 999999999, "Orders": [VALID]}), "account_not_found"),
    "invalid_order": (_file({"AccountId": "ACCOUNT", "Orders": [VALID, {"ExternalOrderId": "O"}]}), "SiteId"),
    "no_orders": (_file({"AccountId": "ACCOUNT", "Orders": []}), "Orders"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
async def test_cli_import_of_a_bad_file_fails_and_imports_nothing(cli_database, tmp_path, case):
    database_url, account_id, api_key = cli_database
    make_content, expected = BAD_FILES[case]
    path = tmp_path / "orders.json"
    if (content := make_content(account_id)) is not None:
        path.write_bytes(content)

    result = run_cli(database_url, "orders", "import", path)

    assert result.returncode != 0
    assert result.stdout == ""
    assert expected in result.stderr, result.stderr
    async with api_on(database_url) as http:
        assert await listed_orders(http, api_key, account_id) == {}


CLI_REFUSALS = {
    "key_for_unknown_account": (("keys", "create", "--account", 999999999), 2, "unknown_account"),
    "revoke_unknown_key": (("keys", "revoke", 999999999), 3, "api_key_not_found"),
    "reply_to_unknown_order": (("buyer-reply", 999999999, "Hola"), 3, "order_not_found"),
    "blank_account_name": (("accounts", "create", "   "), 2, "invalid_name"),
}


@pytest.mark.parametrize("case", list(CLI_REFUSALS))
def test_cli_refusals_exit_non_zero_with_the_code_on_stderr(cli_database, case):
    args, exit_code, code = CLI_REFUSALS[case]
    result = run_cli(cli_database[0], *args)
    assert (result.returncode, result.stdout) == (exit_code, "")
    assert code in result.stderr


LONG_NAME = "[bold]Tienda[/bold] de repuestos con un nombre largo que pasa de las ochenta columnas"


@pytest.mark.parametrize(
    "args",
    [
        ("accounts", "create", LONG_NAME),
        ("keys", "create", "--account", "{account}"),
        ("keys", "revoke", "{key}"),
        ("db", "upgrade"),
    ],
    ids=["accounts_create", "keys_create", "keys_revoke", "db_upgrade"],
)
def test_cli_prints_one_json_line_whatever_the_terminal(cli_database, args):
    """README: "Commands print JSON on stdout" — also when stdout is a pipe of default width."""
    database_url, account_id, _ = cli_database
    key_id = (
        postventa(database_url, "keys", "create", "--account", account_id)["Id"] if "{key}" in args else 0
    )
    filled = [arg.format(account=account_id, key=key_id) for arg in args]

    document = cli_json(run_cli(database_url, *filled, wide=False))

    assert isinstance(document, dict)
    if args[0] == "accounts":
        assert document["Name"] == LONG_NAME


async def test_cli_refuses_an_unmigrated_postgresql_database_until_upgraded(postgres_available):
    if not postgres_available:
        pytest.skip("PostgreSQL not reachable")
    name = f"postventa_cli_{uuid.uuid4().hex[:12]}"
    await _postgres_admin(f'CREATE DATABASE "{name}"')
    database_url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        refused = run_cli(database_url, "accounts", "create", "Tienda")
        assert refused.returncode == 4
        assert refused.stdout == ""
        assert "db upgrade" in refused.stderr

        assert run_cli(database_url, "db", "upgrade").returncode == 0, "upgrade failed"
        assert postventa(database_url, "accounts", "create", "Tienda")["Name"] == "Tienda"
    finally:
        await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
