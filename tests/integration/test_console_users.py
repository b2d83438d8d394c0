"""Console users (issue 19, item 1): the admin API's /admin/users over HTTP on both databases, and
`postventa users` (in process, as the other admin commands' tests run them). Passwords are stored
only as Argon2 hashes."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from postventa.store.engine import Database
from postventa.store.tables import console_users
from tests.integration.test_admin_cli import ADMIN, assert_error, cli_json, new_account, run_cli

PASSWORD = "correct horse battery"


def unique_email() -> str:
    return f"operator-{uuid.uuid4().hex[:10]}@example.com"


async def test_an_admin_creates_lists_changes_and_deletes_a_console_user(client, database: Database):
    first, second = await new_account(client), await new_account(client)
    email = unique_email()
    body = {"Email": email.upper(), "Password": PASSWORD, "AccountIds": [first], "Role": "operator"}

    created = await client.post("/admin/users", json=body, headers=ADMIN)

    assert created.status_code == 201, created.text
    user = created.json()
    assert user == {"Id": user["Id"], "Email": email, "AccountIds": [first], "Role": "operator"}
    async with database.transaction() as connection:
        stored = (await connection.execute(select(console_users).where(console_users.c.email == email))).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash
    listed = await client.get("/admin/users", headers=ADMIN)
    assert user in listed.json()["Results"]

    changed = await client.patch(
        f"/admin/users/{user['Id']}", json={"AccountIds": [first, second], "Role": "admin"}, headers=ADMIN
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**user, "AccountIds": sorted([first, second]), "Role": "admin"}

    deleted = await client.delete(f"/admin/users/{user['Id']}", headers=ADMIN)
    assert deleted.status_code == 204
    assert user["Id"] not in [
        found["Id"] for found in (await client.get("/admin/users", headers=ADMIN)).json()["Results"]
    ]
    assert_error(await client.delete(f"/admin/users/{user['Id']}", headers=ADMIN), 404, "user_not_found")


async def test_a_duplicate_email_is_a_409_and_bad_input_a_400(client):
    account_id = await new_account(client)
    body = {"Email": unique_email(), "Password": PASSWORD, "AccountIds": [account_id]}
    assert (await client.post("/admin/users", json=body, headers=ADMIN)).status_code == 201

    assert_error(await client.post("/admin/users", json=body, headers=ADMIN), 409, "email_taken")
    assert_error(
        await client.post(
            "/admin/users", json={**body, "Email": unique_email(), "Password": "short"}, headers=ADMIN
        ),
        400,
        "invalid_password",
    )
    assert_error(
        await client.post(
            "/admin/users", json={**body, "Email": unique_email(), "Role": "root"}, headers=ADMIN
        ),
        400,
        "invalid_role",
    )
    assert_error(
        await client.post("/admin/users", json={**body, "Email": "not an email"}, headers=ADMIN),
        400,
        "invalid_email",
    )
    assert_error(
        await client.post(
            "/admin/users", json={**body, "Email": unique_email(), "AccountIds": [2**62]}, headers=ADMIN
        ),
        400,
        "unknown_account",
    )


async def test_the_users_api_needs_the_admin_token(client):
    assert_error(await client.get("/admin/users"), 401, "admin_token_invalid")
    assert_error(await client.get("/admin/users", headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(await client.delete("/admin/users/1", headers={"Authorization": "Bearer wrong"}), 401)


def test_the_cli_creates_lists_and_deletes_a_console_user(database_url: str, database: Database):
    account = cli_json(run_cli(database_url, "accounts", "create", "Tienda CLI"))["Id"]
    email = unique_email()
    args = ["users", "create", email, "--account", str(account), "--role", "admin", "--password-stdin"]
    created = _cli_with_stdin(database_url, args, PASSWORD + "\n")
    assert created == {"Id": created["Id"], "Email": email, "AccountIds": [account], "Role": "admin"}

    listed = cli_json(run_cli(database_url, "users", "list"))
    assert created in listed["Results"]
    assert cli_json(run_cli(database_url, "users", "delete", created["Id"])) == {
        "Id": created["Id"],
        "Deleted": True,
    }
    assert created not in cli_json(run_cli(database_url, "users", "list"))["Results"]
    missing = run_cli(database_url, "users", "delete", created["Id"])
    assert missing.returncode == 3
    assert "user_not_found" in missing.stderr


def _cli_with_stdin(database_url: str, args: list[str], stdin: str) -> dict[str, object]:
    return dict(cli_json(run_cli(database_url, *args, stdin=stdin)))
