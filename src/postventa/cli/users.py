"""`postventa users`: the operator console's users (issue 19). The services are imported when a
command runs: `postventa --help` does not load the password hasher."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from postventa.cli.runtime import EXIT_INVALID, emit, in_transaction, now, report_error

users_app = typer.Typer(
    help="Console users (people who sign in to the operator console).", no_args_is_help=True
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="The user's email: what they sign in with.")],
    account: Annotated[
        list[int], typer.Option("--account", help="An account the user may see (repeatable).")
    ],
    role: Annotated[
        str, typer.Option(help="operator (reads and sends) or admin (also requeues).")
    ] = "operator",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Create a console user; prompts for the password unless --password-stdin."""
    from postventa.services import console_users

    if role not in ("operator", "admin"):
        report_error("invalid_role: --role is operator or admin")
        raise typer.Exit(EXIT_INVALID)
    password = _password(password_stdin)
    user = in_transaction(
        lambda connection: console_users.create_user(
            connection, email=email, password=password, account_ids=account, role=role, now=now()
        )
    )
    emit({"Id": user.id, "Email": user.email, "AccountIds": list(user.account_ids), "Role": user.role})


@users_app.command("list")
def users_list() -> None:
    """Every console user."""
    from postventa.services import console_users

    found = in_transaction(console_users.list_users, write=False)
    emit(
        {
            "Results": [
                {"Id": user.id, "Email": user.email, "AccountIds": list(user.account_ids), "Role": user.role}
                for user in found
            ]
        }
    )


@users_app.command("delete")
def users_delete(user_id: Annotated[int, typer.Argument(help="The user's id.")]) -> None:
    """Delete a console user; their sessions end."""
    from postventa.services import console_users

    in_transaction(lambda connection: console_users.delete_user(connection, user_id))
    emit({"Id": user_id, "Deleted": True})
