"""Accounts linked to Mercado Libre: linking, access tokens, and importing orders.

These use cases talk to Mercado Libre through the client they are given and write through their
own short transactions, never holding a database transaction open across a slow call except the
token refresh, which must be serialised (refresh tokens rotate: two refreshes would lose one).

A refresh token Mercado Libre refuses (`invalid_grant`: the seller revoked the application or
changed the password, or a rotated token was lost with a dropped response) comes back only when
the seller authorises the application again: the link is marked `needs_relink`, and nothing asks
Mercado Libre for that account's tokens again until an operator saves a new link.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.delivery import DeliveryFailure, FailureKind, LinkStatus
from postventa.domain.errors import PostventaError, RefusalKind, invalid, not_found
from postventa.domain.inbound import SiteProblem, order_site_problem
from postventa.domain.orders import MERCADOLIBRE, DeliveryWindow, LogisticType, status_from_mercadolibre
from postventa.domain.sites import Site
from postventa.domain.webhooks import EventType
from postventa.meli.client import MeliClient, MeliError
from postventa.meli.models import MeliOrder
from postventa.services.order_input import validation_refusal
from postventa.services.webhook_bodies import emit_order_updated
from postventa.store import accounts as account_store
from postventa.store import links as link_store
from postventa.store import outbox, webhook_events
from postventa.store.engine import Database
from postventa.store.orders import Buyer, OrderData, stored_watched_values, upsert_order, watched_values

T = TypeVar("T")
log = structlog.get_logger("postventa.marketplace")
LINK_REVOKED = "marketplace_link_revoked"
KNOWN_SITES = frozenset(site.value for site in Site)
TOKEN_MARGIN_SECONDS = 120  # refresh this long before expiry, so no call carries a dying token


class LinkIn(BaseModel):
    """PUT /admin/accounts/{accountId}/mercadolibre."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    SellerId: int = Field(gt=0, lt=2**63)
    SiteId: str
    ClientId: str = Field(min_length=1, max_length=64)
    ClientSecret: str = Field(min_length=1, max_length=512)
    RefreshToken: str = Field(min_length=1, max_length=512)


@dataclass(frozen=True)
class Session:
    """A linked seller and a valid access token."""

    link: link_store.MarketplaceLink
    access_token: str


async def link_account(
    database: Database, account_id: int, payload: Any, meli: MeliClient, now: dt.datetime
) -> None:
    """Link an account to a seller, after checking the credentials with Mercado Libre."""
    try:
        body = LinkIn.model_validate(payload)
    except ValidationError as error:
        raise validation_refusal(error) from error
    site = Site.parse(body.SiteId)
    if site is None:
        raise invalid("invalid_body", f"SiteId: unknown site '{body.SiteId}'.")
    async with database.transaction() as connection:
        if await account_store.get_account(connection, account_id) is None:
            raise not_found("account_not_found", f"No account {account_id}.")
    grant = await _marketplace_call(meli.refresh(body.ClientId, body.ClientSecret, body.RefreshToken))
    me = await _marketplace_call(meli.me(grant.access_token))
    if me.get("id") != body.SellerId:
        raise invalid(
            "seller_mismatch", f"The credentials belong to seller {me.get('id')}, not {body.SellerId}."
        )
    link = link_store.MarketplaceLink(
        account_id=account_id,
        seller_id=body.SellerId,
        site=site,
        client_id=body.ClientId,
        client_secret=body.ClientSecret,
        refresh_token=grant.refresh_token,
        access_token=grant.access_token,
        access_token_expires_at=now + dt.timedelta(seconds=grant.expires_in_seconds),
    )
    async with database.transaction(write=True) as connection:
        await link_store.save_link(connection, link, now, database.token_cipher)
        # Messages that waited for a working link go now, not at a later retry time.
        await outbox.resume_account(connection, account_id, now)


async def session_for(
    database: Database,
    account_id: int,
    meli: MeliClient,
    now: dt.datetime,
    *,
    refused_token: str | None = None,
) -> Session | None:
    """The account's seller with an access token that is valid now; None when the account is not linked.

    `refused_token` is a token Mercado Libre just answered 401 to: it is replaced even if not expired.
    Raises MeliError with a RELINK failure when the link needs relinking, or when Mercado Libre
    refuses its refresh token now (the link is then marked `needs_relink`, and that mark committed).
    """
    async with database.transaction() as connection:
        link = await link_store.get_link(connection, account_id, database.token_cipher)
    if link is None:
        return None
    if link.status is LinkStatus.NEEDS_RELINK:
        raise MeliError(_relink_failure(account_id, link.status_reason))
    if _usable(link, now, refused_token):
        assert link.access_token is not None
        return Session(link, link.access_token)
    # Shielded: a caller cut short (a time limit, a stop) must not roll back tokens Mercado Libre has
    # already rotated, which would leave the link with a spent refresh token (invalid_grant next time).
    refreshing = asyncio.ensure_future(_refreshed_session(database, account_id, meli, now, refused_token))
    _REFRESHING.add(refreshing)
    refreshing.add_done_callback(_refresh_done)
    return await asyncio.shield(refreshing)


_REFRESHING: set[asyncio.Future[Session]] = set()  # refreshes running on, kept until they end


def _refresh_done(refreshing: asyncio.Future[Session]) -> None:
    _REFRESHING.discard(refreshing)
    if not refreshing.cancelled():
        refreshing.exception()  # retrieved: its caller may have been cancelled and never will


async def _refreshed_session(
    database: Database, account_id: int, meli: MeliClient, now: dt.datetime, refused_token: str | None
) -> Session:
    """`session_for` past the unlocked read: the link locked, and its tokens refreshed unless another
    process did meanwhile. Raises MeliError with a RELINK failure when the link needs relinking."""
    async with database.transaction(write=True) as connection:
        link = await link_store.get_link(connection, account_id, database.token_cipher, for_update=True)
        assert link is not None
        if link.status is LinkStatus.NEEDS_RELINK:  # another process was refused meanwhile
            raise MeliError(_relink_failure(account_id, link.status_reason))
        if _usable(link, now, refused_token):  # another process refreshed it meanwhile
            assert link.access_token is not None
            return Session(link, link.access_token)
        # Returned, not raised, inside the block: a refusal's mark must be committed, not rolled back.
        refreshed = await _refresh(database, connection, link, meli, now)
    if isinstance(refreshed, DeliveryFailure):
        log.warning(
            "marketplace_link_needs_relink",
            account_id=account_id,
            seller_id=link.seller_id,
            code=refreshed.code,
        )
        raise MeliError(_relink_failure(account_id, refreshed.message), 400)
    assert refreshed.access_token is not None
    return Session(refreshed, refreshed.access_token)


async def _refresh(
    database: Database,
    connection: AsyncConnection,
    link: link_store.MarketplaceLink,
    meli: MeliClient,
    now: dt.datetime,
) -> link_store.MarketplaceLink | DeliveryFailure:
    """The link with new tokens (kept: the refresh token rotates), or Mercado Libre's refusal of the
    refresh token (`invalid_grant`), the link then marked `needs_relink`. Other failures raise."""
    try:
        grant = await meli.refresh(link.client_id, link.client_secret, link.refresh_token)
    except MeliError as error:
        if error.failure.kind is not FailureKind.RELINK:
            raise
        await link_store.mark_needs_relink(connection, link.account_id, error.failure.message, now)
        return error.failure
    expires_at = now + dt.timedelta(seconds=grant.expires_in_seconds)
    await link_store.save_tokens(
        connection,
        link.account_id,
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        expires_at=expires_at,
        now=now,
        cipher=database.token_cipher,
    )
    return replace(
        link,
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        access_token_expires_at=expires_at,
    )


def _relink_failure(account_id: int, reason: str | None) -> DeliveryFailure:
    """The failure every use of a link that needs relinking ends with, until it is linked again."""
    detail = f" ({reason})" if reason else ""
    return DeliveryFailure(
        FailureKind.RELINK,
        LINK_REVOKED,
        f"Account {account_id} needs relinking: Mercado Libre refused its authorization{detail}. The "
        "seller must authorise the application again, and an operator link the account again.",
    )


async def sync_orders(database: Database, account_id: int, meli: MeliClient, now: dt.datetime) -> int:
    """Import every order of the linked seller (site, pack, status, logistic type, buyer, window)."""
    session = await _linked_session(database, account_id, meli, now)

    async def fetch() -> list[OrderData]:
        found = await meli.search_orders(session.access_token, session.link.seller_id)
        return [await _order_data(meli, session, order) for order in found]

    imported = await _marketplace_call(fetch())
    async with database.transaction(write=True) as connection:
        await write_synced_orders(connection, account_id, imported, now)
    return len(imported)


async def sync_order(
    database: Database, session: Session, meli: MeliClient, order_id: int, now: dt.datetime
) -> None:
    """Import one order (an `orders_v2` notification)."""
    order = await meli.order(session.access_token, order_id)
    data = await _order_data(meli, session, order)
    async with database.transaction(write=True) as connection:
        await write_synced_orders(connection, session.link.account_id, [data], now)


async def write_synced_orders(
    connection: AsyncConnection, account_id: int, synced: list[OrderData], now: dt.datetime
) -> int:
    """Write orders read from Mercado Libre. When an endpoint of the account takes `order.updated`
    (one indexed look first), each order whose status, shipment or delivery window changed makes
    that event, in the same transaction; an order seen for the first time makes none (it was not
    updated). Returns how many webhook deliveries they made."""
    watched = await webhook_events.subscribed(connection, account_id, EventType.ORDER_UPDATED)
    events = 0
    for data in synced:
        before = (
            await stored_watched_values(connection, account_id, data.external_order_id) if watched else None
        )
        order_id = await upsert_order(connection, account_id, data, now)
        if before is not None and before != watched_values(data):
            events += await emit_order_updated(connection, account_id, order_id, now)
    return events


async def _linked_session(database: Database, account_id: int, meli: MeliClient, now: dt.datetime) -> Session:
    try:
        session = await session_for(database, account_id, meli, now)
    except MeliError as error:
        if error.failure.kind is FailureKind.RELINK:
            raise PostventaError.of(RefusalKind.CONFLICT, LINK_REVOKED, error.failure.message) from error
        raise _refusal(error) from error
    if session is None:
        raise not_found("account_not_linked", f"Account {account_id} is not linked to Mercado Libre.")
    return session


async def _order_data(meli: MeliClient, session: Session, order: MeliOrder) -> OrderData:
    site = _order_site(session, order)
    shipment = await meli.shipment(session.access_token, order.shipment_id) if order.shipment_id else None
    window = None
    if (
        shipment
        and shipment.delivery_date
        and shipment.delivery_from_hour is not None
        and shipment.delivery_to_hour
    ):
        window = DeliveryWindow(
            shipment.delivery_date, shipment.delivery_from_hour, shipment.delivery_to_hour
        )
    logistic = (
        LogisticType.from_mercadolibre(shipment.logistic_type)
        if shipment and shipment.logistic_type
        else None
    )
    return OrderData(
        external_order_id=str(order.id),
        pack_id=order.pack_id,
        marketplace=MERCADOLIBRE,
        site=site,
        status=status_from_mercadolibre(order.status, shipment.status if shipment else None),
        logistic_type=logistic,
        buyer=Buyer(
            code=str(order.buyer_id) if order.buyer_id else None, nickname=order.buyer_nickname, name=None
        ),
        date_created=order.date_created or dt.datetime.now(dt.UTC),
        delivery_window=window,
        marketplace_status=order.status or None,
        date_closed=order.date_closed,
        shipping_id=order.shipment_id,
    )


def _order_site(session: Session, order: MeliOrder) -> Site:
    """The order's own site; an order of an unknown site, or of another site than the seller's link,
    is refused (400 `order_site_unknown` / `order_site_mismatch`) rather than filed under a wrong one."""
    link_site = session.link.site
    problem = order_site_problem(order.site_id, known_sites=KNOWN_SITES, link_site=link_site.value)
    if problem is SiteProblem.UNKNOWN:
        raise invalid(
            problem.value,
            f"Order {order.id} has site {order.site_id!r}, which is not a known Mercado Libre site; "
            "it was not imported.",
        )
    if problem is SiteProblem.MISMATCH:
        raise invalid(
            problem.value,
            f"Order {order.id} is of site {order.site_id}, but account {session.link.account_id} is "
            f"linked to a seller of site {link_site.value}; it was not imported.",
        )
    site = Site.parse(order.site_id or "")
    assert site is not None
    return site


def session_usable(session: Session, now: dt.datetime) -> bool:
    """Whether a session's access token is still good to use now (the same margin as `session_for`)."""
    return _usable(session.link, now, None)


def _usable(link: link_store.MarketplaceLink, now: dt.datetime, refused_token: str | None) -> bool:
    if (
        link.access_token is None
        or link.access_token_expires_at is None
        or link.access_token == refused_token
    ):
        return False
    return link.access_token_expires_at - now > dt.timedelta(seconds=TOKEN_MARGIN_SECONDS)


async def _marketplace_call(call: Awaitable[T]) -> T:
    """Mercado Libre's refusals as the admin API's: bad credentials 400, anything else 502."""
    try:
        return await call
    except MeliError as error:
        raise _refusal(error) from error


def _refusal(error: MeliError) -> PostventaError:
    failure = error.failure
    # RELINK: the refresh token given is refused (invalid_grant), as a wrong one would be.
    if failure.kind in (FailureKind.AUTH, FailureKind.PERMANENT, FailureKind.RELINK):
        return invalid("invalid_credentials", f"Mercado Libre refused the credentials: {failure.message}")
    return PostventaError.of(
        RefusalKind.UPSTREAM,
        "marketplace_unavailable",
        f"Mercado Libre could not be reached: {failure.message}",
    )
