"""`postventa send`, `conversation` and `options` against a real server (`postventa serve` in its own
process, on the backend's database): their output, the colours of the conversation, the configuration
from options and from POSTVENTA_URL / POSTVENTA_API_KEY / POSTVENTA_ACCOUNT_ID, and one exit code per
failure."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from postventa.cli import client as cli_client
from postventa.cli.main import app
from postventa.services import admin
from postventa.store.engine import Database
from tests.factories import Tenant, buyer_replies, make_order, make_tenant
from tests.integration.http_helpers import PDF
from tests.servers import POSTVENTA, ThreadedServer

ANSI = re.compile(r"\x1b\[[0-9;]*m")
CONFIGURATION = ("POSTVENTA_URL", "POSTVENTA_API_KEY", "POSTVENTA_ACCOUNT_ID")


def postventa(*args: object, env: dict[str, str | None] | None = None) -> Any:
    """`postventa ARGS` in process, with only the configuration given here (wide, no colour unless asked)."""
    environment: dict[str, str | None] = {name: None for name in CONFIGURATION}
    environment.update(COLUMNS="200", FORCE_COLOR=None, NO_COLOR=None)
    environment.update(env or {})
    return CliRunner().invoke(app, [str(arg) for arg in args], env=environment)


def configured(url: str, tenant: Tenant, **extra: str) -> dict[str, str | None]:
    """The three variables for the tenant on the server at url."""
    return {
        "POSTVENTA_URL": url,
        "POSTVENTA_API_KEY": tenant.api_key,
        "POSTVENTA_ACCOUNT_ID": str(tenant.account_id),
        **extra,
    }


def sent_document(result: Any) -> dict[str, Any]:
    """The one JSON line `postventa send` prints."""
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, repr(result.stdout)
    return dict(json.loads(lines[0]))


def plain(text: str) -> str:
    """The text without its colours."""
    return ANSI.sub("", text)


@pytest.fixture
async def tenant(database: Database) -> Tenant:
    """An account of its own, with a key."""
    return await make_tenant(database)


OFFLINE = Tenant(account_id=1, api_key="pv_000000000000_offline", key_id=0)  # for runs that send nothing


# --- success --------------------------------------------------------------------------------------


async def test_send_prints_the_new_message_as_one_json_line(served_postventa, database, tenant):
    order_id = await make_order(database, tenant)

    result = postventa(
        "send",
        order_id,
        "--reason",
        "other",
        "--text",
        "Hola, ¿te llegó bien?",
        env=configured(served_postventa, tenant),
    )

    sent = sent_document(result)
    assert sent["OrderId"] == order_id
    assert sent["Location"] == f"/v2/orders/{order_id}/messages/{sent['Id']}"
    assert (sent["MessageIgnored"], sent["Replayed"]) == (False, False)
    assert sent["IdempotencyKey"]
    assert result.stderr == ""
    shown = postventa("conversation", order_id, env=configured(served_postventa, tenant))
    assert "Hola, ¿te llegó bien?" in shown.stdout


async def test_send_a_file_a_template_by_number_and_repeat_a_send_with_its_key(
    served_postventa, database, tenant, tmp_path
):
    order_id = await make_order(database, tenant)
    env = configured(served_postventa, tenant)
    sent_document(postventa("send", order_id, "--reason", "4", "--text", "Hola", env=env))
    await buyer_replies(database, order_id)
    invoice = tmp_path / "factura.pdf"
    invoice.write_bytes(PDF)
    template_order = await make_order(database, tenant)

    with_file = sent_document(
        postventa("send", order_id, "--reason", "OTHER", "--text", "Tu factura", "--file", invoice, env=env)
    )
    again = sent_document(
        postventa(
            "send",
            order_id,
            "--reason",
            "OTHER",
            "--text",
            "Tu factura",
            "--file",
            invoice,
            "--idempotency-key",
            with_file["IdempotencyKey"],
            env=env,
        )
    )
    template = sent_document(postventa("send", template_order, "--reason", "1", "--text", "ignored", env=env))

    assert (again["Id"], again["Replayed"]) == (with_file["Id"], True)
    assert template["MessageIgnored"] is True
    shown = plain(postventa("conversation", order_id, env=env).stdout)
    assert "attached: factura.pdf" in shown
    assert "REQUEST_VARIANTS" in plain(postventa("conversation", template_order, env=env).stdout)


async def test_the_conversation_is_coloured_by_status(served_postventa, database, tenant):
    order_id = await make_order(database, tenant)
    env = configured(served_postventa, tenant)
    sent_document(postventa("send", order_id, "--reason", "OTHER", "--text", "Hola [bold]x[/bold]", env=env))
    await buyer_replies(database, order_id, "¡Gracias!")

    coloured = postventa("conversation", order_id, env={**env, "FORCE_COLOR": "1"})
    uncoloured = postventa("conversation", order_id, env=env)

    assert coloured.exit_code == 0, coloured.output
    assert re.search(r"\x1b\[33mqueued", coloured.stdout)  # yellow: waiting for delivery
    assert re.search(r"\x1b\[34mreceived", coloured.stdout)  # blue: the buyer's
    assert not ANSI.search(uncoloured.stdout)  # not a terminal, and not forced: no escape codes
    text = plain(coloured.stdout)
    assert plain(uncoloured.stdout) == text
    assert f"Order {order_id}" in text
    assert "Hola [bold]x[/bold]" in text  # the text as written, never read as markup
    seller_row, buyer_row = (line.split() for line in text.splitlines() if re.search(r"seller|buyer", line))
    assert {"seller", "OTHER", "queued"} <= set(seller_row)
    assert {"buyer", "received", "¡Gracias!"} <= set(buyer_row)


async def test_an_empty_conversation_says_so(served_postventa, database, tenant):
    order_id = await make_order(database, tenant)

    result = postventa("conversation", order_id, env=configured(served_postventa, tenant))

    assert result.exit_code == 0
    assert result.stdout.strip() == f"Order {order_id}: no messages yet."


async def test_options_show_what_can_be_sent_and_why_not(served_postventa, database, tenant):
    order_id = await make_order(database, tenant, SiteId="MLA")
    env = configured(served_postventa, tenant)
    sent_document(postventa("send", order_id, "--reason", "OTHER", "--text", "Hola", env=env))

    result = postventa("options", order_id, env={**env, "FORCE_COLOR": "1"})

    assert result.exit_code == 0, result.output
    text = plain(result.stdout)
    lines = {line.split()[1]: line for line in text.splitlines() if re.match(r"\s+\d [A-Z_]+", line)}
    assert list(lines) == [
        "REQUEST_VARIANTS",
        "REQUEST_BILLING_INFO",
        "SEND_INVOICE_LINK",
        "OTHER",
        "DELIVERY_PROMISE",
    ]
    assert lines["OTHER"].split()[2:4] == ["409", "awaiting_buyer_reply"]
    assert lines["SEND_INVOICE_LINK"].split()[2:4] == ["412", "reason_not_available_in_country"]
    assert "free text ≤ 350" in text
    assert re.search(r"\x1b\[31m409", result.stdout)  # refused: red


# --- configuration --------------------------------------------------------------------------------


async def test_options_win_over_the_environment(served_postventa, database, tenant):
    order_id = await make_order(database, tenant)
    wrong = {
        "POSTVENTA_URL": "http://127.0.0.1:9",
        "POSTVENTA_API_KEY": "pv_000000000000_nope",
        "POSTVENTA_ACCOUNT_ID": "999999",
    }

    by_options = postventa(
        "conversation",
        order_id,
        "--url",
        served_postventa,
        "--api-key",
        tenant.api_key,
        "--account-id",
        tenant.account_id,
        env=wrong,
    )
    by_environment = postventa("conversation", order_id, "--max-retries", "0", env=wrong)

    assert by_options.exit_code == 0, by_options.output
    assert by_environment.exit_code == 11  # the environment alone points where nothing listens


@pytest.mark.parametrize("missing", CONFIGURATION)
async def test_missing_configuration_is_a_usage_error_naming_the_variable(served_postventa, tenant, missing):
    env = configured(served_postventa, tenant)
    env[missing] = None

    result = postventa("conversation", 1, env=env)

    assert result.exit_code == 2
    option = {
        "POSTVENTA_URL": "--url",
        "POSTVENTA_API_KEY": "--api-key",
        "POSTVENTA_ACCOUNT_ID": "--account-id",
    }
    assert f"Missing option '{option[missing]}'" in plain(result.stderr)


def test_help_names_the_environment_variables():
    result = postventa("send", "--help")

    assert result.exit_code == 0
    for variable in CONFIGURATION:
        assert variable in plain(result.stdout)


# --- exit codes -----------------------------------------------------------------------------------


async def test_exit_codes_of_refusals(served_postventa, database, tenant):
    env = configured(served_postventa, tenant)
    order_id = await make_order(database, tenant)
    other = await make_tenant(database)
    others_order = await make_order(database, other)
    sent = sent_document(postventa("send", order_id, "--reason", "OTHER", "--text", "Hola", env=env))

    refusals = {
        "order_not_found": (postventa("conversation", others_order, env=env), 3),
        "awaiting_buyer_reply": (
            postventa("send", order_id, "--reason", "OTHER", "--text", "¿Y?", env=env),
            7,
        ),
        "api_key_invalid": (
            postventa("options", order_id, env={**env, "POSTVENTA_API_KEY": "pv_000000000000_nope"}),
            6,
        ),
        "account_not_allowed": (
            postventa("options", others_order, "--account-id", other.account_id, env=env),
            6,
        ),
        "message_too_long": (
            postventa("send", order_id, "--reason", "OTHER", "--text", "x" * 351, env=env),
            5,
        ),
        "idempotency_key_reused": (
            postventa(
                "send",
                order_id,
                "--reason",
                "OTHER",
                "--text",
                "Otro texto",
                "--idempotency-key",
                sent["IdempotencyKey"],
                env=env,
            ),
            5,
        ),
        "reason_not_available_in_country": (
            postventa(
                "send", order_id, "--reason", "SEND_INVOICE_LINK", "--text", "https://f.example", env=env
            ),
            8,
        ),
    }

    for code, (result, exit_code) in refusals.items():
        assert (result.exit_code, result.stdout) == (exit_code, ""), (code, result.output)
        (line,) = plain(result.stderr).splitlines()
        assert line.startswith(f"error {code}: ")
        assert re.search(r"\(HTTP \d{3}, request id [0-9a-f]{32}\)$", line), line
        assert tenant.api_key not in result.stderr


async def test_exit_code_when_rate_limited(served_postventa, database, tenant):
    async with database.transaction(write=True) as connection:
        await admin.set_api_key_rate_limits(connection, tenant.key_id, "send=1/minute,read=1000/minute")
    env = configured(served_postventa, tenant)
    first, second = await make_order(database, tenant), await make_order(database, tenant)
    sent_document(postventa("send", first, "--reason", "OTHER", "--text", "Hola", env=env))

    limited = postventa("send", second, "--reason", "OTHER", "--text", "Hola", "--max-retries", "0", env=env)

    assert limited.exit_code == 9
    assert plain(limited.stderr).startswith("error rate_limited: ")


@pytest.fixture(scope="module")
def failing_server() -> Iterator[str]:
    """A server that answers every request with a plain-text 503, as a proxy in front of a dead one."""

    async def unavailable(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"upstream unavailable"})

    with ThreadedServer(unavailable, lifespan="off") as server:
        yield server.url


def test_exit_codes_without_an_answer_from_the_api(failing_server):
    unavailable = postventa("conversation", 1, "--max-retries", "1", env=configured(failing_server, OFFLINE))
    refused = postventa(
        "conversation", 1, "--max-retries", "0", env=configured("http://127.0.0.1:9", OFFLINE)
    )

    assert unavailable.exit_code == 10
    assert (
        plain(unavailable.stderr)
        .splitlines()[-1]
        .startswith("error http_503: upstream unavailable (HTTP 503")
    )
    assert refused.exit_code == 11
    assert plain(refused.stderr).startswith("error no_response: GET /v2/orders/1/messages: no response")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["send", "1", "--reason", "THANKS", "--text", "x"], "unknown reason 'THANKS'"),
        (["send", "1", "--text", "x"], "Missing option '--reason'"),
        (["send", "1", "--reason", "OTHER", "--file", "/nonexistent/factura.pdf"], "does not exist"),
        (["send", "x", "--reason", "OTHER"], "Invalid value for 'ORDER_ID'"),
        (["conversation", "1", "--url", "localhost:8000"], "is not an http:// or https:// URL"),
    ],
    ids=["unknown reason", "no reason", "no such file", "order id", "url"],
)
def test_usage_errors_exit_2_before_any_request(failing_server, args, complaint):
    result = postventa(*args, env=configured(failing_server, OFFLINE))

    assert result.exit_code == 2
    assert complaint in " ".join(plain(result.stderr).split())


async def test_a_file_without_an_extension_exits_2(served_postventa, database, tenant, tmp_path):
    nameless = tmp_path / "factura"
    nameless.write_bytes(PDF)

    result = postventa(
        "send",
        await make_order(database, tenant),
        "--reason",
        "OTHER",
        "--text",
        "x",
        "--file",
        nameless,
        env=configured(served_postventa, tenant),
    )

    assert result.exit_code == 2
    assert plain(result.stderr).startswith("error invalid_input: the attachment's name needs an extension")


def test_without_the_sdk_the_commands_say_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "postventa_sdk", None)  # `import postventa_sdk` now fails

    result = postventa("conversation", 1, env=configured("http://127.0.0.1:9", OFFLINE))

    assert result.exit_code == 4
    assert "pip install ./sdk" in plain(result.stderr)


def test_the_documented_exit_codes_are_distinct():
    assert len(set(cli_client.EXIT_CODES)) == len(cli_client.EXIT_CODES) == 12
    documented = (Path(__file__).resolve().parents[2] / "docs" / "sdk.md").read_text(encoding="utf-8")
    for code in cli_client.EXIT_CODES:
        assert re.search(rf"^\| {code} \|", documented, re.MULTILINE), (
            f"exit code {code} is not in docs/sdk.md"
        )


# --- the installed command, as a script runs it ---------------------------------------------------


async def test_the_installed_command_configured_by_the_environment(served_postventa, database, tenant):
    order_id = await make_order(database, tenant)
    env = {name: value for name, value in os.environ.items() if not name.startswith("POSTVENTA_")}
    env.update({name: str(value) for name, value in configured(served_postventa, tenant).items()})
    command = [str(POSTVENTA), "send", str(order_id), "--reason", "OTHER", "--text", "Hola"]

    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["OrderId"] == order_id
    assert second.returncode == 7  # the buyer has not answered yet
    assert second.stderr.startswith("error awaiting_buyer_reply: ")
