"""Accounts linked to Mercado Libre sellers: credentials and the current tokens."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.sites import Site
from postventa.store.tables import marketplace_links
from postventa.store.upsert import upsert


@dataclass(frozen=True)
class MarketplaceLink:
    """An account's Mercado Libre seller and its OAuth state."""

    account_id: int
    seller_id: int
    site: Site
    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str | None
    access_token_expires_at: dt.datetime | None


async def save_link(connection: AsyncConnection, link: MarketplaceLink, now: dt.datetime) -> None:
    """Create or replace the account's link."""
    values = {
        "account_id": link.account_id,
        "seller_id": link.seller_id,
        "site_id": link.site.value,
        "client_id": link.client_id,
        "client_secret": link.client_secret,
        "refresh_token": link.refresh_token,
        "access_token": link.access_token,
        "access_token_expires_at": link.access_token_expires_at,
        "updated_at": now,
    }
    await upsert(connection, marketplace_links, values, ["account_id"])


async def get_link(
    connection: AsyncConnection, account_id: int, *, for_update: bool = False
) -> MarketplaceLink | None:
    """The account's link; `for_update` locks it (PostgreSQL) so one process refreshes the tokens."""
    query = select(marketplace_links).where(marketplace_links.c.account_id == account_id)
    if for_update and connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await connection.execute(query)).first()
    return _link(row) if row else None


async def get_link_by_seller(connection: AsyncConnection, seller_id: int) -> MarketplaceLink | None:
    """The link of a Mercado Libre seller (notifications name the seller)."""
    row = (
        await connection.execute(select(marketplace_links).where(marketplace_links.c.seller_id == seller_id))
    ).first()
    return _link(row) if row else None


async def save_tokens(
    connection: AsyncConnection,
    account_id: int,
    *,
    access_token: str,
    refresh_token: str,
    expires_at: dt.datetime,
    now: dt.datetime,
) -> None:
    """Keep the new tokens (the refresh token rotates: the old one no longer works)."""
    await connection.execute(
        update(marketplace_links)
        .where(marketplace_links.c.account_id == account_id)
        .values(
            access_token=access_token,
            refresh_token=refresh_token,
            access_token_expires_at=expires_at,
            updated_at=now,
        )
    )


def _link(row: Row[Any]) -> MarketplaceLink:
    return MarketplaceLink(
        account_id=row.account_id,
        seller_id=row.seller_id,
        site=Site(row.site_id),
        client_id=row.client_id,
        client_secret=row.client_secret,
        refresh_token=row.refresh_token,
        access_token=row.access_token,
        access_token_expires_at=row.access_token_expires_at,
    )
