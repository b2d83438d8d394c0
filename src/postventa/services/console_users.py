"""The console's users: created, listed, changed and deleted by an administrator (admin API, CLI),
and signed in with their password (the console). Passwords are kept only as Argon2 hashes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.console_users import (
    OPERATOR,
    email_refusal,
    normal_email,
    password_refusal,
    role_refusal,
)
from postventa.domain.errors import PostventaError, Refusal, RefusalKind, invalid, not_found
from postventa.store import accounts as account_store
from postventa.store import console_users as user_store
from postventa.store.console_users import ConsoleUser

_HASHER = PasswordHasher()


@functools.cache
def _nobody_hash() -> str:
    """Compared against when no user has the email, so that an unknown email costs what a wrong
    password does (made on first use: hashing takes tens of milliseconds)."""
    return _HASHER.hash("no console user has this password")


@dataclass(frozen=True)
class UserChanges:
    """What PATCH /admin/users/{id} may change; None leaves it as it is."""

    password: str | None = None
    account_ids: list[int] | None = None
    role: str | None = None


def _refuse(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise PostventaError(refusal)


async def hash_password(password: str) -> str:
    """The Argon2 hash of a password, computed off the event loop (it takes tens of milliseconds)."""
    return await asyncio.to_thread(_HASHER.hash, password)


async def _checked_accounts(connection: AsyncConnection, account_ids: list[int]) -> set[int]:
    wanted = set(account_ids)
    if not wanted:
        raise invalid("account_ids_missing", "'AccountIds' must list at least one account.")
    missing = wanted - await account_store.existing_account_ids(connection, wanted)
    if missing:
        raise invalid("unknown_account", f"No account {', '.join(map(str, sorted(missing)))}.")
    return wanted


async def create_user(
    connection: AsyncConnection,
    *,
    email: str,
    password: str,
    account_ids: list[int],
    now: dt.datetime,
    role: str = OPERATOR,
) -> ConsoleUser:
    """A new console user for existing accounts; a taken email is a conflict (409)."""
    email = normal_email(email)
    for refusal in (email_refusal(email), password_refusal(password), role_refusal(role)):
        _refuse(refusal)
    granted = await _checked_accounts(connection, account_ids)
    password_hash = await hash_password(password)
    try:
        user_id = await user_store.create_user(
            connection, email=email, password_hash=password_hash, role=role, account_ids=granted, now=now
        )
    except user_store.EmailTaken:
        raise PostventaError.of(
            RefusalKind.CONFLICT, "email_taken", f"A console user with the email {email} exists already."
        ) from None
    return await get_user(connection, user_id)


async def list_users(connection: AsyncConnection) -> list[ConsoleUser]:
    """Every console user."""
    return await user_store.list_users(connection)


async def get_user(connection: AsyncConnection, user_id: int) -> ConsoleUser:
    """One console user."""
    found = await user_store.get_user(connection, user_id)
    if found is None:
        raise not_found("user_not_found", f"No console user {user_id}.")
    return found


async def update_user(connection: AsyncConnection, user_id: int, changes: UserChanges) -> ConsoleUser:
    """Change a user's password (their sessions end), accounts or role."""
    if changes.password is None and changes.account_ids is None and changes.role is None:
        raise invalid("invalid_body", "Give at least one of Password, AccountIds, Role.")
    if changes.password is not None:
        _refuse(password_refusal(changes.password))
    if changes.role is not None:
        _refuse(role_refusal(changes.role))
    granted = (
        None if changes.account_ids is None else await _checked_accounts(connection, changes.account_ids)
    )
    password_hash = None if changes.password is None else await hash_password(changes.password)
    if not await user_store.update_user(
        connection, user_id, password_hash=password_hash, role=changes.role, account_ids=granted
    ):
        raise not_found("user_not_found", f"No console user {user_id}.")
    return await get_user(connection, user_id)


async def delete_user(connection: AsyncConnection, user_id: int) -> None:
    """Delete a user; their sessions end with it."""
    if not await user_store.delete_user(connection, user_id):
        raise not_found("user_not_found", f"No console user {user_id}.")


def _verifies(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def check_password(connection: AsyncConnection, email: str, password: str) -> ConsoleUser | None:
    """The user whose email and password these are, or None (whichever of the two is wrong: the
    same answer, in about the same time)."""
    email = normal_email(email)
    # An address no user can have is not looked up (a NUL would not even reach PostgreSQL), but its
    # password is still checked against the dummy hash: the answer takes as long.
    user = None if email_refusal(email) else await user_store.find_by_email(connection, email)
    if len(password) > 1024:
        return None
    matches = await asyncio.to_thread(_verifies, user.password_hash if user else _nobody_hash(), password)
    return user if matches and user is not None else None
