"""Administration: accounts, API keys and order imports (contract §5)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.errors import invalid, not_found
from postventa.domain.text import refuse_unprintable
from postventa.services.auth import issue_api_key, key_rate_limits
from postventa.services.order_input import parse_orders
from postventa.store import accounts as account_store
from postventa.store import links as link_store
from postventa.store.orders import upsert_order


@dataclass(frozen=True)
class CreatedKey:
    """A new API key; the secret is shown only here."""

    id: int
    api_key: str
    account_ids: list[int]
    rate_limits: str | None = None


@dataclass(frozen=True)
class AccountDetail:
    """An account with what an operator may see of its Mercado Libre link (None: not linked)."""

    account: account_store.Account
    link: link_store.LinkSummary | None


@dataclass(frozen=True)
class ImportedOrder:
    """Where an imported order landed."""

    id: int
    external_order_id: str


async def create_account(connection: AsyncConnection, name: str, now: dt.datetime) -> account_store.Account:
    """A new seller account."""
    name = name.strip()
    if not name or len(name) > 200:
        raise invalid("invalid_name", "'Name' is required, at most 200 characters.")
    refuse_unprintable(name, parameter="Name")
    return await account_store.create_account(connection, name, now)


async def list_accounts(connection: AsyncConnection) -> list[account_store.Account]:
    """Every account."""
    return await account_store.list_accounts(connection)


# The most each field may hold (store/tables.py); Name is required, the others may be cleared (None).
ACCOUNT_FIELD_LIMITS = {"name": 200, "business_name": 200, "doc_type": 32, "doc_number": 64}


async def update_account(
    connection: AsyncConnection, account_id: int, changes: dict[str, str | None]
) -> AccountDetail:
    """Change an account's Name, BusinessName, DocType or DocNumber (keys of ACCOUNT_FIELD_LIMITS);
    None clears one of the last three. Text is trimmed; an empty text is refused (None clears)."""
    if not changes:
        raise invalid("invalid_body", "Give at least one of Name, BusinessName, DocType, DocNumber.")
    checked = {field: _account_text(field, value) for field, value in changes.items()}
    if not await account_store.update_account(connection, account_id, checked):
        raise not_found("account_not_found", f"No account {account_id}.")
    return await account_detail(connection, account_id)


def _account_text(field: str, value: str | None) -> str | None:
    shown = account_store.ACCOUNT_FIELDS[field]
    if value is None:
        if field == "name":
            raise invalid("invalid_body", "Name: an account's name cannot be null.")
        return None
    value = value.strip()
    limit = ACCOUNT_FIELD_LIMITS[field]
    if not value or len(value) > limit:
        clear = "" if field == "name" else " (null clears it)"
        raise invalid("invalid_body", f"{shown}: from 1 to {limit} characters{clear}.")
    refuse_unprintable(value, parameter=shown)
    return value


async def account_detail(connection: AsyncConnection, account_id: int) -> AccountDetail:
    """One account and its link's seller and status (whether it needs relinking); no secrets."""
    account = await account_store.get_account(connection, account_id)
    if account is None:
        raise not_found("account_not_found", f"No account {account_id}.")
    return AccountDetail(account, await link_store.link_summary(connection, account_id))


async def create_api_key(
    connection: AsyncConnection,
    account_ids: list[int],
    pepper: str,
    now: dt.datetime,
    rate_limits: str | None = None,
) -> CreatedKey:
    """A key for one or more existing accounts, with its own rate limits (None: the defaults)."""
    rate_limits = key_rate_limits(rate_limits)
    wanted = set(account_ids)
    if not wanted:
        raise invalid("account_ids_missing", "'AccountIds' must list at least one account.")
    missing = wanted - await account_store.existing_account_ids(connection, wanted)
    if missing:
        raise invalid("unknown_account", f"No account {', '.join(map(str, sorted(missing)))}.")
    issued = issue_api_key(pepper)
    key_id = await account_store.create_api_key(
        connection, issued.prefix, issued.key_hash, wanted, now, rate_limits
    )
    return CreatedKey(id=key_id, api_key=issued.api_key, account_ids=sorted(wanted), rate_limits=rate_limits)


async def set_api_key_rate_limits(
    connection: AsyncConnection, key_id: int, rate_limits: str | None
) -> str | None:
    """Give a key its own rate limits, or back to the defaults with None; returns what is stored."""
    rate_limits = key_rate_limits(rate_limits)
    if not await account_store.set_api_key_rate_limits(connection, key_id, rate_limits):
        raise not_found("api_key_not_found", f"No API key {key_id}.")
    return rate_limits


async def revoke_api_key(connection: AsyncConnection, key_id: int, now: dt.datetime) -> None:
    """Revoke a key; requests with it get 401 from now on."""
    if not await account_store.revoke_api_key(connection, key_id, now):
        raise not_found("api_key_not_found", f"No API key {key_id}.")


async def import_orders(
    connection: AsyncConnection, account_id: int, payload: Any, now: dt.datetime
) -> list[ImportedOrder]:
    """Upsert orders by ExternalOrderId within the account; the whole document or nothing."""
    if await account_store.get_account(connection, account_id) is None:
        raise not_found("account_not_found", f"No account {account_id}.")
    results = []
    for data in parse_orders(payload, now):
        order_id = await upsert_order(connection, account_id, data, now)
        results.append(ImportedOrder(order_id, data.external_order_id))
    return results
