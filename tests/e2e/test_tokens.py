"""OAuth: the access token is refreshed before it expires and when Mercado Libre answers 401."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from postventa.meli.client import MeliClient
from postventa.services.marketplace import TOKEN_MARGIN_SECONDS, session_for
from postventa.store.links import get_link
from postventa.store.sealing import TokenCipher, TokenKeyError
from postventa.store.tables import marketplace_links
from tests.conftest import admin_headers
from tests.e2e.conftest import World, wait_for


async def token_calls(world: World, since: int) -> int:
    return sum(1 for e in await world.journal(since) if e["Path"] == "/oauth/token" and e["Status"] == 200)


async def test_token_is_refreshed_shortly_before_it_expires_and_the_refresh_token_rotates(
    world: World, database, emulator
):
    seller = await world.linked_seller("MLA")
    async with database.transaction() as connection:
        linked = await get_link(connection, seller.account_id, database.token_cipher)
    assert linked is not None
    assert linked.access_token_expires_at is not None
    meli = MeliClient(emulator.url)
    try:
        mark = await world.journal_mark()
        early = linked.access_token_expires_at - dt.timedelta(seconds=TOKEN_MARGIN_SECONDS + 60)
        session = await session_for(database, seller.account_id, meli, early)
        assert session is not None
        assert session.access_token == linked.access_token
        assert await token_calls(world, mark) == 0

        late = linked.access_token_expires_at - dt.timedelta(seconds=TOKEN_MARGIN_SECONDS - 10)
        session = await session_for(database, seller.account_id, meli, late)
        assert session is not None
        assert session.access_token != linked.access_token
        assert await token_calls(world, mark) == 1
        async with database.transaction() as connection:
            stored = await get_link(connection, seller.account_id, database.token_cipher)
        assert stored is not None
        assert stored.refresh_token != linked.refresh_token  # rotated, and the new one kept
        assert stored.access_token == session.access_token
    finally:
        await meli.aclose()


async def test_a_401_refreshes_the_token_and_the_message_still_goes_once(world: World, database, emulator):
    seller = await world.linked_seller("MLA")
    created = await world.emulator_order(seller)
    await world.sync(seller)
    order_id = await world.local_order_id(seller, created["OrderId"])
    # Mercado Libre expires tokens after 1 s, but we believe ours is good for a day.
    await world.configure(AccessTokenTtlSeconds=1)
    meli = MeliClient(emulator.url)
    try:
        async with database.transaction() as connection:
            linked = await get_link(connection, seller.account_id, database.token_cipher)
        assert linked is not None
        # A fresh token that Mercado Libre will refuse in a second.
        await session_for(
            database, seller.account_id, meli, dt.datetime.now(dt.UTC), refused_token=linked.access_token
        )
        async with database.transaction(write=True) as connection:
            await connection.execute(
                update(marketplace_links)
                .where(marketplace_links.c.account_id == seller.account_id)
                .values(access_token_expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
            )
        await asyncio.sleep(1.5)
        mark = await world.journal_mark()

        sent = await world.api.post(
            f"/v2/orders/{order_id}/messages", params=seller.credentials(messageOptions=4, message="Hola")
        )
        assert sent.status_code == 200

        async def is_sent() -> bool:
            return (await world.conversation(seller, order_id))[0]["Status"] == "sent"

        await wait_for(is_sent)
    finally:
        await meli.aclose()
        await world.configure(AccessTokenTtlSeconds=21600)
    entries = await world.journal(mark)
    options = [(e["Status"], e["Applied"]) for e in entries if e["Path"].endswith("/option")]
    assert options == [(401, False), (200, True)]
    assert await token_calls(world, mark) >= 1


async def test_credentials_are_stored_encrypted_and_need_the_key_to_be_read(world: World, database):
    credentials = (await world.meli.post("/_emulator/sellers", json={"SiteId": "MLA"})).json()
    account = (
        await world.api.post("/admin/accounts", json={"Name": "sealed"}, headers=admin_headers())
    ).json()
    link = {
        "SellerId": credentials["SellerId"],
        "SiteId": "MLA",
        "ClientId": credentials["ClientId"],
        "ClientSecret": credentials["ClientSecret"],
        "RefreshToken": credentials["RefreshToken"],
    }
    linked = await world.api.put(
        f"/admin/accounts/{account['Id']}/mercadolibre", json=link, headers=admin_headers()
    )
    assert linked.status_code == 200, linked.text

    async with database.transaction() as connection:
        row = (
            await connection.execute(
                select(marketplace_links).where(marketplace_links.c.account_id == account["Id"])
            )
        ).one()
        opened = await get_link(connection, account["Id"], database.token_cipher)
    assert opened is not None
    assert opened.client_secret == credentials["ClientSecret"]
    stored = " ".join(str(value) for value in row)
    for secret in (opened.client_secret, opened.refresh_token, opened.access_token):
        assert secret
        assert secret not in stored
    assert row.client_id == credentials["ClientId"]  # an identifier, not a secret

    stranger = TokenCipher([Fernet.generate_key().decode()])
    async with database.transaction() as connection:
        with pytest.raises(TokenKeyError):
            await get_link(connection, account["Id"], stranger)
