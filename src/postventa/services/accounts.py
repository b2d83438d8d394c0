"""The public reads of accounts and their marketplaces (GET /v2/accounts, …/marketplaces)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.store import accounts as account_store
from postventa.store import links as link_store


async def key_accounts(
    connection: AsyncConnection, grant: account_store.ApiKeyGrant
) -> list[account_store.Account]:
    """The accounts the API key opens, oldest first: all of them, in one answer."""
    return await account_store.list_accounts(connection, grant.account_ids)


async def marketplace_links(connection: AsyncConnection, account_id: int) -> list[link_store.LinkSummary]:
    """The account's marketplace links: its Mercado Libre seller, if linked (no secrets are read)."""
    link = await link_store.link_summary(connection, account_id)
    return [link] if link is not None else []
