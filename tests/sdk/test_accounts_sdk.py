"""`accounts()` and `marketplaces()` against the real application, through both clients (see conftest)."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from postventa_sdk import Account, Forbidden, Marketplace

from postventa.domain.sites import Site
from postventa.services import admin
from postventa.store.links import MarketplaceLink, save_link
from tests.factories import now
from tests.sdk.conftest import call


async def test_accounts_are_every_account_the_key_opens(sdk, database, tenant):
    async with database.transaction(write=True) as connection:
        other = await admin.create_account(connection, "Tienda Dos", now())
        await admin.update_account(connection, other.id, {"business_name": "Dos SRL", "doc_type": "CUIT"})
        await admin.create_api_key(connection, [other.id], "unused", now())  # another key: not listed twice
        await admin.create_account(connection, "Tienda Ajena", now())

    found = await call(sdk.accounts())

    assert found == [Account(tenant.account_id, "Seller", None, None, None)]
    assert all(isinstance(account, Account) for account in found)


async def test_marketplaces_of_the_account_linked_or_not(sdk, database, tenant):
    assert await call(sdk.marketplaces()) == []
    seller_id = secrets.randbelow(10**12) + 10**12
    link = MarketplaceLink(
        tenant.account_id,
        seller_id,
        Site.MLC,
        "app",
        "secret",
        "refresh",
        "access",
        now() + dt.timedelta(hours=1),
    )
    async with database.transaction(write=True) as connection:
        await save_link(connection, link, now(), database.token_cipher)

    linked = await call(sdk.marketplaces())

    assert linked == [Marketplace(1, "MercadoLibre", "MLC", seller_id, "active")]
    assert await call(sdk.marketplaces(tenant.account_id)) == linked


async def test_marketplaces_of_an_account_the_key_does_not_open_is_forbidden(sdk, database):
    async with database.transaction(write=True) as connection:
        other = await admin.create_account(connection, "Tienda Ajena", now())

    with pytest.raises(Forbidden) as refused:
        await call(sdk.marketplaces(other.id))

    assert refused.value.code == "account_not_allowed"
