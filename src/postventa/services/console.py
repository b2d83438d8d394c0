"""What the operator console does (issue 19): a user's inbox, a conversation of an order of one of
their accounts (which opening marks read in postventa, never on Mercado Libre), what each reason
would get if sent now, a send, and the failed messages an administrator requeues. The reads, the
options and the send are the API's own (services/reading.py, services/messaging.py); the requeue
is `postventa messages requeue`'s (store/outbox). Everything is refused as not found for an order
of an account the user was not given."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.attachments import Attachment
from postventa.domain.console_users import ADMIN
from postventa.domain.conversation import Direction
from postventa.domain.errors import not_found
from postventa.domain.guide import GuideCaps
from postventa.domain.parameters import Parameters
from postventa.domain.reasons import Reason
from postventa.domain.send_request import read_send_request
from postventa.domain.sending import text_to_send
from postventa.services import reading
from postventa.services.messaging import CapsLookup, find_order, send_message
from postventa.store import console_failed, console_inbox, console_users, outbox
from postventa.store import messages as message_store
from postventa.store.accounts import Account, list_accounts
from postventa.store.console_failed import FailedMessage
from postventa.store.console_inbox import InboxFilter, InboxRow
from postventa.store.messages import AttachmentInfo, StoredMessage
from postventa.store.orders import Order

REQUEUE_BATCH_MESSAGES = 500  # ids per statement: far below SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True)
class InboxPage:
    """One page of a user's inbox, and how many of their conversations wait for an answer."""

    total: int
    limit: int
    offset: int
    rows: list[InboxRow]
    waiting: int
    accounts: list[Account]  # the user's accounts, for the filter and the rows' names


async def inbox(
    connection: AsyncConnection, account_ids: frozenset[int], where: InboxFilter, *, limit: int, offset: int
) -> InboxPage:
    """The conversations of the user's accounts, latest activity first."""
    total, rows = await console_inbox.inbox_page(connection, account_ids, where, limit=limit, offset=offset)
    waiting = await console_inbox.count_waiting(connection, account_ids)
    accounts = await list_accounts(connection, account_ids)
    return InboxPage(total=total, limit=limit, offset=offset, rows=rows, waiting=waiting, accounts=accounts)


async def _account_of(connection: AsyncConnection, account_ids: frozenset[int], order_id: int) -> int:
    account_id = await console_inbox.account_of_order(connection, order_id)
    if account_id is None or account_id not in account_ids:  # another account's order: as if none
        raise not_found("order_not_found", f"Order {order_id} was not found.")
    return account_id


async def open_conversation(
    connection: AsyncConnection, account_ids: frozenset[int], order_id: int, now: dt.datetime
) -> reading.Conversation:
    """The order's conversation, now marked read by the console; 404 unless the order is of one of
    the user's accounts. Runs in a write transaction."""
    account_id = await _account_of(connection, account_ids, order_id)
    found = await reading.conversation(connection, account_id, order_id, now)
    await console_users.mark_read(connection, found.order.conversation_id, now)
    return found


async def attachment(
    connection: AsyncConnection, account_ids: frozenset[int], order_id: int, message_id: int
) -> tuple[AttachmentInfo, bytes]:
    """A message's attachment, when the order is of one of the user's accounts."""
    account_id = await _account_of(connection, account_ids, order_id)
    return await reading.attachment(connection, account_id, order_id, message_id)


async def send_options(
    connection: AsyncConnection,
    account_ids: frozenset[int],
    order_id: int,
    now: dt.datetime,
    caps: GuideCaps | None,
) -> reading.SendOptions:
    """What each reason would get if sent now: the API's `/messages/options` (the same rule)."""
    account_id = await _account_of(connection, account_ids, order_id)
    return await reading.send_options(connection, account_id, order_id, now, caps)


@dataclass(frozen=True)
class ConsoleSend:
    """A message the console's form queued, or the one a repeat of that form had already queued."""

    message_id: int
    repeated: bool


async def send(
    connection: AsyncConnection,
    account_ids: frozenset[int],
    order_id: int,
    parameters: Parameters,
    *,
    seen: int | None,
    max_attachment_bytes: int,
    now: dt.datetime,
    caps: CapsLookup,
) -> ConsoleSend:
    """The API's send (checks 6–10, the message queued) of a form shown when the conversation had
    `seen` messages. A form posted again (a second click, a resubmitted page) stores nothing: the
    message it sent is found among those appended since it was shown. Runs in a write transaction;
    raises `CapsNeeded` as the API's send does, before writing."""
    account_id = await _account_of(connection, account_ids, order_id)
    if seen is not None:
        order = await find_order(connection, account_id, order_id)
        repeated = await _repeated_send(connection, order, parameters, seen, max_attachment_bytes, now)
        if repeated is not None:
            return ConsoleSend(repeated, repeated=True)
    accepted = await send_message(
        connection,
        account_id=account_id,
        order_id=order_id,
        parameters=parameters,
        max_attachment_bytes=max_attachment_bytes,
        now=now,
        caps=caps,
    )
    return ConsoleSend(accepted.message_id, repeated=False)


async def _repeated_send(
    connection: AsyncConnection,
    order: Order,
    parameters: Parameters,
    seen: int,
    max_attachment_bytes: int,
    now: dt.datetime,
) -> int | None:
    """The id of a seller message appended since the form was shown with what this form asks to
    send, and not answered by the buyer since (then this is the same send again), or None."""
    count = await message_store.lock_conversation(connection, order.conversation_id)
    if count <= seen:
        return None
    request = read_send_request(parameters, max_attachment_bytes=max_attachment_bytes)
    try:
        text = text_to_send(order.facts, request.reason, request.free_text, now)
    except ValueError:  # a template the order cannot have: the send refuses it
        return None
    appended = (await message_store.list_conversation(connection, order.conversation_id))[seen:]
    for index, message in enumerate(appended):
        if _same_message(message, request.reason, text, request.attachment) and not any(
            later.direction is Direction.INBOUND for later in appended[index + 1 :]
        ):
            return message.id
    return None


def _same_message(message: StoredMessage, reason: Reason, text: str, attachment: Attachment | None) -> bool:
    if message.direction is not Direction.OUTBOUND or message.source != "postventa":
        return False
    if message.reason is not reason or message.text != text:
        return False
    stored = message.attachment
    if stored is None or attachment is None:
        return stored is None and attachment is None
    return (stored.name, stored.extension, stored.size) == (
        attachment.name,
        attachment.extension,
        len(attachment.content),
    )


@dataclass(frozen=True)
class FailedPage:
    """One page of the failed messages of a user's accounts."""

    total: int
    limit: int
    offset: int
    rows: list[FailedMessage]
    accounts: list[Account]


def may_requeue(role: str) -> bool:
    """Whether a console user of this role sees and requeues failed messages (administrators)."""
    return role == ADMIN


def _admin_only(role: str) -> None:
    if not may_requeue(role):  # an operator is shown no such page, as for another account's order
        raise not_found("page_not_found", "There is no such page.")


async def failed_messages(
    connection: AsyncConnection, role: str, account_ids: frozenset[int], *, limit: int, offset: int
) -> FailedPage:
    """The failed messages of the user's accounts, the latest failure first (administrators only)."""
    _admin_only(role)
    total, rows = await console_failed.failed_page(connection, account_ids, limit=limit, offset=offset)
    accounts = await list_accounts(connection, account_ids)
    return FailedPage(total=total, limit=limit, offset=offset, rows=rows, accounts=accounts)


async def requeue_failed(
    connection: AsyncConnection,
    role: str,
    account_ids: frozenset[int],
    now: dt.datetime,
    message_id: int | None = None,
) -> int:
    """Put the user's failed messages (all, or the one given) back in the delivery queue, as
    `postventa messages requeue` does; returns how many (administrators only)."""
    _admin_only(role)
    ids = await console_failed.failed_message_ids(connection, account_ids, message_id)
    requeued = 0
    for start in range(0, len(ids), REQUEUE_BATCH_MESSAGES):
        requeued += await outbox.requeue(connection, now, ids[start : start + REQUEUE_BATCH_MESSAGES])
    return requeued
