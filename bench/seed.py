"""Test data for the benchmarks, written straight into a migrated database.

Accounts and API keys go through the project's own services (so keys hash as the service checks
them). Orders, their conversations and messages are bulk-inserted into the project's tables
(`postventa.store.tables`): thousands per statement with SQLAlchemy, or millions with PostgreSQL's
COPY (`copy_rows`). Ids are chosen here, after the current maximum, and PostgreSQL's sequences are
moved past them afterwards, so the service's own inserts carry on from there.

Every order is on Mercado Libre Argentina (MLA), ready to ship, cross-docking: reasons 1, 2 and 4
are all allowed on it, so any fresh order accepts any reason of the send mix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bench.common import BENCH_PEPPER
from postventa.services import admin
from postventa.store.engine import Database
from postventa.store.tables import conversations, messages, orders

# A key that the rate limiter never stops during a benchmark.
UNLIMITED_RATE_LIMITS = "send=1000000/minute,read=1000000/minute"
SITE = "MLA"
STATUS_READY_TO_SHIP = 10
CROSS_DOCKING = 8
MARKETPLACE = "MercadoLibre"
INSERT_BATCH_ROWS = 5000
SEEDED_TABLES = (conversations, orders, messages)


@dataclass(frozen=True)
class Tenant:
    """An account and an API key that opens it."""

    account_id: int
    api_key: str


async def create_tenant(
    database: Database, name: str, *, rate_limits: str = UNLIMITED_RATE_LIMITS, pepper: str = BENCH_PEPPER
) -> Tenant:
    """A new account with its own API key (limits high enough never to refuse a benchmark request)."""
    now = dt.datetime.now(dt.UTC)
    async with database.transaction(write=True) as connection:
        account = await admin.create_account(connection, name, now)
        key = await admin.create_api_key(connection, [account.id], pepper, now, rate_limits)
    return Tenant(account.id, key.api_key)


@dataclass
class Rows:
    """Rows to insert, with ids chosen after the tables' current maxima."""

    next_ids: dict[str, int]
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    conversations: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def _take(self, table: str) -> int:
        value = self.next_ids[table]
        self.next_ids[table] = value + 1
        return value

    def order(
        self,
        account_id: int,
        external_order_id: str,
        *,
        pack_id: int | None = None,
        buyer_code: str | None = None,
        date_created: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """An order with a conversation of its own (its pack's, if it has one); returns the order row."""
        conversation = {
            "id": self._take("conversations"),
            "account_id": account_id,
            "conversation_key": f"pack:{pack_id}" if pack_id is not None else f"order:{external_order_id}",
            "message_count": 0,
        }
        order = {
            "id": self._take("orders"),
            "account_id": account_id,
            "conversation_id": conversation["id"],
            "external_order_id": external_order_id,
            "pack_id": pack_id,
            "marketplace": MARKETPLACE,
            "site_id": SITE,
            "status": STATUS_READY_TO_SHIP,
            "logistic_type": CROSS_DOCKING,
            "buyer_code": buyer_code or f"buyer-{external_order_id}",
            "buyer_nickname": f"COMPRADOR{external_order_id}",
            "buyer_name": "Comprador de prueba",
            "date_created": date_created or self.now,
            "delivery_date": None,
            "delivery_from_hour": None,
            "delivery_to_hour": None,
            "updated_at": self.now,
        }
        self.conversations.append(conversation)
        self.orders.append(order)
        order["_conversation"] = conversation
        return order

    def message(
        self,
        order: dict[str, Any],
        *,
        direction: str,
        status: str,
        text: str,
        reason: int | None = None,
        marketplace_message_id: str | None = None,
        at: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """The next message of the order's conversation."""
        conversation = order["_conversation"]
        conversation["message_count"] += 1
        at = at or self.now
        row = {
            "id": self._take("messages"),
            "account_id": order["account_id"],
            "conversation_id": conversation["id"],
            "conversation_sequence": conversation["message_count"],
            "order_id": order["id"],
            "direction": direction,
            "reason": reason,
            "text": text,
            "message_ignored": False,
            "attachment_id": None,
            "status": status,
            "created_at": at,
            "status_changed_at": at,
            "sent_at": at if status in ("sent", "moderated") else None,
            "failed_at": None,
            "attempts": 1 if status in ("sent", "moderated") else 0,
            "next_attempt_at": at if status == "queued" else None,
            "lease_expires_at": None,
            "marketplace_message_id": marketplace_message_id,
            "moderation_reason": None,
            "error_code": None,
            "error_message": None,
            "first_attempt_at": at if status in ("sent", "moderated") else None,
            "needs_reconcile": False,
            "lease_owner": None,
            "route": None,
        }
        self.messages.append(row)
        return row

    def answered(self, order: dict[str, Any], *, serial: int) -> None:
        """A first seller message, delivered, and the buyer's answer: attachments are allowed next."""
        self.message(
            order,
            direction="outbound",
            status="sent",
            reason=4,
            text="Hola, ¿recibiste tu compra en buen estado?",
            marketplace_message_id=f"bench-out-{serial}",
        )
        self.message(
            order,
            direction="inbound",
            status="received",
            text="Sí, gracias. ¿Me mandan la factura?",
            marketplace_message_id=f"bench-in-{serial}",
        )

    def clear(self) -> None:
        """Forget the rows (after they were written)."""
        self.conversations.clear()
        self.orders.clear()
        self.messages.clear()

    def tables(self) -> Iterator[tuple[Table, list[dict[str, Any]]]]:
        """Each table with its rows, parents first, without the builder's private keys."""
        for table, rows in (
            (conversations, self.conversations),
            (orders, self.orders),
            (messages, self.messages),
        ):
            yield (
                table,
                [{key: value for key, value in row.items() if not key.startswith("_")} for row in rows],
            )


async def next_ids(connection: AsyncConnection) -> dict[str, int]:
    """One past the largest id of each seeded table."""
    found = {}
    for table in SEEDED_TABLES:
        largest = (await connection.execute(select(func.max(table.c.id)))).scalar()
        found[table.name] = int(largest or 0) + 1
    return found


def check_columns(table: Table, row: dict[str, Any]) -> None:
    """Fail clearly when the schema gained a column the seeder does not fill and that needs a value."""
    missing = [
        column.name
        for column in table.columns
        if column.name not in row
        and not column.nullable
        and column.server_default is None
        and not column.primary_key
    ]
    unknown = [name for name in row if name not in table.columns]
    if missing or unknown:
        raise RuntimeError(
            f"bench/seed.py is out of date with table {table.name}: missing {missing}, unknown {unknown}"
        )


async def write_rows(connection: AsyncConnection, rows: Rows) -> None:
    """Insert the rows, thousands per statement, and forget them."""
    for table, values in rows.tables():
        if not values:
            continue
        check_columns(table, values[0])
        for start in range(0, len(values), INSERT_BATCH_ROWS):
            await connection.execute(insert(table), values[start : start + INSERT_BATCH_ROWS])
    rows.clear()


async def advance_sequences(connection: AsyncConnection) -> None:
    """PostgreSQL: move each seeded table's id sequence past the ids chosen here (no-op on SQLite)."""
    if connection.dialect.name != "postgresql":
        return
    for table in SEEDED_TABLES:
        await connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
            )
        )


@dataclass(frozen=True)
class OrderPools:
    """Contiguous id ranges of seeded orders: fresh ones, and ones whose first message was answered."""

    fresh_first: int
    fresh_count: int
    answered_first: int
    answered_count: int

    def to_json(self) -> dict[str, dict[str, int]]:
        """The pools in the load generator's spec format."""
        return {
            "fresh": {"first": self.fresh_first, "count": self.fresh_count},
            "answered": {"first": self.answered_first, "count": self.answered_count},
        }


async def seed_send_orders(database: Database, account_id: int, *, fresh: int, answered: int) -> OrderPools:
    """`fresh` orders with empty conversations and `answered` ones ready for an attachment."""
    async with database.transaction(write=True) as connection:
        rows = Rows(await next_ids(connection))
        fresh_first = rows.next_ids["orders"]
        serial = rows.next_ids["messages"]
        for number in range(fresh):
            rows.order(account_id, f"bench-{account_id}-{fresh_first + number}")
            if len(rows.orders) >= INSERT_BATCH_ROWS * 4:
                await write_rows(connection, rows)
        answered_first = rows.next_ids["orders"]
        for number in range(answered):
            order = rows.order(account_id, f"bench-{account_id}-{answered_first + number}")
            rows.answered(order, serial=serial + number)
            if len(rows.orders) >= INSERT_BATCH_ROWS * 4:
                await write_rows(connection, rows)
        await write_rows(connection, rows)
        await advance_sequences(connection)
    return OrderPools(fresh_first, fresh, answered_first, answered)


# --- COPY into PostgreSQL ------------------------------------------------------------------------


def _columns(table: Table, sample: dict[str, Any]) -> list[str]:
    check_columns(table, sample)
    return list(sample)


async def copy_rows(connection: asyncpg.Connection, rows: Rows) -> int:
    """COPY the builder's rows into PostgreSQL (binary), parents first; returns how many; forgets them."""
    written = 0
    for table, values in rows.tables():
        if not values:
            continue
        columns = _columns(table, values[0])
        records: Iterable[tuple[Any, ...]] = (tuple(row[name] for name in columns) for row in values)
        await connection.copy_records_to_table(table.name, records=records, columns=columns)
        written += len(values)
    rows.clear()
    return written
