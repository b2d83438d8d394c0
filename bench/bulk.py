"""The scale benchmark's bulk load: a million orders and their messages into PostgreSQL with COPY.

Rows are made by Python generators from one template row per table (built by `bench.seed.Rows`,
checked against the project's tables) and streamed by asyncpg's `copy_records_to_table`, one
connection per table at the same time. The per-row foreign-key triggers are off for the load
(`session_replication_role = replica`): the rows reference each other correctly by construction.
Orders are spread over the accounts round-robin and over the past year; each order's conversation
holds its messages in turn seller, buyer, seller... (delivered and received, with Mercado Libre ids).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.seed import Rows, check_columns, create_tenant, next_ids
from postventa.store.engine import Database
from postventa.store.sealing import TokenCipher
from postventa.store.tables import conversations, messages, orders

HISTORY_DAYS = 365
TIMESTAMPS = 4096  # distinct creation times, spread over the history
SELLER_TEXT = "Hola, tu compra ya fue despachada. Cualquier consulta escribinos por acá."
BUYER_TEXT = "Gracias, quedo atento."


def _template(table_rows: list[dict[str, Any]], table: Any) -> tuple[list[str], list[Any], dict[str, int]]:
    """Column names, a template row and each column's position, from one row the builder made."""
    row = {key: value for key, value in table_rows[0].items() if not key.startswith("_")}
    check_columns(table, row)
    columns = list(row)
    return columns, list(row.values()), {name: index for index, name in enumerate(columns)}


@dataclass(frozen=True)
class LoadPlan:
    """Which ids the load uses, and the templates its rows are made from."""

    account_ids: list[int]
    orders: int
    messages: int
    first_ids: dict[str, int]
    templates: dict[str, tuple[list[str], list[Any], dict[str, int]]]
    times: list[dt.datetime]

    def messages_of(self, number: int) -> int:
        """How many messages order `number` (0-based) has: the total spread as evenly as it goes."""
        base, extra = divmod(self.messages, self.orders)
        return base + (1 if number < extra else 0)


def make_plan(
    account_ids: list[int], orders_count: int, messages_count: int, first_ids: dict[str, int]
) -> LoadPlan:
    rows = Rows(dict(first_ids))
    order = rows.order(account_ids[0], "template", buyer_code="1")
    rows.message(
        order, direction="outbound", status="sent", reason=4, text=SELLER_TEXT, marketplace_message_id="x"
    )
    templates = {
        "conversations": _template(rows.conversations, conversations),
        "orders": _template(rows.orders, orders),
        "messages": _template(rows.messages, messages),
    }
    now = dt.datetime.now(dt.UTC)
    span = dt.timedelta(days=HISTORY_DAYS)
    times = [now - span + span * index / TIMESTAMPS for index in range(TIMESTAMPS)]
    return LoadPlan(account_ids, orders_count, messages_count, dict(first_ids), templates, times)


def conversation_records(plan: LoadPlan) -> Iterator[tuple[Any, ...]]:
    _columns, base, at = plan.templates["conversations"]
    first, accounts = plan.first_ids["conversations"], plan.account_ids
    for number in range(plan.orders):
        row = base.copy()
        row[at["id"]] = first + number
        row[at["account_id"]] = accounts[number % len(accounts)]
        row[at["conversation_key"]] = f"order:scale-{first + number}"
        row[at["message_count"]] = plan.messages_of(number)
        yield tuple(row)


def order_records(plan: LoadPlan) -> Iterator[tuple[Any, ...]]:
    _columns, base, at = plan.templates["orders"]
    first, conversation_first, accounts = (
        plan.first_ids["orders"],
        plan.first_ids["conversations"],
        plan.account_ids,
    )
    times = plan.times
    for number in range(plan.orders):
        row = base.copy()
        external = f"scale-{conversation_first + number}"
        row[at["id"]] = first + number
        row[at["account_id"]] = accounts[number % len(accounts)]
        row[at["conversation_id"]] = conversation_first + number
        row[at["external_order_id"]] = external
        row[at["buyer_code"]] = str(5_000_000 + number)
        row[at["buyer_nickname"]] = f"COMPRADOR{number}"
        created = times[number * len(times) // plan.orders]
        row[at["date_created"]] = created
        row[at["updated_at"]] = created
        yield tuple(row)


def message_records(plan: LoadPlan) -> Iterator[tuple[Any, ...]]:
    _columns, base, at = plan.templates["messages"]
    message_id = plan.first_ids["messages"]
    accounts, times = plan.account_ids, plan.times
    seller = base.copy()
    buyer = base.copy()
    buyer[at["direction"]], buyer[at["status"]], buyer[at["reason"]] = "inbound", "received", None
    buyer[at["text"]], buyer[at["attempts"]] = BUYER_TEXT, 0
    buyer[at["sent_at"]] = buyer[at["first_attempt_at"]] = None
    for number in range(plan.orders):
        created = times[number * len(times) // plan.orders]
        for sequence in range(1, plan.messages_of(number) + 1):
            row = (seller if sequence % 2 else buyer).copy()
            row[at["id"]] = message_id
            row[at["account_id"]] = accounts[number % len(accounts)]
            row[at["conversation_id"]] = plan.first_ids["conversations"] + number
            row[at["conversation_sequence"]] = sequence
            row[at["order_id"]] = plan.first_ids["orders"] + number
            row[at["marketplace_message_id"]] = f"scale-{message_id}"
            at_time = created + dt.timedelta(hours=sequence)
            row[at["created_at"]] = row[at["status_changed_at"]] = at_time
            if sequence % 2:
                row[at["sent_at"]] = row[at["first_attempt_at"]] = at_time
            message_id += 1
            yield tuple(row)


async def _copy(url: str, table: str, columns: list[str], records: Iterator[tuple[Any, ...]]) -> None:
    connection = await asyncpg.connect(url.replace("postgresql://", "postgres://", 1))
    try:
        # The rows reference each other correctly by construction: skip the per-row FK triggers.
        await connection.execute("SET session_replication_role = replica")
        await connection.copy_records_to_table(table, records=records, columns=columns)
    finally:
        await connection.close()


async def bulk_load(
    url: str, token_key: str, *, orders_count: int, messages_count: int, accounts: int
) -> dict[str, Any]:
    """Accounts (through the services), then orders, conversations and messages by COPY; ANALYZE."""
    started = time.perf_counter()
    database = Database(url, token_cipher=TokenCipher([token_key]))
    try:
        tenants = [await create_tenant(database, f"scale {number}") for number in range(accounts)]
        async with database.transaction() as connection:
            first_ids = await next_ids(connection)
    finally:
        await database.dispose()
    plan = make_plan([tenant.account_id for tenant in tenants], orders_count, messages_count, first_ids)
    await asyncio.gather(
        _copy(url, "conversations", plan.templates["conversations"][0], conversation_records(plan)),
        _copy(url, "orders", plan.templates["orders"][0], order_records(plan)),
        _copy(url, "messages", plan.templates["messages"][0], message_records(plan)),
    )
    copied = time.perf_counter() - started
    connection = await asyncpg.connect(url)
    try:
        for table in ("conversations", "orders", "messages"):
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        # VACUUM as well as ANALYZE, and a CHECKPOINT: left to autovacuum (3,000,000 rows just
        # inserted) and to PostgreSQL's checkpointer (1.4 GiB of dirty buffers), that work landed
        # in the first rounds of sends and timed the disk, not the database.
        await connection.execute("VACUUM (ANALYZE)")
        await connection.execute("CHECKPOINT")
        counts = {
            table: int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
            for table in ("accounts", "orders", "messages")
        }
        size = int(await connection.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await connection.close()
    return {
        "tenant": tenants[0],
        "rows": counts,
        "database_mib": round(size / 1024 / 1024),
        "copy_seconds": round(copied, 1),
        "load_seconds": round(time.perf_counter() - started, 1),
    }
