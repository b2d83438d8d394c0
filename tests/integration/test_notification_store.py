"""The notifications' table on both databases: repeats coalesced while pending, the newest claimed
first, a seller's oldest pending dropped beyond its bound, processed ones pruned, claims handed back."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import select

from postventa.store import inbound as inbound_store
from postventa.store.tables import inbound_notifications

T0 = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
_sellers = itertools.count(7_000_000_000)


async def rows_of(connection, user_id):
    table = inbound_notifications
    result = await connection.execute(select(table).where(table.c.user_id == user_id).order_by(table.c.id))
    return [row._mapping for row in result]


async def test_a_repeat_is_coalesced_while_pending_and_rearms_once_processed(isolated_database):
    seller = next(_sellers)
    async with isolated_database.transaction(write=True) as connection:
        await inbound_store.save_notification(connection, "messages", "abc", seller, T0)
        [claimed] = await inbound_store.claim_notifications(connection, T0, limit=10)
        await inbound_store.finish_notification(
            connection, claimed.id, T0, retry_at=T0 + dt.timedelta(minutes=5), error="busy"
        )
        for minute in range(1, 4):  # repeats while it waits for its retry leave it as it is
            await inbound_store.save_notification(
                connection, "messages", "abc", seller, T0 + dt.timedelta(minutes=minute)
            )
        [row] = await rows_of(connection, seller)
        assert (row["attempts"], row["received_at"], row["last_error"]) == (1, T0, "busy")
        await inbound_store.finish_notification(connection, row["id"], T0, retry_at=None, error=None)
        later = T0 + dt.timedelta(hours=1)
        await inbound_store.save_notification(connection, "messages", "abc", seller, later)
        [row] = await rows_of(connection, seller)
        assert (row["processed_at"], row["attempts"], row["next_attempt_at"]) == (None, 0, later)


async def test_the_newest_are_claimed_first_and_resting_sellers_are_left(isolated_database):
    flooded, other = next(_sellers), next(_sellers)
    async with isolated_database.transaction(write=True) as connection:
        for index in range(30):
            await inbound_store.save_notification(
                connection, "messages", f"r{index}", flooded, T0 + dt.timedelta(seconds=index)
            )
        await inbound_store.save_notification(
            connection, "messages", "real", other, T0 + dt.timedelta(seconds=40)
        )
        now = T0 + dt.timedelta(minutes=1)
        first = await inbound_store.claim_notifications(connection, now, limit=3)
        assert [n.resource for n in first] == ["real", "r29", "r28"]
        skipping = await inbound_store.claim_notifications(connection, now, limit=3, skip_sellers={flooded})
        assert skipping == []
        await inbound_store.release_notifications(connection, [n.id for n in first], now)
        again = await inbound_store.claim_notifications(connection, now, limit=1)
        assert [(n.resource, n.attempts) for n in again] == [("real", 1)]  # the handed-back claim not counted


async def test_beyond_its_bound_a_seller_s_oldest_pending_are_dropped_with_why(isolated_database):
    flooded, calm = next(_sellers), next(_sellers)
    async with isolated_database.transaction(write=True) as connection:
        for index in range(15):
            await inbound_store.save_notification(
                connection, "messages", f"r{index}", flooded, T0 + dt.timedelta(seconds=index)
            )
        for index in range(5):
            await inbound_store.save_notification(connection, "messages", f"c{index}", calm, T0)
        dropped = await inbound_store.drop_pending_over_bound(connection, 10, T0, "dropped: too many")
        assert dropped == 5
        rows = await rows_of(connection, flooded)
        assert [r["resource"] for r in rows if r["processed_at"] is not None] == [f"r{i}" for i in range(5)]
        assert {r["last_error"] for r in rows if r["processed_at"] is not None} == {"dropped: too many"}
        assert all(r["processed_at"] is None for r in await rows_of(connection, calm))


async def test_processed_notifications_past_the_retention_are_deleted(isolated_database):
    seller = next(_sellers)
    async with isolated_database.transaction(write=True) as connection:
        for index, age_days in enumerate((10, 8, 1)):
            at = T0 - dt.timedelta(days=age_days)
            await inbound_store.save_notification(connection, "messages", f"old{index}", seller, at)
        await inbound_store.save_notification(
            connection, "messages", "pending", seller, T0 - dt.timedelta(days=30)
        )
        for row in await rows_of(connection, seller):
            if row["resource"] != "pending":
                await inbound_store.finish_notification(
                    connection, row["id"], row["received_at"], retry_at=None, error=None
                )
        assert await inbound_store.prune_processed(connection, T0 - dt.timedelta(days=7), limit=1) == 1
        assert await inbound_store.prune_processed(connection, T0 - dt.timedelta(days=7), limit=10) == 1
        assert [r["resource"] for r in await rows_of(connection, seller)] == ["old2", "pending"]
