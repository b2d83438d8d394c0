"""The console benchmark's data: an account with many conversations, as an operator's inbox holds
them, and one order whose conversation is long.

The account, a second account the console user is not given (its rows are in the tables the inbox
reads, as another seller's are in a shared deployment) and the user go through the project's
services; conversations, orders, messages, attachments and how far the console has read each
conversation are bulk-inserted into the project's tables (`bench.seed.Rows`, checked against them).

What the inbox sees, per conversation (seeded at random, repeatably):
- newest activity first, spread over the last `HISTORY_DAYS` days; one in ten a pack of two or
  three orders (one conversation, one inbox row); sites mostly MLA, then MLB, MLM, MLC, MCO, MLU;
- one in twelve without messages yet (a fresh order), the others with one to six messages,
  seller and buyer in turn, starting with either;
- the buyer wrote last in about a third (waiting for an answer); about half of those were not
  opened in the console (unread);
- one in forty has a seller message that failed to be delivered; a few were moderated, a few are
  still queued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select

from bench.seed import INSERT_BATCH_ROWS, Rows, advance_sequences, create_tenant, next_ids, write_rows
from postventa.services import console_users
from postventa.store import tables
from postventa.store.engine import Database
from postventa.store.tables import attachment_contents, attachments, console_conversation_reads

HISTORY_DAYS = 120
PACK_SHARE = 0.10
EMPTY_SHARE = 1 / 12
FAILED_SHARE = 1 / 40
MODERATED_SHARE = 1 / 80
QUEUED_SHARE = 1 / 100
SITES = (("MLA", 50), ("MLB", 25), ("MLM", 10), ("MLC", 6), ("MCO", 5), ("MLU", 4))
FIRST_NAMES = ("MARIA", "JUAN", "ANA", "PEDRO", "LUCIA", "DIEGO", "SOFIA", "PABLO", "CARLA", "JOSE")
LAST_NAMES = ("GOMEZ", "SILVA", "PEREZ", "SOUZA", "LOPEZ", "DIAZ", "ROJAS", "COSTA", "RUIZ", "VEGA")
SELLER_TEXTS = (
    "Hola, ¡gracias por tu compra! Ya estamos preparando tu pedido.",
    "Tu paquete fue despachado hoy. Te llega entre el martes y el jueves.",
    "¿Recibiste tu compra en buen estado? Cualquier consulta escribinos por acá.",
    "Te adjuntamos la factura de tu compra.",
    "Sí, el producto tiene garantía de 12 meses con el fabricante.",
)
BUYER_TEXTS = (
    "Hola, ¿cuándo despachan?",
    "Buenísimo, gracias.",
    "¿Me pueden mandar la factura A a nombre de la empresa? El CUIT está en mis datos de facturación.",
    "Llegó todo bien, muchas gracias por la atención.",
    "El color no es el de la publicación, ¿puedo cambiarlo?",
)
LONG_CONVERSATION_ATTACHMENTS = 4


@dataclass(frozen=True)
class ConsoleSeed:
    """What was seeded, and what the benchmark's requests look for."""

    account_id: int
    user_email: str
    conversations: int
    orders: int
    messages: int
    other_conversations: int
    long_order_id: int
    long_messages: int
    search_nickname: str
    search_order_id: int


def _take_id(rows: Rows, table: str) -> int:
    value = rows.next_ids[table]
    rows.next_ids[table] = value + 1
    return value


class _Builder:
    """Conversations of one account into `rows`, at random but repeatably."""

    def __init__(self, rows: Rows, account_id: int, random_: random.Random, now: dt.datetime) -> None:
        self.rows, self.account_id, self.random, self.now = rows, account_id, random_, now
        self.reads: list[dict[str, Any]] = []
        self.pack_ids = 2_000_000_000_000

    def conversation(self, number: int, total: int, *, plain: bool = False) -> dict[str, Any]:
        """Conversation `number` of `total` (0 the newest): its orders and messages; returns its
        first order. `plain`: one order, and two messages (seller, then buyer) that were read."""
        last_at = self.activity(number, total)
        mates = 1 if plain or self.random.random() >= PACK_SHARE else self.random.choice((2, 2, 3))
        first = self.orders(number, mates, last_at - dt.timedelta(days=2))
        if plain:
            self._messages(first, ["outbound", "inbound"], last_at)
            self.read(first)
            return first
        if self.random.random() < EMPTY_SHARE:
            return first
        count = self.random.randint(1, 6)
        starts_with = "outbound" if self.random.random() < 0.6 else "inbound"
        other = "inbound" if starts_with == "outbound" else "outbound"
        directions = [starts_with if index % 2 == 0 else other for index in range(count)]
        self._messages(first, directions, last_at)
        if self.random.random() < 0.5 or directions[-1] == "outbound":
            self.read(first)  # an answered conversation was opened; half of the waiting ones too
        return first

    def activity(self, number: int, total: int) -> dt.datetime:
        """When conversation `number` of `total` last changed: evenly back over the history."""
        return self.now - dt.timedelta(days=HISTORY_DAYS) * number / total

    def orders(self, number: int, mates: int, created: dt.datetime) -> dict[str, Any]:
        """`mates` orders sharing one conversation (a pack when more than one); returns the first."""
        pack_id = None
        if mates > 1:
            pack_id = self.pack_ids = self.pack_ids + 1
        site = self.random.choices([site for site, _ in SITES], [weight for _, weight in SITES])[0]
        nickname = f"{self.random.choice(FIRST_NAMES)}{self.random.choice(LAST_NAMES)}{number}"
        external = f"20000{self.account_id:04d}{number:08d}"
        first = self.rows.order(self.account_id, external, pack_id=pack_id, date_created=created)
        first.update(site_id=site, buyer_nickname=nickname, buyer_name=nickname.title())
        for mate in range(1, mates):
            self.rows.orders.append(
                {
                    **first,
                    "id": _take_id(self.rows, "orders"),
                    "external_order_id": f"{external}-{mate}",
                    "date_created": created + dt.timedelta(minutes=mate),
                }
            )
        return first

    def _messages(self, order: dict[str, Any], directions: list[str], last_at: dt.datetime) -> None:
        for index, direction in enumerate(directions):
            at = last_at - dt.timedelta(hours=3 * (len(directions) - 1 - index))
            self.message(order, direction, at, index)

    def message(self, order: dict[str, Any], direction: str, at: dt.datetime, index: int) -> dict[str, Any]:
        """One message of the order's conversation: a buyer's, or a seller's in some status."""
        texts = SELLER_TEXTS if direction == "outbound" else BUYER_TEXTS
        text = texts[(index + order["id"]) % len(texts)]
        if direction == "inbound":
            marketplace_id = f"in-{self.rows.next_ids['messages']}"
            row = self.rows.message(
                order,
                direction="inbound",
                status="received",
                text=text,
                at=at,
                marketplace_message_id=marketplace_id,
            )
            row["author"] = "buyer"
            return row
        marketplace_id = f"out-{self.rows.next_ids['messages']}"
        reason = 4 if index == 0 else 3
        row = self.rows.message(
            order,
            direction="outbound",
            status="sent",
            reason=reason,
            text=text,
            at=at,
            marketplace_message_id=marketplace_id,
        )
        row["author"] = "seller"
        draw = self.random.random()
        if draw < FAILED_SHARE:
            row.update(status="failed", marketplace_message_id=None, sent_at=None, failed_at=at, attempts=3)
            row.update(
                error_code="conversation_blocked",
                error_message="Mercado Libre refused the message: the conversation is blocked.",
            )
        elif draw < FAILED_SHARE + MODERATED_SHARE:
            row.update(status="moderated", moderation_reason="out_of_place_language")
        elif draw < FAILED_SHARE + MODERATED_SHARE + QUEUED_SHARE:
            row.update(status="queued", marketplace_message_id=None, sent_at=None, attempts=0)
            row.update(first_attempt_at=None, next_attempt_at=at)
        return row

    def read(self, order: dict[str, Any]) -> None:
        """The console opened the order's conversation after its last message."""
        conversation = order["_conversation"]
        if conversation["message_count"]:
            self.reads.append(
                {
                    "conversation_id": conversation["id"],
                    "read_sequence": conversation["message_count"],
                    "read_at": self.now,
                }
            )

    def long_conversation(self, count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The newest conversation: one order, `count` messages seller and buyer in turn (each text
        ending in "(#n)"), read. Its order and its messages."""
        order = self.orders(0, 1, self.now - dt.timedelta(days=30))
        start = self.now - dt.timedelta(hours=2 * count)
        written = []
        for index in range(count):
            direction = "outbound" if index % 2 == 0 else "inbound"
            row = self.message(order, direction, start + dt.timedelta(hours=2 * index), index)
            row["text"] = f"{row['text']} (#{index + 1})"
            written.append(row)
        self.read(order)
        return order, written


async def _write_attachments(connection: Any, account_id: int, rows: list[dict[str, Any]]) -> None:
    """Files on a few seller messages of the long conversation (ids assigned by the database)."""
    sellers = [row for row in rows if row["direction"] == "outbound"][:: max(1, len(rows) // 8)]
    for number, message in enumerate(sellers[:LONG_CONVERSATION_ATTACHMENTS]):
        content = f"factura {number}\n".encode() * 200
        attachment_id = (
            await connection.execute(
                insert(attachments).returning(attachments.c.id),
                {
                    "account_id": account_id,
                    "name": f"factura-{number}.pdf",
                    "extension": "pdf",
                    "size": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "created_at": message["created_at"],
                },
            )
        ).scalar_one()
        await connection.execute(
            insert(attachment_contents), {"attachment_id": attachment_id, "content": content}
        )
        message["attachment_id"] = attachment_id


async def seed_console(
    database: Database,
    *,
    conversations: int,
    other_conversations: int,
    long_messages: int,
    password: str,
    seed: int = 19,
) -> ConsoleSeed:
    """The benchmark's accounts, its console user (given the first account only) and their data."""
    tenant = await create_tenant(database, "console bench")
    other = await create_tenant(database, "console bench, another seller")
    email = "operator@console-bench.example"
    now = dt.datetime.now(dt.UTC)
    async with database.transaction(write=True) as connection:
        await console_users.create_user(
            connection, email=email, password=password, account_ids=[tenant.account_id], now=now
        )
    random_ = random.Random(seed)
    async with database.transaction(write=True) as connection:
        rows = Rows(await next_ids(connection), now=now)
        builder = _Builder(rows, tenant.account_id, random_, now)
        long_order, long_rows = builder.long_conversation(long_messages)
        await _write_attachments(connection, tenant.account_id, long_rows)
        search = long_order
        for number in range(1, conversations):
            found = builder.conversation(number, conversations)
            if number == conversations * 7 // 10:  # an old conversation, pages away from the first
                search = found
            await _flush(connection, rows, builder, at_least=INSERT_BATCH_ROWS * 4)
        others = _Builder(rows, other.account_id, random_, now)
        for number in range(other_conversations):
            others.conversation(number, other_conversations, plain=True)
            await _flush(connection, rows, others, at_least=INSERT_BATCH_ROWS * 4)
        await _flush(connection, rows, builder)
        await _flush(connection, rows, others)
        await advance_sequences(connection)
        counts = await _counts(connection, tenant.account_id)
    return ConsoleSeed(
        account_id=tenant.account_id,
        user_email=email,
        conversations=counts["conversations"],
        orders=counts["orders"],
        messages=counts["messages"],
        other_conversations=other_conversations,
        long_order_id=long_order["id"],
        long_messages=long_messages,
        search_nickname=search["buyer_nickname"],
        search_order_id=search["id"],
    )


async def _counts(connection: Any, account_id: int) -> dict[str, int]:
    return {
        table.name: int(
            (
                await connection.execute(select(func.count()).where(table.c.account_id == account_id))
            ).scalar_one()
        )
        for table in (tables.conversations, tables.orders, tables.messages)
    }


async def _flush(connection: Any, rows: Rows, builder: _Builder, *, at_least: int = 0) -> None:
    """Write the rows (and then the builder's reads) once there are `at_least` messages."""
    if len(rows.messages) < at_least:
        return
    await write_rows(connection, rows)
    if builder.reads:
        await connection.execute(insert(console_conversation_reads), builder.reads)
        builder.reads.clear()
