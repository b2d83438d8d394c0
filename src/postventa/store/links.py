"""Accounts linked to Mercado Libre sellers: credentials, the current tokens, and the link's status.

The client secret and both tokens are sealed (store/sealing.py) before they are written and
opened when read, so callers only ever see plaintext and the table only ever holds ciphertext.
A link `needs_relink` once Mercado Libre refused its refresh token (`invalid_grant`): only the
seller authorising the application again, and an operator saving the new link, make it active.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.delivery import LinkStatus
from postventa.domain.sites import Site
from postventa.store.sealing import TokenCipher
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
    status: LinkStatus = LinkStatus.ACTIVE
    status_reason: str | None = None  # why it needs relinking (Mercado Libre's refusal, no secrets)
    status_changed_at: dt.datetime | None = None


@dataclass(frozen=True)
class LinkSummary:
    """What an operator may see of a link: the seller and the status, never credentials or tokens."""

    account_id: int
    seller_id: int
    site: Site
    status: LinkStatus
    status_reason: str | None
    status_changed_at: dt.datetime | None


async def save_link(
    connection: AsyncConnection, link: MarketplaceLink, now: dt.datetime, cipher: TokenCipher
) -> None:
    """Create or replace the account's link; it is active (a re-link ends `needs_relink`)."""
    values = {
        "account_id": link.account_id,
        "seller_id": link.seller_id,
        "site_id": link.site.value,
        "client_id": link.client_id,
        "client_secret": cipher.seal(link.client_secret),
        "refresh_token": cipher.seal(link.refresh_token),
        "access_token": cipher.seal(link.access_token) if link.access_token is not None else None,
        "access_token_expires_at": link.access_token_expires_at,
        "updated_at": now,
        "status": LinkStatus.ACTIVE.value,
        "status_reason": None,
        "status_changed_at": now,
    }
    replaced: dict[str, Any] = {name: value for name, value in values.items() if name != "account_id"}
    # Replacing an active link (new credentials) does not change its status, nor when it changed.
    replaced["status_changed_at"] = case(
        (marketplace_links.c.status == LinkStatus.ACTIVE.value, marketplace_links.c.status_changed_at),
        else_=now,
    )
    await upsert(connection, marketplace_links, values, ["account_id"], replaced)


async def mark_needs_relink(
    connection: AsyncConnection, account_id: int, reason: str, now: dt.datetime
) -> bool:
    """Mercado Libre refused the link's refresh token: the account's deliveries wait for a new link.

    False when the account has no link. The tokens are kept as they are: they no longer work, and a
    re-link replaces them.
    """
    result = await connection.execute(
        update(marketplace_links)
        .where(marketplace_links.c.account_id == account_id)
        .values(
            status=LinkStatus.NEEDS_RELINK.value,
            status_reason=reason,
            status_changed_at=case(
                (
                    marketplace_links.c.status == LinkStatus.NEEDS_RELINK.value,
                    marketplace_links.c.status_changed_at,
                ),
                else_=now,
            ),
            updated_at=now,
        )
    )
    return bool(result.rowcount)


async def link_summary(connection: AsyncConnection, account_id: int) -> LinkSummary | None:
    """The account's seller and link status (no secrets are read), or None when it is not linked."""
    row = (
        await connection.execute(
            select(*_SUMMARY_COLUMNS).where(marketplace_links.c.account_id == account_id)
        )
    ).first()
    return _summary(row) if row else None


async def link_statuses(connection: AsyncConnection) -> dict[int, LinkStatus]:
    """Every linked account's link status (the needs-relink gauge, read at each scrape)."""
    rows = await connection.execute(select(marketplace_links.c.account_id, marketplace_links.c.status))
    return {row.account_id: LinkStatus(row.status) for row in rows}


async def get_link(
    connection: AsyncConnection, account_id: int, cipher: TokenCipher, *, for_update: bool = False
) -> MarketplaceLink | None:
    """The account's link; `for_update` locks it (PostgreSQL) so one process refreshes the tokens."""
    query = select(marketplace_links).where(marketplace_links.c.account_id == account_id)
    if for_update and connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await connection.execute(query)).first()
    return _link(row, cipher) if row else None


async def account_of_seller(connection: AsyncConnection, seller_id: int) -> int | None:
    """The account linked to a Mercado Libre seller (notifications name the seller)."""
    query = select(marketplace_links.c.account_id).where(marketplace_links.c.seller_id == seller_id)
    account_id: int | None = (await connection.execute(query)).scalar()
    return account_id


async def save_tokens(
    connection: AsyncConnection,
    account_id: int,
    *,
    access_token: str,
    refresh_token: str,
    expires_at: dt.datetime,
    now: dt.datetime,
    cipher: TokenCipher,
) -> None:
    """Keep the new tokens (the refresh token rotates: the old one no longer works)."""
    await connection.execute(
        update(marketplace_links)
        .where(marketplace_links.c.account_id == account_id)
        .values(
            access_token=cipher.seal(access_token),
            refresh_token=cipher.seal(refresh_token),
            access_token_expires_at=expires_at,
            updated_at=now,
        )
    )


def _link(row: Row[Any], cipher: TokenCipher) -> MarketplaceLink:
    return MarketplaceLink(
        account_id=row.account_id,
        seller_id=row.seller_id,
        site=Site(row.site_id),
        client_id=row.client_id,
        client_secret=cipher.open(row.client_secret),
        refresh_token=cipher.open(row.refresh_token),
        access_token=cipher.open(row.access_token) if row.access_token is not None else None,
        access_token_expires_at=row.access_token_expires_at,
        status=LinkStatus(row.status),
        status_reason=row.status_reason,
        status_changed_at=row.status_changed_at,
    )


_SUMMARY_COLUMNS = (
    marketplace_links.c.account_id,
    marketplace_links.c.seller_id,
    marketplace_links.c.site_id,
    marketplace_links.c.status,
    marketplace_links.c.status_reason,
    marketplace_links.c.status_changed_at,
)


def _summary(row: Any) -> LinkSummary:
    return LinkSummary(
        account_id=row.account_id,
        seller_id=row.seller_id,
        site=Site(row.site_id),
        status=LinkStatus(row.status),
        status_reason=row.status_reason,
        status_changed_at=row.status_changed_at,
    )
