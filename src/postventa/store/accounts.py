"""Accounts and API keys. Keys are kept only as keyed hashes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.store.prepared import Prepared
from postventa.store.tables import accounts, api_key_accounts, api_keys


@dataclass(frozen=True)
class Account:
    """A seller account, and what Alephee's accounts show besides its name (None when not set)."""

    id: int
    name: str
    business_name: str | None = None
    doc_type: str | None = None
    doc_number: str | None = None


# What an operator may change of an account: column → Alephee's field name (admin API, CLI).
ACCOUNT_FIELDS = {
    "name": "Name",
    "business_name": "BusinessName",
    "doc_type": "DocType",
    "doc_number": "DocNumber",
}


@dataclass(frozen=True)
class ApiKeyGrant:
    """What a valid API key may reach, and how often (its own rate limits, or None for the defaults)."""

    api_key_id: int
    account_ids: frozenset[int]
    prefix: str  # public and unique everywhere: what rate-limit counters are kept under
    rate_limits: str | None


@dataclass(frozen=True)
class StoredApiKey:
    """An active key's row: the hash to compare with, and the grant it gives."""

    key_hash: str
    grant: ApiKeyGrant


async def create_account(connection: AsyncConnection, name: str, now: dt.datetime) -> Account:
    """Insert an account."""
    result = await connection.execute(
        insert(accounts).values(name=name, created_at=now).returning(accounts.c.id)
    )
    return Account(id=result.scalar_one(), name=name)


async def existing_account_ids(connection: AsyncConnection, account_ids: set[int]) -> set[int]:
    """Those of the ids that are accounts."""
    if not account_ids:
        return set()
    rows = await connection.execute(select(accounts.c.id).where(accounts.c.id.in_(account_ids)))
    return set(rows.scalars())


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        name=row.name,
        business_name=row.business_name,
        doc_type=row.doc_type,
        doc_number=row.doc_number,
    )


async def get_account(connection: AsyncConnection, account_id: int) -> Account | None:
    """One account, or None."""
    row = (await connection.execute(select(accounts).where(accounts.c.id == account_id))).first()
    return _account(row) if row else None


async def list_accounts(
    connection: AsyncConnection, account_ids: frozenset[int] | None = None
) -> list[Account]:
    """Every account (or those of `account_ids`), oldest first."""
    query = select(accounts).order_by(accounts.c.id)
    if account_ids is not None:
        query = query.where(accounts.c.id.in_(sorted(account_ids)))
    rows = await connection.execute(query)
    return [_account(row) for row in rows]


async def update_account(
    connection: AsyncConnection, account_id: int, changes: dict[str, str | None]
) -> bool:
    """Set the given fields (keys of ACCOUNT_FIELDS; None clears an optional one); False: no account."""
    unknown = changes.keys() - ACCOUNT_FIELDS.keys()
    if unknown:
        raise ValueError(f"not account fields: {sorted(unknown)}")
    result = await connection.execute(update(accounts).where(accounts.c.id == account_id).values(**changes))
    return bool(result.rowcount)


async def create_api_key(
    connection: AsyncConnection,
    prefix: str,
    key_hash: str,
    account_ids: set[int],
    now: dt.datetime,
    rate_limits: str | None = None,
) -> int:
    """Store a key's prefix and hash, its own rate limits and the accounts it opens; returns its id."""
    result = await connection.execute(
        insert(api_keys)
        .values(prefix=prefix, key_hash=key_hash, created_at=now, rate_limits=rate_limits)
        .returning(api_keys.c.id)
    )
    key_id: int = result.scalar_one()
    await connection.execute(
        insert(api_key_accounts),
        [{"api_key_id": key_id, "account_id": account_id} for account_id in sorted(account_ids)],
    )
    return key_id


async def revoke_api_key(connection: AsyncConnection, key_id: int, now: dt.datetime) -> bool:
    """Mark a key revoked; False when there is no such key."""
    result = await connection.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if result.rowcount:
        return True
    exists = await connection.execute(select(api_keys.c.id).where(api_keys.c.id == key_id))
    return exists.first() is not None


async def set_api_key_rate_limits(connection: AsyncConnection, key_id: int, rate_limits: str | None) -> bool:
    """Give a key its own rate limits (None: the defaults); False when there is no such key."""
    result = await connection.execute(
        update(api_keys).where(api_keys.c.id == key_id).values(rate_limits=rate_limits)
    )
    return bool(result.rowcount)


# Every request authenticates: built once, fast on SQLite (store/prepared.py).
_ACTIVE_KEY = Prepared(
    select(api_keys.c.id, api_keys.c.key_hash, api_keys.c.rate_limits, api_key_accounts.c.account_id)
    .select_from(api_keys.outerjoin(api_key_accounts))
    .where(api_keys.c.prefix == bindparam("prefix"), api_keys.c.revoked_at.is_(None))
)


async def find_active_key(connection: AsyncConnection, prefix: str) -> StoredApiKey | None:
    """The active key with this prefix and its accounts, or None for an unknown or revoked key."""
    rows = (await _ACTIVE_KEY.execute(connection, {"prefix": prefix})).all()
    if not rows:
        return None
    return StoredApiKey(
        key_hash=rows[0].key_hash,
        grant=ApiKeyGrant(
            api_key_id=rows[0].id,
            account_ids=frozenset(row.account_id for row in rows if row.account_id is not None),
            prefix=prefix,
            rate_limits=rows[0].rate_limits,
        ),
    )
