"""postventa's side of the delivery benchmark: a linked account, queued messages bulk-inserted into
the outbox, and watching the worker drain them (statuses and times read from the messages)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from sqlalchemy import func, select

from bench.common import Service
from bench.emulator import SITE, TEXT, UNLIMITED_PER_MINUTE, EmulatorOrder, SellerCredentials
from bench.seed import Rows, Tenant, advance_sequences, create_tenant, next_ids, write_rows
from postventa.config import Settings
from postventa.services.marketplace import link_account
from postventa.store.engine import Database
from postventa.store.sealing import TokenCipher
from postventa.store.tables import messages, worker_heartbeats
from postventa.wiring import meli_client

POLL_SECONDS = 0.25


# --- postventa's side ----------------------------------------------------------------------------


async def prepare_account(url: str, token_key: str, emulator_url: str, seller: SellerCredentials) -> Tenant:
    """An account linked to the emulator seller (the credentials checked with the emulator, as in use)."""
    database = Database(url, token_cipher=TokenCipher([token_key]))
    meli = meli_client(Settings(meli_api_url=emulator_url, meli_requests_per_minute=UNLIMITED_PER_MINUTE))
    try:
        tenant = await create_tenant(database, "bench delivery")
        link = {
            "SellerId": seller.seller_id,
            "SiteId": SITE,
            "ClientId": seller.client_id,
            "ClientSecret": seller.client_secret,
            "RefreshToken": seller.refresh_token,
        }
        await link_account(database, tenant.account_id, link, meli, dt.datetime.now(dt.UTC))
    finally:
        await meli.aclose()
        await database.dispose()
    return tenant


async def wait_for_heartbeat(url: str, token_key: str, since: dt.datetime, worker: Service) -> None:
    """Until a worker heartbeat newer than `since` is in the database (the worker is running)."""
    database = Database(url, token_cipher=TokenCipher([token_key]))
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert worker.process is not None
            if worker.process.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{worker.tail()}")
            async with database.transaction() as connection:
                seen = (await connection.execute(select(func.max(worker_heartbeats.c.seen_at)))).scalar()
            if seen is not None and seen >= since:
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the worker did not start:\n{worker.tail()}")
    finally:
        await database.dispose()


async def queue_messages(
    url: str, token_key: str, account_id: int, orders: list[EmulatorOrder]
) -> tuple[int, int, float]:
    """The orders and one queued message each, in one transaction; (first id, last id, commit time)."""
    database = Database(url, token_cipher=TokenCipher([token_key]))
    try:
        async with database.transaction(write=True) as connection:
            rows = Rows(await next_ids(connection))
            first = rows.next_ids["messages"]
            for order in orders:
                row = rows.order(
                    account_id, str(order.order_id), pack_id=order.pack_id, buyer_code=str(order.buyer_id)
                )
                rows.message(row, direction="outbound", status="queued", reason=4, text=TEXT)
            last = rows.next_ids["messages"] - 1
            await write_rows(connection, rows)
            await advance_sequences(connection)
        committed = time.time()
    finally:
        await database.dispose()
    return first, last, committed


async def pending_count(database: Database, first: int, last: int) -> int:
    """How many of the run's messages are queued or sending: the watcher's poll, read from the
    claim's index, so that watching costs the database next to nothing (the whole state, a scan of
    the run's messages, is read once at the end)."""
    async with database.transaction() as connection:
        return int(
            (
                await connection.execute(
                    select(func.count()).where(
                        messages.c.status.in_(("queued", "sending")), messages.c.id.between(first, last)
                    )
                )
            ).scalar_one()
        )


async def drain_state(database: Database, first: int, last: int) -> dict[str, Any]:
    """The statuses of the run's messages, and when the first attempt started and the last one was sent."""
    async with database.transaction() as connection:
        in_range = messages.c.id.between(first, last)
        rows = await connection.execute(
            select(messages.c.status, func.count()).where(in_range).group_by(messages.c.status)
        )
        statuses = {row[0]: int(row[1]) for row in rows}
        times = (
            await connection.execute(
                select(
                    func.min(messages.c.first_attempt_at),
                    func.max(messages.c.sent_at),
                    func.sum(messages.c.attempts),
                ).where(in_range)
            )
        ).one()
        failures = await connection.execute(
            select(messages.c.error_code, func.count())
            .where(in_range, messages.c.error_code.is_not(None))
            .group_by(messages.c.error_code)
        )
        errors = {str(row[0]): int(row[1]) for row in failures}
    first_attempt, last_sent, attempts = times
    return {
        "statuses": statuses,
        "first_attempt_at": _epoch(first_attempt),
        "last_sent_at": _epoch(last_sent),
        "attempts": int(attempts or 0),
        "error_codes": errors,
    }


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return float(value.timestamp())


async def watch_drain(
    url: str, token_key: str, first: int, last: int, timeout: float, worker: Service
) -> dict[str, Any]:
    """Poll the run's messages until none is queued or sending (or the time is up)."""
    database = Database(url, token_cipher=TokenCipher([token_key]))
    deadline = time.monotonic() + timeout
    try:
        while True:
            pending = await pending_count(database, first, last)
            assert worker.process is not None
            if pending == 0 or time.monotonic() > deadline or worker.process.poll() is not None:
                state = await drain_state(database, first, last)
                state["timed_out"] = pending > 0
                return state
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await database.dispose()
