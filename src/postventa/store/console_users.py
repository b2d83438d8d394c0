"""The console's users, the accounts each may see, and how far the console has read conversations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.store.tables import (
    console_conversation_reads,
    console_user_accounts,
    console_users,
    conversations,
)


@dataclass(frozen=True)
class ConsoleUser:
    """A person who signs in to the console, and the accounts they may see."""

    id: int
    email: str
    role: str
    account_ids: tuple[int, ...]
    password_hash: str


class EmailTaken(Exception):
    """Another console user already has this email."""


async def create_user(
    connection: AsyncConnection,
    *,
    email: str,
    password_hash: str,
    role: str,
    account_ids: set[int],
    now: dt.datetime,
) -> int:
    """Insert a user and its accounts; EmailTaken when the email is someone's already (the
    transaction is then the caller's to roll back)."""
    if await find_by_email(connection, email) is not None:
        raise EmailTaken(email)
    try:
        result = await connection.execute(
            insert(console_users)
            .values(email=email, password_hash=password_hash, role=role, created_at=now)
            .returning(console_users.c.id)
        )
    except IntegrityError as error:  # a concurrent create of the same email
        raise EmailTaken(email) from error
    user_id: int = result.scalar_one()
    await _grant(connection, user_id, account_ids)
    return user_id


async def _grant(connection: AsyncConnection, user_id: int, account_ids: set[int]) -> None:
    await connection.execute(
        insert(console_user_accounts),
        [{"user_id": user_id, "account_id": account_id} for account_id in sorted(account_ids)],
    )


async def _accounts_by_user(connection: AsyncConnection, user_ids: list[int]) -> dict[int, list[int]]:
    rows = await connection.execute(
        select(console_user_accounts.c.user_id, console_user_accounts.c.account_id)
        .where(console_user_accounts.c.user_id.in_(user_ids))
        .order_by(console_user_accounts.c.account_id)
    )
    granted: dict[int, list[int]] = {user_id: [] for user_id in user_ids}
    for user_id, account_id in rows:
        granted[user_id].append(account_id)
    return granted


async def _users(connection: AsyncConnection, *where: ColumnElement[bool]) -> list[ConsoleUser]:
    rows = (await connection.execute(select(console_users).where(*where).order_by(console_users.c.id))).all()
    granted = await _accounts_by_user(connection, [row.id for row in rows]) if rows else {}
    return [
        ConsoleUser(row.id, row.email, row.role, tuple(granted[row.id]), row.password_hash) for row in rows
    ]


async def list_users(connection: AsyncConnection) -> list[ConsoleUser]:
    """Every console user, oldest first."""
    return await _users(connection)


async def get_user(connection: AsyncConnection, user_id: int) -> ConsoleUser | None:
    """One user by id, or None."""
    found = await _users(connection, console_users.c.id == user_id)
    return found[0] if found else None


async def find_by_email(connection: AsyncConnection, email: str) -> ConsoleUser | None:
    """One user by (lower-case) email, or None."""
    found = await _users(connection, console_users.c.email == email)
    return found[0] if found else None


async def update_user(
    connection: AsyncConnection,
    user_id: int,
    *,
    password_hash: str | None = None,
    role: str | None = None,
    account_ids: set[int] | None = None,
) -> bool:
    """Change what is given; False when there is no such user."""
    changes = {
        name: value for name, value in (("password_hash", password_hash), ("role", role)) if value is not None
    }
    statement = update(console_users).where(console_users.c.id == user_id)
    result = await connection.execute(
        statement.values(**changes) if changes else statement.values(id=user_id)
    )
    if not result.rowcount:
        return False
    if account_ids is not None:
        await connection.execute(
            delete(console_user_accounts).where(console_user_accounts.c.user_id == user_id)
        )
        await _grant(connection, user_id, account_ids)
    return True


async def delete_user(connection: AsyncConnection, user_id: int) -> bool:
    """Delete a user (and its grants); False when there is no such user."""
    await connection.execute(delete(console_user_accounts).where(console_user_accounts.c.user_id == user_id))
    result = await connection.execute(delete(console_users).where(console_users.c.id == user_id))
    return bool(result.rowcount)


async def read_sequences(connection: AsyncConnection, conversation_ids: list[int]) -> dict[int, int]:
    """How far the console has read each of these conversations (absent: never opened)."""
    if not conversation_ids:
        return {}
    rows = await connection.execute(
        select(
            console_conversation_reads.c.conversation_id, console_conversation_reads.c.read_sequence
        ).where(console_conversation_reads.c.conversation_id.in_(conversation_ids))
    )
    return {conversation_id: sequence for conversation_id, sequence in rows}


async def mark_read(connection: AsyncConnection, conversation_id: int, now: dt.datetime) -> None:
    """Record that the console has read the conversation up to its last message."""
    last = (
        await connection.execute(
            select(conversations.c.message_count).where(conversations.c.id == conversation_id)
        )
    ).scalar_one()
    known = await read_sequences(connection, [conversation_id])
    if conversation_id not in known:
        await connection.execute(
            insert(console_conversation_reads).values(
                conversation_id=conversation_id, read_sequence=last, read_at=now
            )
        )
    elif known[conversation_id] < last:
        await connection.execute(
            update(console_conversation_reads)
            .where(console_conversation_reads.c.conversation_id == conversation_id)
            .values(read_sequence=last, read_at=now)
        )
