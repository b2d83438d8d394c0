"""Messages (both directions), their attachments, and the per-conversation write lock."""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.attachments import Attachment
from postventa.domain.conversation import Direction, PastMessage
from postventa.domain.delivery import MessageStatus
from postventa.domain.reasons import Reason
from postventa.store.orders import ORDER_TO_MESSAGE_COLUMNS, OrderToMessage, order_to_message_from_row
from postventa.store.prepared import Prepared, in_loop_sqlite
from postventa.store.sqlite_driver import write_blob
from postventa.store.tables import attachment_contents, attachments, conversations, messages, orders


@dataclass(frozen=True)
class AttachmentInfo:
    """An attachment's metadata (its bytes are read apart, only on download)."""

    id: int
    name: str
    extension: str
    size: int


@dataclass(frozen=True)
class StoredMessage:
    """A message as the conversation shows it."""

    id: int
    order_id: int
    direction: Direction
    reason: Reason | None
    text: str
    message_ignored: bool
    attachment: AttachmentInfo | None
    status: str
    created_at: dt.datetime
    status_changed_at: dt.datetime
    sent_at: dt.datetime | None
    failed_at: dt.datetime | None
    attempts: int
    marketplace_message_id: str | None
    moderation_reason: str | None
    error_code: str | None
    error_message: str | None
    source: str = "postventa"  # postventa, or marketplace: written on Mercado Libre
    author: str | None = None  # seller, buyer or agent (None: recorded before authors were kept)
    read_at: dt.datetime | None = None  # when its recipient read it on Mercado Libre


@dataclass(frozen=True)
class NewMessage:
    """A message to append to a conversation."""

    account_id: int
    conversation_id: int
    order_id: int
    direction: Direction
    reason: Reason | None
    text: str
    status: str
    message_ignored: bool = False
    attachment_id: int | None = None
    marketplace_message_id: str | None = None


class ConversationChanged(Exception):
    """Another writer appended to the conversation between our read and our write."""


# The send path's statements are built once, and run on SQLite without SQLAlchemy's execution
# machinery (store/prepared.py).
_CONVERSATION_COUNT = select(conversations.c.message_count).where(
    conversations.c.id == bindparam("conversation_id")
)
_COUNT = Prepared(_CONVERSATION_COUNT)
_LOCK_CONVERSATION = Prepared(_CONVERSATION_COUNT.with_for_update())
_HISTORY = Prepared(
    select(messages.c.direction, messages.c.reason, messages.c.attachment_id, messages.c.status)
    .where(messages.c.conversation_id == bindparam("conversation_id"))
    .order_by(messages.c.conversation_sequence)
)
_BUMP_COUNT = Prepared(
    update(conversations)
    .where(
        conversations.c.id == bindparam("conversation_id"), conversations.c.message_count == bindparam("seen")
    )
    .values(message_count=bindparam("count"))
)
_NEW_MESSAGE_COLUMNS = (
    "account_id",
    "conversation_id",
    "conversation_sequence",
    "order_id",
    "direction",
    "reason",
    "text",
    "message_ignored",
    "attachment_id",
    "status",
    "created_at",
    "status_changed_at",
    "next_attempt_at",
    "marketplace_message_id",
)
_INSERT_MESSAGE = Prepared.inserting(
    insert(messages).values(
        {name: bindparam(name, type_=messages.c[name].type) for name in _NEW_MESSAGE_COLUMNS}
    ),
    messages.c.id,
)


_INSERT_ATTACHMENT = Prepared.inserting(
    insert(attachments).values(
        {
            name: bindparam(name, type_=attachments.c[name].type)
            for name in ("account_id", "name", "extension", "size", "sha256", "created_at")
        }
    ),
    attachments.c.id,
)
_INSERT_ZEROED_CONTENT = Prepared(
    insert(attachment_contents).values(
        attachment_id=bindparam("attachment_id"), content=func.zeroblob(bindparam("size"))
    )
)


async def lock_conversation(connection: AsyncConnection, conversation_id: int) -> int:
    """Take the conversation's write lock for this transaction; returns its message count.

    PostgreSQL locks the row; SQLite already holds the database write lock (BEGIN IMMEDIATE).
    """
    query = _LOCK_CONVERSATION if connection.dialect.name == "postgresql" else _COUNT
    return int((await query.execute(connection, {"conversation_id": conversation_id})).scalar_one())


async def conversation_history(connection: AsyncConnection, conversation_id: int) -> list[PastMessage]:
    """What the conversation rules need of every message, oldest first."""
    rows = await _HISTORY.execute(connection, {"conversation_id": conversation_id})
    return [_past(row) for row in rows]


# SQLite: the order, its conversation's count and the conversation's messages in one statement (a
# row per message, or one with NULL message columns). The send's transaction holds the database's
# write lock from its start, so all of it is current. Not on PostgreSQL: a `FOR UPDATE` that waited
# re-reads the locked row but not the joined ones, whose snapshot predates the wait; there the
# history is read after the conversation's lock is taken.
_ORDER_WITH_HISTORY = Prepared(
    select(
        *ORDER_TO_MESSAGE_COLUMNS,
        conversations.c.message_count,
        messages.c.direction.label("message_direction"),
        messages.c.reason.label("message_reason"),
        messages.c.attachment_id.label("message_attachment_id"),
        messages.c.status.label("message_status"),
    )
    .select_from(
        orders.join(conversations, conversations.c.id == orders.c.conversation_id).outerjoin(
            messages, messages.c.conversation_id == conversations.c.id
        )
    )
    .where(orders.c.id == bindparam("order_id"), orders.c.account_id == bindparam("account_id"))
    .order_by(messages.c.conversation_sequence)
)


_ORDER_TO_MESSAGE = Prepared(
    select(*ORDER_TO_MESSAGE_COLUMNS).where(
        orders.c.id == bindparam("order_id"), orders.c.account_id == bindparam("account_id")
    )
)


async def order_with_history(
    connection: AsyncConnection, account_id: int, order_id: int
) -> tuple[OrderToMessage, int, list[PastMessage]] | None:
    """The account's order as a send needs it (None if it has no such order), with its
    conversation's message count and every message, oldest first, read under the conversation's
    write lock (on PostgreSQL the order, then `lock_conversation`, then `conversation_history`)."""
    if connection.dialect.name == "postgresql":
        row = (
            await _ORDER_TO_MESSAGE.execute(connection, {"order_id": order_id, "account_id": account_id})
        ).first()
        if row is None:
            return None
        order = order_to_message_from_row(row)
        count = await lock_conversation(connection, order.conversation_id)
        return order, count, await conversation_history(connection, order.conversation_id)
    rows = (
        await _ORDER_WITH_HISTORY.execute(connection, {"order_id": order_id, "account_id": account_id})
    ).all()
    if not rows:
        return None
    history = [
        PastMessage(
            direction=Direction(row.message_direction),
            reason=Reason(row.message_reason) if row.message_reason is not None else None,
            has_attachment=row.message_attachment_id is not None,
            failed=row.message_status == MessageStatus.FAILED,
        )
        for row in rows
        if row.message_direction is not None
    ]
    return order_to_message_from_row(rows[0]), int(rows[0].message_count), history


def _past(row: Any) -> PastMessage:
    return PastMessage(
        direction=Direction(row.direction),
        reason=Reason(row.reason) if row.reason is not None else None,
        has_attachment=row.attachment_id is not None,
        failed=row.status == MessageStatus.FAILED,
    )


async def insert_attachment(
    connection: AsyncConnection, account_id: int, attachment: Attachment, now: dt.datetime
) -> int:
    """Keep the file's bytes in the database, so one backup holds everything.

    On SQLite the bytes are written into a zero-filled blob of their size, straight into its
    pages: bound as a value, SQLite would hold two more copies of the file while writing it.
    """
    driver = in_loop_sqlite(connection)
    content = attachment.content
    result = await _INSERT_ATTACHMENT.execute(
        connection,
        {
            "account_id": account_id,
            "name": attachment.name,
            "extension": attachment.extension,
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "created_at": now,
        },
    )
    attachment_id = int(result.scalar_one())
    if driver is None:
        await _copy_content(connection, attachment_id, content)
        return attachment_id
    await _INSERT_ZEROED_CONTENT.execute(connection, {"attachment_id": attachment_id, "size": len(content)})
    write_blob(driver, "attachment_contents", "content", attachment_id, content)
    return attachment_id


# PostgreSQL's binary COPY format (https://www.postgresql.org/docs/current/sql-copy.html): a header,
# then each row as its field count and each field as its length and bytes, then -1.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
COPY_CHUNK_BYTES = 1 << 20


async def _copy_content(connection: AsyncConnection, attachment_id: int, content: bytes) -> None:
    """Stream the bytes into `attachment_contents` with COPY, a megabyte at a time.

    Bound as a parameter, the driver would build a second buffer of the whole file (a 25 MiB
    upload held three times over); COPY sends slices of the one copy there is. It runs on the
    transaction's own connection, inside the transaction.
    """
    raw = await connection.get_raw_connection()
    view = memoryview(content)

    async def rows() -> AsyncIterator[bytes | memoryview]:
        yield _COPY_HEADER + struct.pack("!hiqi", 2, 8, attachment_id, len(view))
        for start in range(0, len(view), COPY_CHUNK_BYTES):
            yield view[start : start + COPY_CHUNK_BYTES]
        yield _COPY_TRAILER

    await raw.driver_connection.copy_to_table(  # type: ignore[union-attr]
        attachment_contents.name, source=rows(), columns=["attachment_id", "content"], format="binary"
    )


async def append_message(
    connection: AsyncConnection, message: NewMessage, message_count: int, now: dt.datetime
) -> int:
    """Append to the conversation whose count was read under its lock; returns the message id.

    The count is checked again on write, and (conversation, sequence) is unique, so even a writer
    that skipped the lock cannot add a second message on the same read.
    """
    bumped = await _BUMP_COUNT.execute(
        connection,
        {"conversation_id": message.conversation_id, "seen": message_count, "count": message_count + 1},
    )
    if bumped.rowcount != 1:
        raise ConversationChanged
    result = await _INSERT_MESSAGE.execute(
        connection,
        {
            "account_id": message.account_id,
            "conversation_id": message.conversation_id,
            "conversation_sequence": message_count + 1,
            "order_id": message.order_id,
            "direction": message.direction.value,
            "reason": int(message.reason) if message.reason is not None else None,
            "text": message.text,
            "message_ignored": message.message_ignored,
            "attachment_id": message.attachment_id,
            "status": message.status,
            "created_at": now,
            "status_changed_at": now,
            "next_attempt_at": now if message.status == MessageStatus.QUEUED else None,
            "marketplace_message_id": message.marketplace_message_id,
        },
    )
    return int(result.scalar_one())


_MESSAGE_COLUMNS = (
    messages,
    attachments.c.name.label("attachment_name"),
    attachments.c.extension.label("attachment_extension"),
    attachments.c.size.label("attachment_size"),
)


async def list_conversation(connection: AsyncConnection, conversation_id: int) -> list[StoredMessage]:
    """Every message of the conversation, oldest first."""
    rows = await connection.execute(
        select(*_MESSAGE_COLUMNS)
        .select_from(messages.outerjoin(attachments))
        .where(messages.c.conversation_id == conversation_id)
        .order_by(messages.c.conversation_sequence)
    )
    return [_stored_message(row) for row in rows]


async def get_message(
    connection: AsyncConnection, conversation_id: int, message_id: int
) -> StoredMessage | None:
    """One message of the conversation, or None."""
    row = (
        await connection.execute(
            select(*_MESSAGE_COLUMNS)
            .select_from(messages.outerjoin(attachments))
            .where(messages.c.id == message_id, messages.c.conversation_id == conversation_id)
        )
    ).first()
    return _stored_message(row) if row else None


async def attachment_content(connection: AsyncConnection, attachment_id: int) -> bytes:
    """The bytes of an attachment."""
    result = await connection.execute(
        select(attachment_contents.c.content).where(attachment_contents.c.attachment_id == attachment_id)
    )
    return bytes(result.scalar_one())


def _stored_message(row: Row[Any]) -> StoredMessage:
    attachment = (
        AttachmentInfo(row.attachment_id, row.attachment_name, row.attachment_extension, row.attachment_size)
        if row.attachment_id is not None
        else None
    )
    return StoredMessage(
        id=row.id,
        order_id=row.order_id,
        direction=Direction(row.direction),
        reason=Reason(row.reason) if row.reason is not None else None,
        text=row.text,
        message_ignored=bool(row.message_ignored),
        attachment=attachment,
        status=row.status,
        created_at=row.created_at,
        status_changed_at=row.status_changed_at,
        sent_at=row.sent_at,
        failed_at=row.failed_at,
        attempts=row.attempts,
        marketplace_message_id=row.marketplace_message_id,
        moderation_reason=row.moderation_reason,
        error_code=row.error_code,
        error_message=row.error_message,
        source=row.source,
        author=row.author,
        read_at=row.read_at,
    )
