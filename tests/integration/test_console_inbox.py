"""The console's inbox query (issue 19, item 3) on both databases: one row per conversation (pack
mates together), latest activity first (a conversation without messages by its newest order), the
badges, the filters, the search, paging and the count of conversations waiting for an answer."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import update

from postventa.domain.parameters import Parameters
from postventa.services import messaging
from postventa.store import console_inbox, console_users
from postventa.store.console_inbox import InboxFilter, InboxRow
from postventa.store.tables import messages
from tests.factories import buyer_replies, make_order, make_tenant, now

PAGE = 25


async def seller_writes(database, tenant, order_id: int, text: str = "Hola") -> None:
    async with database.transaction(write=True) as connection:
        await messaging.send_message(
            connection,
            account_id=tenant.account_id,
            order_id=order_id,
            parameters=Parameters({"messageOptions": "4", "message": text}),
            max_attachment_bytes=1000,
            now=now(),
        )


async def delivery_fails(database, order_id: int) -> None:
    async with database.transaction(write=True) as connection:
        await connection.execute(
            update(messages)
            .where(messages.c.order_id == order_id)
            .values(status="failed", failed_at=now(), error_code="buyer_account_deactivated")
        )


async def inbox(database, account_ids, where: InboxFilter = InboxFilter(), *, limit=PAGE, offset=0):
    async with database.transaction() as connection:
        return await console_inbox.inbox_page(
            connection, frozenset(account_ids), where, limit=limit, offset=offset
        )


def orders_of(rows: list[InboxRow]) -> list[list[int]]:
    return [[order.id for order in row.orders] for row in rows]


async def an_inbox(database):
    """An account's five conversations: a pack of two orders where the buyer answered the seller,
    one the seller wrote to, one whose message failed, and, imported after them, two without
    messages (orders of one and two days ago). The tenant, the orders by name, the names' suffix."""
    tenant = await make_tenant(database)
    suffix = uuid.uuid4().hex[:8]

    async def order(name: str, days_ago: float = 0, **fields) -> int:
        created = (now() - dt.timedelta(days=days_ago)).isoformat()
        buyer = {"Nickname": f"Buyer{name}{suffix}"}
        return await make_order(database, tenant, DateCreated=created, Buyer=buyer, **fields)

    pack = int(uuid.uuid4().int % 10**15) + 1
    ids = {"pack": await order("Pack", PackId=pack), "mate": await order("Mate", PackId=pack)}
    await seller_writes(database, tenant, ids["pack"])
    await buyer_replies(database, ids["pack"], "¿Cuándo llega?")
    ids["written"] = await order("Written", ExternalOrderId=f"W-{suffix}")
    await seller_writes(database, tenant, ids["written"])
    ids["failed"] = await order("Failed")
    await seller_writes(database, tenant, ids["failed"])
    await delivery_fails(database, ids["failed"])
    # Imported last, sold earlier: their activity is their date, older than every message.
    ids["old"], ids["older"] = await order("Old", 1, SiteId="MLB"), await order("Older", 2)
    return tenant, ids, suffix


async def test_one_row_per_conversation_latest_activity_first_with_its_badges(database):
    tenant, ids, _ = await an_inbox(database)
    other = await make_tenant(database)
    await make_order(database, other)  # another account's conversation is not listed

    total, rows = await inbox(database, [tenant.account_id])

    assert total == 5
    assert orders_of(rows) == [
        [ids["failed"]],
        [ids["written"]],
        [ids["pack"], ids["mate"]],
        [ids["old"]],
        [ids["older"]],
    ]
    by_order = {row.orders[0].id: row for row in rows}
    assert (by_order[ids["pack"]].unread, by_order[ids["pack"]].last_direction) == (True, "inbound")
    assert by_order[ids["pack"]].last_text == "¿Cuándo llega?"
    assert by_order[ids["failed"]].failed
    assert not any(row.failed for row in rows if row.orders[0].id != ids["failed"])
    assert not any(row.unread for row in rows if row.orders[0].id != ids["pack"])
    assert by_order[ids["older"]].last_at is None
    async with database.transaction(write=True) as connection:
        assert await console_inbox.count_waiting(connection, frozenset({tenant.account_id})) == 1
        await console_users.mark_read(connection, by_order[ids["pack"]].conversation_id, now())

    _, rows = await inbox(database, [tenant.account_id])

    opened = next(row for row in rows if row.orders[0].id == ids["pack"])
    assert (opened.unread, opened.last_direction) == (False, "inbound")  # read, still waiting


async def test_filters_search_and_pages(database):
    tenant, ids, suffix = await an_inbox(database)
    second, _, _ = await an_inbox(database)
    both = [tenant.account_id, second.account_id]

    async def found(where: InboxFilter, account_ids=(tenant.account_id,)) -> list[list[int]]:
        total, rows = await inbox(database, account_ids, where)
        assert total == len(rows)
        return orders_of(rows)

    assert await found(InboxFilter(waiting=True)) == [[ids["pack"], ids["mate"]]]
    assert await found(InboxFilter(failed=True)) == [[ids["failed"]]]
    assert await found(InboxFilter(waiting=True, failed=True)) == []
    assert await found(InboxFilter(site_id="MLB")) == [[ids["old"]]]
    assert await found(InboxFilter(search=f"buyermate{suffix}".upper())) == [[ids["pack"], ids["mate"]]]
    assert await found(InboxFilter(search=f" {ids['written']} ")) == [[ids["written"]]]
    assert await found(InboxFilter(search=f"W-{suffix}")) == [[ids["written"]]]
    assert await found(InboxFilter(search="no such buyer")) == []
    assert len(await found(InboxFilter(), both)) == 10
    assert len(await found(InboxFilter(account_id=second.account_id), both)) == 5
    assert await found(InboxFilter(account_id=second.account_id)) == []  # not one of the user's

    total, rows = await inbox(database, [tenant.account_id], limit=2, offset=2)

    assert total == 5
    assert orders_of(rows) == [[ids["pack"], ids["mate"]], [ids["old"]]]
    waiting = InboxFilter(waiting=True)
    total, rows = await inbox(database, both, waiting, limit=1, offset=1)
    assert (total, len(rows)) == (2, 1)  # a filtered total is counted with the page
    assert await inbox(database, both, waiting, limit=1, offset=5) == (2, [])  # a page past the last
    assert await inbox(database, [tenant.account_id], offset=5) == (5, [])
    async with database.transaction() as connection:
        assert await console_inbox.count_waiting(connection, frozenset(both)) == 2
