"""`postventa webhooks add | list | delete` (issue 20) in process, on the backend's database: one JSON line
on stdout, the secret shown once, refusals on stderr with their code and the CLI's exit codes. The
tests take the `database` fixture for the backend's database to be migrated."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from postventa.cli.main import app
from postventa.store.engine import Database

TOKEN_KEY = Fernet.generate_key().decode()  # the secrets are sealed with it: nothing written to disk


def postventa(database_url: str, *args: object, allow_private: bool = False) -> Any:
    """`postventa ARGS` in process on the database (wide, no colour)."""
    environment = {
        "POSTVENTA_DATABASE_URL": database_url,
        "POSTVENTA_TOKEN_KEY": TOKEN_KEY,
        "POSTVENTA_WEBHOOK_ALLOW_PRIVATE": "true" if allow_private else "false",
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    return CliRunner().invoke(app, [str(arg) for arg in args], env=environment)


def printed(result: Any) -> dict[str, Any]:
    """The one JSON line a command that succeeded printed."""
    assert result.exit_code == 0, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return dict(json.loads(lines[0]))


def new_account(database_url: str) -> int:
    """An account of the test's own, made by the CLI."""
    return int(printed(postventa(database_url, "accounts", "create", "Tienda"))["Id"])


def refused(result: Any, exit_code: int, code: str) -> None:
    assert (result.exit_code, result.stdout) == (exit_code, ""), (result.stdout, result.stderr)
    assert f"error {code}:" in result.stderr


def test_an_endpoint_is_added_listed_and_deleted(database_url: str, database: Database):
    account_id = new_account(database_url)
    url = "https://1.1.1.1/postventa/events"

    added = printed(
        postventa(
            database_url,
            "webhooks",
            "add",
            account_id,
            url,
            "--event",
            "order.updated",
            "--event",
            "message.sent",
        )
    )
    everything = printed(postventa(database_url, "webhooks", "add", account_id, "https://8.8.8.8/all"))

    assert set(added) == {"Id", "Url", "Events", "Secret"}
    assert (added["Url"], added["Events"]) == (url, ["message.sent", "order.updated"])
    assert len(base64.b64decode(added["Secret"].removeprefix("whsec_"))) == 32
    assert len(everything["Events"]) == 5  # no --event: all of them
    listed = postventa(database_url, "webhooks", "list", account_id)
    assert "whsec_" not in listed.stdout
    results = printed(listed)["Results"]
    assert [(item["Id"], item["Url"], item["Enabled"]) for item in results] == [
        (added["Id"], url, True),
        (everything["Id"], "https://8.8.8.8/all", True),
    ]
    assert printed(postventa(database_url, "webhooks", "delete", added["Id"])) == {
        "Id": added["Id"],
        "Deleted": True,
    }
    remaining = printed(postventa(database_url, "webhooks", "list", account_id))["Results"]
    assert [item["Id"] for item in remaining] == [everything["Id"]]
    refused(postventa(database_url, "webhooks", "delete", added["Id"]), 3, "webhook_not_found")


def test_private_urls_need_allow_private(database_url: str, database: Database):
    account_id = new_account(database_url)
    local = "http://127.0.0.1:8080/hook"

    refused(postventa(database_url, "webhooks", "add", account_id, local), 2, "webhook_url_scheme")
    refused(
        postventa(database_url, "webhooks", "add", account_id, "https://127.0.0.1/hook"),
        2,
        "webhook_url_private",
    )
    allowed = printed(postventa(database_url, "webhooks", "add", account_id, local, allow_private=True))
    assert allowed["Url"] == local


@pytest.mark.parametrize(
    ("args", "exit_code", "code"),
    [
        (("add", "{account}", "https://1.1.1.1/h", "--event", "order.created"), 2, "webhook_events_invalid"),
        (("add", "999999999", "https://1.1.1.1/h"), 3, "account_not_found"),
        (("list", "999999999"), 3, "account_not_found"),
        (("delete", "999999999"), 3, "webhook_not_found"),
    ],
    ids=["unknown_event", "add_to_unknown_account", "list_unknown_account", "delete_unknown_endpoint"],
)
def test_refusals_exit_non_zero_with_the_code_on_stderr(
    database_url: str, database: Database, args, exit_code, code
):  # `database`: migrated
    account_id = new_account(database_url)
    filled = [arg.format(account=account_id) for arg in args]
    refused(postventa(database_url, "webhooks", *filled), exit_code, code)
    assert printed(postventa(database_url, "webhooks", "list", account_id)) == {"Results": []}
