"""Orders of an account, with the conversation (pack) each belongs to."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.conversation import ConversationStatus
from postventa.domain.orders import DeliveryWindow, LogisticType, OrderFacts, mercadolibre_conversation
from postventa.domain.sites import Site
from postventa.store.prepared import Prepared
from postventa.store.tables import conversations, orders
from postventa.store.upsert import insert_ignoring_conflict


@dataclass(frozen=True)
class Buyer:
    """The buyer as the marketplace names them."""

    code: str | None
    nickname: str | None
    name: str | None


@dataclass(frozen=True)
class OrderData:
    """An order as imported (the fields an integration provides)."""

    external_order_id: str
    pack_id: int | None
    marketplace: str
    site: Site | None
    status: int
    logistic_type: LogisticType | None
    buyer: Buyer
    date_created: dt.datetime
    delivery_window: DeliveryWindow | None
    marketplace_status: str | None = None  # Mercado Libre's own order status, when synced from it
    date_closed: dt.datetime | None = None  # Mercado Libre's `date_closed`: when the sale was closed
    shipping_id: int | None = None  # Mercado Libre's shipment id (`shipping.id`)


@dataclass(frozen=True)
class Order:
    """A stored order."""

    id: int
    account_id: int
    conversation_id: int
    data: OrderData
    updated_at: dt.datetime | None = None  # when postventa last wrote the order (import or sync)

    @property
    def facts(self) -> OrderFacts:
        """What the sending rules look at."""
        return OrderFacts(
            marketplace=self.data.marketplace,
            site=self.data.site,
            status=self.data.status,
            logistic_type=self.data.logistic_type,
            delivery_window=self.data.delivery_window,
            marketplace_status=self.data.marketplace_status,
        )

    @property
    def marketplace_conversation(self) -> int | None:
        """The id Mercado Libre keys the order's conversation by; None if it is not Mercado Libre's."""
        return mercadolibre_conversation(self.facts, self.data.pack_id, self.data.external_order_id)


@dataclass(frozen=True, slots=True)
class OrderToMessage:
    """What a send needs of its order, and all it reads of it (`ORDER_TO_MESSAGE_COLUMNS`): where the
    message goes, and the facts the rules decide on."""

    id: int
    conversation_id: int
    facts: OrderFacts
    marketplace_conversation: int | None  # as `Order.marketplace_conversation`


@dataclass(frozen=True)
class OrderFilter:
    """GET /v2/orders filters; None means no filter."""

    statuses: Sequence[int] | None = None
    date_created_from: dt.datetime | None = None
    id_from: int | None = None
    id_to: int | None = None
    sort_by_date: bool = False


def conversation_key(pack_id: int | None, external_order_id: str) -> str:
    """Orders of one pack share a conversation; an order without a pack has its own."""
    return f"pack:{pack_id}" if pack_id is not None else f"order:{external_order_id}"


async def upsert_order(
    connection: AsyncConnection, account_id: int, data: OrderData, now: dt.datetime
) -> int:
    """Insert or update the order with this ExternalOrderId in the account; returns its id."""
    conversation_id = await _ensure_conversation(
        connection, account_id, conversation_key(data.pack_id, data.external_order_id)
    )
    values = _row_values(data) | {"conversation_id": conversation_id, "updated_at": now}
    existing = (
        await connection.execute(
            select(orders.c.id).where(
                orders.c.account_id == account_id, orders.c.external_order_id == data.external_order_id
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        await connection.execute(update(orders).where(orders.c.id == existing).values(**values))
        return int(existing)
    result = await connection.execute(
        insert(orders)
        .values(account_id=account_id, external_order_id=data.external_order_id, **values)
        .returning(orders.c.id)
    )
    return int(result.scalar_one())


# What `order.updated` watches of a synced order (issue 20): its status, shipment and delivery window.
_WATCHED_COLUMNS = (
    "status",
    "marketplace_status",
    "date_closed",
    "logistic_type",
    "shipping_id",
    "delivery_date",
    "delivery_from_hour",
    "delivery_to_hour",
)


def watched_values(data: OrderData) -> tuple[Any, ...]:
    """What `order.updated` compares of an order as it is about to be written."""
    values = _row_values(data)
    return tuple(values[name] for name in _WATCHED_COLUMNS)


async def stored_watched_values(
    connection: AsyncConnection, account_id: int, external_order_id: str
) -> tuple[Any, ...] | None:
    """What `order.updated` compares of the order as stored; None when it is not stored yet."""
    row = (
        await connection.execute(
            select(*(orders.c[name] for name in _WATCHED_COLUMNS)).where(
                orders.c.account_id == account_id, orders.c.external_order_id == external_order_id
            )
        )
    ).first()
    return tuple(row) if row is not None else None


# The send reads an order on every request: built once, fast on SQLite (store/prepared.py).
_ORDER_OF_ACCOUNT = Prepared(
    select(orders).where(orders.c.id == bindparam("order_id"), orders.c.account_id == bindparam("account_id"))
)


async def get_order(connection: AsyncConnection, account_id: int, order_id: int) -> Order | None:
    """The order if it exists in this account (another account's order is not found)."""
    row = (
        await _ORDER_OF_ACCOUNT.execute(connection, {"order_id": order_id, "account_id": account_id})
    ).first()
    return order_from_row(row) if row else None


async def get_order_any_account(connection: AsyncConnection, order_id: int) -> Order | None:
    """The order whatever its account (for the administrator)."""
    row = (await connection.execute(select(orders).where(orders.c.id == order_id))).first()
    return order_from_row(row) if row else None


async def list_orders(
    connection: AsyncConnection, account_id: int, where: OrderFilter, *, limit: int, offset: int
) -> tuple[int, list[Order]]:
    """One page of the account's orders and the total that match."""
    conditions = [orders.c.account_id == account_id]
    if where.statuses is not None:
        conditions.append(orders.c.status.in_(list(where.statuses)))
    if where.date_created_from is not None:
        conditions.append(orders.c.date_created >= where.date_created_from)
    if where.id_from is not None:
        conditions.append(orders.c.id >= where.id_from)
    if where.id_to is not None:
        conditions.append(orders.c.id <= where.id_to)
    total = (
        await connection.execute(select(func.count()).select_from(orders).where(*conditions))
    ).scalar_one()
    # Ties in date_created (many orders in one second) are broken by id, so offset paging is exact;
    # the (account_id, date_created, id) index serves this order.
    order_by = [orders.c.date_created, orders.c.id] if where.sort_by_date else [orders.c.id]
    rows = await connection.execute(
        select(orders).where(*conditions).order_by(*order_by).limit(limit).offset(offset)
    )
    return int(total), [order_from_row(row) for row in rows]


async def _ensure_conversation(connection: AsyncConnection, account_id: int, key: str) -> int:
    await insert_ignoring_conflict(
        connection,
        conversations,
        {"account_id": account_id, "conversation_key": key, "message_count": 0},
        ["account_id", "conversation_key"],
    )
    result = await connection.execute(
        select(conversations.c.id).where(
            conversations.c.account_id == account_id, conversations.c.conversation_key == key
        )
    )
    return int(result.scalar_one())


def _row_values(data: OrderData) -> dict[str, Any]:
    window = data.delivery_window
    return {
        "pack_id": data.pack_id,
        "marketplace": data.marketplace,
        "site_id": data.site.value if data.site else None,
        "status": data.status,
        "logistic_type": int(data.logistic_type) if data.logistic_type else None,
        "buyer_code": data.buyer.code,
        "buyer_nickname": data.buyer.nickname,
        "buyer_name": data.buyer.name,
        "date_created": data.date_created,
        "delivery_date": window.date if window else None,
        "delivery_from_hour": window.from_hour if window else None,
        "delivery_to_hour": window.to_hour if window else None,
        "marketplace_status": data.marketplace_status,
        "date_closed": data.date_closed,
        "shipping_id": data.shipping_id,
    }


def order_from_row(row: Any) -> Order:
    """An order from a row holding the `orders` table's columns under their own names."""
    return Order(
        id=row.id,
        account_id=row.account_id,
        conversation_id=row.conversation_id,
        data=OrderData(
            external_order_id=row.external_order_id,
            pack_id=row.pack_id,
            marketplace=row.marketplace,
            site=_site(row),
            status=row.status,
            logistic_type=_logistic_type(row),
            buyer=Buyer(row.buyer_code, row.buyer_nickname, row.buyer_name),
            date_created=row.date_created,
            delivery_window=_delivery_window(row),
            marketplace_status=row.marketplace_status,
            date_closed=row.date_closed,
            shipping_id=row.shipping_id,
        ),
        updated_at=row.updated_at,
    )


ORDER_TO_MESSAGE_COLUMNS = (
    orders.c.id,
    orders.c.conversation_id,
    orders.c.external_order_id,
    orders.c.pack_id,
    orders.c.marketplace,
    orders.c.site_id,
    orders.c.status,
    orders.c.logistic_type,
    orders.c.delivery_date,
    orders.c.delivery_from_hour,
    orders.c.delivery_to_hour,
    orders.c.marketplace_status,
)


def order_to_message_from_row(row: Any) -> OrderToMessage:
    """An `OrderToMessage` from a row holding `ORDER_TO_MESSAGE_COLUMNS` under their own names."""
    facts = OrderFacts(
        marketplace=row.marketplace,
        site=_site(row),
        status=row.status,
        logistic_type=_logistic_type(row),
        delivery_window=_delivery_window(row),
        marketplace_status=row.marketplace_status,
    )
    return OrderToMessage(
        id=row.id,
        conversation_id=row.conversation_id,
        facts=facts,
        marketplace_conversation=mercadolibre_conversation(facts, row.pack_id, row.external_order_id),
    )


def _site(row: Any) -> Site | None:
    return Site(row.site_id) if row.site_id else None


def _logistic_type(row: Any) -> LogisticType | None:
    return LogisticType(row.logistic_type) if row.logistic_type is not None else None


def _delivery_window(row: Any) -> DeliveryWindow | None:
    if row.delivery_date is None:
        return None
    return DeliveryWindow(row.delivery_date, row.delivery_from_hour, row.delivery_to_hour)


async def last_conversation_status(
    connection: AsyncConnection, conversation_id: int
) -> ConversationStatus | None:
    """Mercado Libre's status of the conversation as last read, or None if it never was."""
    row = (
        await connection.execute(
            select(
                conversations.c.marketplace_status,
                conversations.c.marketplace_substatus,
                conversations.c.marketplace_status_at,
            ).where(conversations.c.id == conversation_id)
        )
    ).first()
    if row is None or row.marketplace_status is None:
        return None
    return ConversationStatus(row.marketplace_status, row.marketplace_substatus, row.marketplace_status_at)
