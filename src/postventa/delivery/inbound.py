"""Inbound: process Mercado Libre's notifications, and poll for what notifications missed.

The webhook only stores a notification and wakes this processor, so it answers well within
Mercado Libre's 500 ms. Processing is idempotent: a Mercado Libre message is recorded once (unique
Mercado Libre id per account), an order import is an upsert. Polling, within a bounded share of the
reads, follows what no notification tells the seller: a moderation verdict given minutes after a
send, seller messages written outside postventa, and the conversation's status and AI agent. The
missed feeds (notifications Mercado Libre could not deliver) are read on start and then every so often.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Callable

import structlog
from sqlalchemy.exc import IntegrityError

from postventa.domain.errors import PostventaError, RefusalKind
from postventa.domain.inbound import LATE_MODERATION_WINDOW, moderation_change, thread_agent
from postventa.meli.client import MeliClient, MeliError
from postventa.meli.models import MeliMessage
from postventa.services import inbound as inbound_service
from postventa.services.inbound import Recorded
from postventa.services.marketplace import Session, session_for, sync_order
from postventa.store import inbound as inbound_store
from postventa.store import observed as observed_store
from postventa.store.engine import Database
from postventa.store.inbound import Notification
from postventa.store.links import account_of_seller
from postventa.store.messages import ConversationChanged

MAX_NOTIFICATION_ATTEMPTS = 10
# A message Mercado Libre will not show this seller (403: not theirs, a stray or forged notification)
# or no longer has (404: deleted): reading it again will not change that.
GONE_STATUSES = frozenset({403, 404})
MISSED_FEEDS_INTERVAL_SECONDS = 600.0
RETRY_SECONDS = 15.0
BATCH = 20
# Polling must not starve delivery of Mercado Libre's shared 500 reads a minute: it spends at most
# a fifth of them, on the conversations most recently written to, within Mercado Libre's 30 days.
POLL_READS_PER_SECOND = 500 / 60 * 0.2
POLL_WINDOW = dt.timedelta(days=30)

log = structlog.get_logger("postventa.inbound")


class InboundProcessor:
    """Processes stored notifications as they come, and polls conversations every so often."""

    def __init__(
        self,
        database: Database,
        meli: MeliClient,
        *,
        poll_interval_seconds: float = 60.0,
        missed_feeds_interval_seconds: float = MISSED_FEEDS_INTERVAL_SECONDS,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.database = database
        self.meli = meli
        self.poll_interval_seconds = poll_interval_seconds
        self.missed_feeds_interval_seconds = missed_feeds_interval_seconds
        self.clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A notification was stored: process it now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Process notifications as they arrive, poll on the interval and read the missed feeds on
        start and on theirs, until `stop`."""
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self.poll_interval_seconds
        next_missed_feeds = loop.time()
        while not stop.is_set():
            try:
                if loop.time() >= next_missed_feeds:
                    next_missed_feeds = loop.time() + self.missed_feeds_interval_seconds
                    await self.read_missed_feeds()
                await self.process_due()
                if loop.time() >= next_poll:
                    await self.poll_conversations()
                    next_poll = loop.time() + self.poll_interval_seconds
            except Exception:
                log.exception("inbound_round_failed")
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def process_due(self) -> int:
        """Process every notification that is due; returns how many were handled."""
        handled = 0
        while True:
            async with self.database.transaction(write=True) as connection:
                batch = await inbound_store.claim_notifications(connection, self.clock(), limit=BATCH)
            if not batch:
                return handled
            for notification in batch:
                await self._process(notification)
            handled += len(batch)

    async def read_missed_feeds(self) -> int:
        """Store the notifications Mercado Libre could not deliver (GET /missed_feeds, per
        application) like the webhook's; returns how many were kept."""
        async with self.database.transaction() as connection:
            applications = await inbound_store.applications(connection)
        kept = 0
        for client_id, account_id in applications:
            try:
                session = await session_for(self.database, account_id, self.meli, self.clock())
                if session is None:
                    continue
                feed = await self.meli.missed_feeds(session.access_token, client_id)
            except MeliError as error:
                log.warning("missed_feeds_failed", client_id=client_id, error=error.failure.code)
                continue
            async with self.database.transaction(write=True) as connection:
                for payload in feed:
                    if await inbound_service.accept_missed_notification(connection, payload, self.clock()):
                        kept += 1
        if kept:
            log.info("missed_feeds_kept", notifications=kept)
        return kept

    async def poll_conversations(self) -> int:
        """Within the poll's read budget: read again each seller message moderation has not decided,
        then the conversations where moderation may still reject a recent seller message or a reply
        may come, and record what notifications missed. Returns how many messages changed."""
        budget = max(1, int(self.poll_interval_seconds * POLL_READS_PER_SECOND))
        now = self.clock()
        async with self.database.transaction() as connection:
            pending = await observed_store.pending_moderation_messages(connection, limit=max(1, budget // 2))
            recent = await observed_store.conversations_with_recent_seller_messages(
                connection, sent_since=now - LATE_MODERATION_WINDOW, limit=budget
            )
            awaiting = await observed_store.conversations_awaiting_reply(
                connection, sent_since=now - POLL_WINDOW, limit=budget
            )
        conversations = list(dict.fromkeys(recent + awaiting))[: max(0, budget - len(pending))]
        work: dict[int, tuple[list[str], list[int]]] = defaultdict(lambda: ([], []))
        for account_id, marketplace_id in pending:
            work[account_id][0].append(marketplace_id)
        for account_id, resource in conversations:
            work[account_id][1].append(resource)
        changed = 0
        for account_id, (message_ids, resources) in work.items():
            try:
                session = await session_for(self.database, account_id, self.meli, self.clock())
                if session is None:
                    continue
                for message_id in message_ids:
                    changed += await self._reread_message(session, message_id)
                for resource in resources:
                    changed += await self._record_conversation(session, resource)
            except MeliError as error:
                log.warning("poll_failed", account_id=account_id, error=error.failure.code)
        return changed

    async def _reread_message(self, session: Session, message_id: str) -> int:
        """A seller message awaiting moderation, read again by id (gone from Mercado Libre: left)."""
        try:
            message = await self.meli.message(
                session.access_token, message_id, application=session.link.client_id
            )
        except MeliError as error:
            if error.status in GONE_STATUSES:
                return 0
            raise
        return await self._record_messages(session, [message], agent_thread=False)

    async def _record_conversation(self, session: Session, resource: int) -> int:
        """Read a conversation (without marking it read) and record its status, agent and messages."""
        read = await self.meli.conversation_read(
            session.access_token, resource, session.link.seller_id, application=session.link.client_id
        )
        status = read.status
        agent_thread = status is not None and status.is_agent
        async with self.database.transaction(write=True) as connection:
            ref = await observed_store.conversation_ref(connection, session.link.account_id, resource)
            if ref is not None and status is not None:
                agent = None
                if agent_thread:
                    senders = [message.from_user_id for message in read.messages]
                    agent = thread_agent(senders, seller_id=session.link.seller_id, site_id=ref.site_id)
                await observed_store.save_conversation_status(
                    connection,
                    ref.conversation_id,
                    status=status.status,
                    substatus=status.substatus,
                    at=self.clock(),
                    agent_user_id=agent,
                )
        return await self._record_messages(session, read.messages, agent_thread=agent_thread)

    async def _record_messages(
        self, session: Session, messages: list[MeliMessage], *, agent_thread: bool
    ) -> int:
        """Record each message that is new or whose moderation or read time changed, oldest first."""
        account_id, seller_id = session.link.account_id, session.link.seller_id
        async with self.database.transaction() as connection:
            known = await observed_store.known_messages(
                connection, account_id, [message.id for message in messages if message.id]
            )
        changed = 0
        for message in sorted(messages, key=lambda item: item.created_at or self.clock()):
            if not _needs_recording(known.get(message.id), message):
                continue
            try:
                async with self.database.transaction(write=True) as connection:
                    recorded = await inbound_service.observe_message(
                        connection, account_id, seller_id, message, self.clock(), agent_thread=agent_thread
                    )
            except (PostventaError, IntegrityError, ConversationChanged) as error:
                # One message we cannot keep (a text refused, a concurrent append) must not stop the
                # poll of every conversation after it; a notification of it keeps its own retries.
                log.warning(
                    "poll_message_not_recorded",
                    account_id=account_id,
                    message_id=message.id,
                    error=str(error),
                )
                continue
            if recorded is Recorded.DONE:
                changed += 1
            elif recorded is Recorded.IN_FLIGHT:
                log.info("foreign_seller_message_deferred", account_id=account_id, message_id=message.id)
        return changed

    async def _process(self, notification: Notification) -> None:
        error: str | None = None
        done = True
        try:
            error = await self._handle(notification)
            done = error is None
        except MeliError as failure:
            done, error = failure.status in GONE_STATUSES, failure.failure.message
        except PostventaError as refusal:
            # A refusal of ours (an order of another site, a text we cannot keep) stays one; a busy
            # conversation passes.
            done = refusal.refusal.kind is not RefusalKind.CONFLICT
            error = f"{refusal.refusal.code}: {refusal.refusal.message}"
        except Exception as failure:
            log.exception("notification_failed", notification_id=notification.id)
            done, error = False, f"{type(failure).__name__}: {failure}"
        retry_at = None
        if not done and notification.attempts < MAX_NOTIFICATION_ATTEMPTS:
            retry_at = self.clock() + dt.timedelta(seconds=RETRY_SECONDS * notification.attempts)
        async with self.database.transaction(write=True) as connection:
            await inbound_store.finish_notification(
                connection, notification.id, self.clock(), retry_at=retry_at, error=error
            )

    async def _handle(self, notification: Notification) -> str | None:
        """Process one notification; returns why it must be tried again, or None when it is done."""
        async with self.database.transaction() as connection:
            account_id = await account_of_seller(connection, notification.user_id)
        if account_id is None:
            return None
        session = await session_for(self.database, account_id, self.meli, self.clock())
        if session is None:
            return None
        # Nothing in a notification is trusted: it only says what to re-read, with this seller's token.
        resource_id = inbound_service.resource_id(notification.topic, notification.resource)
        if resource_id is None:
            return None
        if notification.topic == "orders_v2":
            await sync_order(self.database, session, self.meli, int(resource_id), self.clock())
            return None
        # `created` and `read` alike: the message as it is now carries both its text and its read time.
        message = await self.meli.message(
            session.access_token, resource_id, application=session.link.client_id
        )
        async with self.database.transaction(write=True) as connection:
            recorded = await inbound_service.observe_message(
                connection, account_id, session.link.seller_id, message, self.clock()
            )
        return recorded.reason


def _needs_recording(known: observed_store.KnownMessage | None, message: MeliMessage) -> bool:
    """Whether a message read from Mercado Libre changes anything recorded (saves a write per
    message already recorded as it is)."""
    if known is None:
        return True
    if message.read_at is not None and known.read_at is None:
        return True
    if known.direction != "outbound":
        return False
    return moderation_change(known.status, inbound_service.moderation_of(message)) is not None
