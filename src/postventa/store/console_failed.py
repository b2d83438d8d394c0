"""The console's failed messages (issue 19, item 6): the dead letters of the given accounts, newest
failure first, and the ids of those an administrator asks to requeue. The requeue itself is the
outbox's (`store/outbox.requeue`, the statement `postventa messages requeue` runs)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.delivery import MessageStatus
from postventa.domain.reasons import Reason
from postventa.store.tables import messages, orders


@dataclass(frozen=True)
class FailedMessage:
    """A message that will not be delivered unless requeued, with its order's facts and last error."""

    id: int
    account_id: int
    order_id: int
    external_order_id: str
    site_id: str | None
    buyer_nickname: str | None
    reason: Reason | None
    text: str
    attempts: int
    failed_at: dt.datetime | None
    error_code: str | None
    error_message: str | None


def _failed_of(account_ids: frozenset[int]) -> list[ColumnElement[bool]]:
    return [
        messages.c.account_id.in_(sorted(account_ids)),
        messages.c.direction == "outbound",
        messages.c.status == MessageStatus.FAILED,
    ]


async def failed_page(
    connection: AsyncConnection, account_ids: frozenset[int], *, limit: int, offset: int
) -> tuple[int, list[FailedMessage]]:
    """How many failed messages the accounts have, and one page of them, the latest failure first."""
    if not account_ids:
        return 0, []
    total = (
        await connection.execute(select(func.count()).select_from(messages).where(*_failed_of(account_ids)))
    ).scalar_one()
    rows = await connection.execute(
        select(
            messages.c.id,
            messages.c.account_id,
            messages.c.order_id,
            orders.c.external_order_id,
            orders.c.site_id,
            orders.c.buyer_nickname,
            messages.c.reason,
            messages.c.text,
            messages.c.attempts,
            messages.c.failed_at,
            messages.c.error_code,
            messages.c.error_message,
        )
        .select_from(messages.join(orders, orders.c.id == messages.c.order_id))
        .where(*_failed_of(account_ids))
        .order_by(messages.c.failed_at.desc(), messages.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return int(total), [
        FailedMessage(
            id=row.id,
            account_id=row.account_id,
            order_id=row.order_id,
            external_order_id=row.external_order_id,
            site_id=row.site_id,
            buyer_nickname=row.buyer_nickname,
            reason=Reason(row.reason) if row.reason is not None else None,
            text=row.text,
            attempts=row.attempts,
            failed_at=row.failed_at,
            error_code=row.error_code,
            error_message=row.error_message,
        )
        for row in rows
    ]


async def failed_message_ids(
    connection: AsyncConnection, account_ids: frozenset[int], message_id: int | None = None
) -> list[int]:
    """The ids of the accounts' failed messages (all, or the one given if it is one of them)."""
    if not account_ids:
        return []
    conditions = _failed_of(account_ids)
    if message_id is not None:
        conditions.append(messages.c.id == message_id)
    rows = await connection.execute(select(messages.c.id).where(*conditions).order_by(messages.c.id))
    return [int(value) for value in rows.scalars()]
