"""Inbound: process Mercado Libre's notifications, and poll for what notifications missed.

The webhook only stores a notification and wakes this processor, so it answers well within
Mercado Libre's 500 ms. Processing is idempotent: a Mercado Libre message is recorded once (unique
Mercado Libre id per account), an order import is an upsert. Polling, within a bounded share of the
reads, follows what no notification tells the seller: a moderation verdict given minutes after a
send, seller messages written outside postventa, and the conversation's status and AI agent. The
missed feeds (notifications Mercado Libre could not deliver) are read on start and then every so often.

Anyone may post a notification naming a linked seller, so a flood of forged ones must not drown the
real ones: the newest due are processed first, each seller's notifications spend at most its own
calls (delivery/seller_calls.py), a seller keeps at most a bounded number pending (the oldest are
dropped), processed ones are deleted after a retention period, and the poll runs on its own
schedule, whatever the queue of notifications holds. On `stop` nothing more is claimed and what was
claimed and not processed is handed back, due at once for the next start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable

import structlog
from sqlalchemy.exc import IntegrityError

from postventa.delivery.seller_calls import SellerCalls
from postventa.domain.errors import PostventaError, RefusalKind
from postventa.domain.inbound import LATE_MODERATION_WINDOW, moderation_change, thread_agent
from postventa.domain.notifications import (
    calls_of,
    dropped_reason,
    notification_retry_at,
    retention_cutoff,
    settled_by_answer,
)
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

# A message Mercado Libre will not show this seller (403: not theirs) or no longer has (404:
# deleted): the poll's reading it again will not change that.
GONE_STATUSES = frozenset({403, 404})
MISSED_FEEDS_INTERVAL_SECONDS = 600.0
BATCH = 20
# How often each seller's pending notifications are held to their bound (a flood between two looks
# grows the table by what the webhook accepts in that time), and processed ones past their
# retention deleted, so many at a time.
TIDY_INTERVAL_SECONDS = 1.0
PRUNE_INTERVAL_SECONDS = 600.0
PRUNE_BATCH = 5000
SECONDS_PER_DAY = 86_400
# The longest the notification loop sleeps without being woken: a seller whose calls ran out is
# looked at again once its window has room, within this.
IDLE_WAIT_SECONDS = 1.0
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
        calls_per_minute: int = 120,
        max_pending_per_seller: int = 1000,
        retention_days: float = 7.0,
    ) -> None:
        self.database = database
        self.meli = meli
        self.poll_interval_seconds = poll_interval_seconds
        self.missed_feeds_interval_seconds = missed_feeds_interval_seconds
        self.clock = clock
        self.max_pending_per_seller = max_pending_per_seller
        self.retention_days = retention_days
        self._wake = asyncio.Event()
        self._seller_calls = SellerCalls(calls_per_minute)
        # Sellers out of notification calls, with when (the loop's clock) their window has room.
        self._resting: dict[int, float] = {}
        self._tidied_at = -math.inf
        self._pruned_at = -math.inf
        # Every PRUNE_INTERVAL_SECONDS, or twice per retention when that is shorter.
        self._prune_interval_seconds = min(PRUNE_INTERVAL_SECONDS, retention_days * SECONDS_PER_DAY / 2)

    def wake(self) -> None:
        """A notification was stored: process it now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Process notifications as they arrive, and, on a schedule of its own, poll on the interval
        and read the missed feeds on start and on theirs, until `stop`."""
        await asyncio.gather(self._notifications(stop), self._polls(stop))

    async def _notifications(self, stop: asyncio.Event) -> None:
        """Notifications as they come (woken by the webhook), until `stop`."""
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.tidy()
                await self.process_due(stop)
            except Exception:
                log.exception("inbound_round_failed")
            await _first_of(self._wake, stop, timeout=self._next_look())

    async def _polls(self, stop: asyncio.Event) -> None:
        """The poll and the missed feeds, each on its interval, however many notifications wait."""
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self.poll_interval_seconds
        next_missed_feeds = loop.time()
        while not stop.is_set():
            try:
                if loop.time() >= next_missed_feeds:
                    next_missed_feeds = loop.time() + self.missed_feeds_interval_seconds
                    await self.read_missed_feeds()
                if loop.time() >= next_poll:
                    next_poll = loop.time() + self.poll_interval_seconds
                    await self.poll_conversations()
            except Exception:
                log.exception("inbound_poll_failed")
            wait = max(0.0, min(next_poll, next_missed_feeds) - loop.time())
            await _first_of(stop, timeout=wait)

    def _next_look(self) -> float:
        """How long the notification loop may sleep: until a resting seller's window has room."""
        now = asyncio.get_running_loop().time()
        soonest = min(self._resting.values(), default=now + IDLE_WAIT_SECONDS)
        return min(IDLE_WAIT_SECONDS, max(0.0, soonest - now))

    async def process_due(self, stop: asyncio.Event | None = None) -> int:
        """Process the due notifications, the newest first, until none is due (or `stop`); returns how
        many were handled. A seller out of calls has its notifications handed back, not attempted."""
        handled = 0
        while stop is None or not stop.is_set():
            async with self.database.transaction(write=True) as connection:
                batch = await inbound_store.claim_notifications(
                    connection, self.clock(), limit=BATCH, skip_sellers=self._resting_sellers()
                )
            if not batch:
                return handled
            handled += await self._process_batch(batch, stop)
        return handled

    async def _process_batch(self, batch: list[Notification], stop: asyncio.Event | None) -> int:
        """Process a claimed batch; what is left (a seller out of calls, `stop`, a cancellation) is
        handed back, due at once."""
        unprocessed = {notification.id for notification in batch}
        handled = 0
        try:
            for notification in batch:
                if stop is not None and stop.is_set():
                    break
                if not await self._may_call(notification):
                    continue
                await self._process(notification)
                unprocessed.discard(notification.id)
                handled += 1
        finally:
            if unprocessed:
                async with self.database.transaction(write=True) as connection:
                    await inbound_store.release_notifications(connection, unprocessed, self.clock())
        return handled

    async def _may_call(self, notification: Notification) -> bool:
        """Whether the notification's seller has the calls it costs; if not, the seller rests until
        its window has room."""
        if notification.user_id in self._resting_sellers():
            return False
        wait = await self._seller_calls.take(notification.user_id, calls_of(notification.topic))
        if wait is None:
            return True
        self._resting[notification.user_id] = asyncio.get_running_loop().time() + wait
        return False

    def _resting_sellers(self) -> set[int]:
        now = asyncio.get_running_loop().time()
        for seller in [seller for seller, until in self._resting.items() if until <= now]:
            del self._resting[seller]
        return set(self._resting)

    async def tidy(self, *, force: bool = False) -> None:
        """Hold each seller's pending notifications to their bound (the oldest dropped, with why) and,
        less often, delete processed ones past their retention."""
        loop = asyncio.get_running_loop()
        if force or loop.time() - self._tidied_at >= TIDY_INTERVAL_SECONDS:
            self._tidied_at = loop.time()
            bound = self.max_pending_per_seller
            async with self.database.transaction(write=True) as connection:
                dropped = await inbound_store.drop_pending_over_bound(
                    connection, bound, self.clock(), dropped_reason(bound)
                )
            if dropped:
                log.warning("notifications_dropped", notifications=dropped, bound=bound)
        if force or loop.time() - self._pruned_at >= self._prune_interval_seconds:
            self._pruned_at = loop.time()
            await self.prune()

    async def prune(self) -> int:
        """Delete the notifications processed longer ago than the retention; returns how many."""
        cutoff = retention_cutoff(self.clock(), self.retention_days)
        pruned = 0
        while True:
            async with self.database.transaction(write=True) as connection:
                deleted = await inbound_store.prune_processed(connection, cutoff, limit=PRUNE_BATCH)
            pruned += deleted
            if deleted < PRUNE_BATCH:
                break
        if pruned:
            log.info("notifications_pruned", notifications=pruned)
        return pruned

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
            done, error = await self._handle(notification)
        except MeliError as failure:  # the seller's session (a token refresh), or an answer to retry
            done, error = False, failure.failure.message
        except PostventaError as refusal:
            # A refusal of ours (an order of another site, a text we cannot keep) stays one; a busy
            # conversation passes.
            done = refusal.refusal.kind is not RefusalKind.CONFLICT
            error = f"{refusal.refusal.code}: {refusal.refusal.message}"
        except Exception as failure:
            log.exception("notification_failed", notification_id=notification.id)
            done, error = False, f"{type(failure).__name__}: {failure}"
        retry_at = None if done else notification_retry_at(notification.attempts, self.clock())
        async with self.database.transaction(write=True) as connection:
            await inbound_store.finish_notification(
                connection, notification.id, self.clock(), retry_at=retry_at, error=error
            )

    async def _handle(self, notification: Notification) -> tuple[bool, str | None]:
        """Process one notification; returns whether it is done, and what went wrong."""
        async with self.database.transaction() as connection:
            account_id = await account_of_seller(connection, notification.user_id)
        if account_id is None:
            return True, None
        session = await session_for(self.database, account_id, self.meli, self.clock())
        if session is None:
            return True, None
        # Nothing in a notification is trusted: it only says what to re-read, with this seller's token.
        resource_id = inbound_service.resource_id(notification.topic, notification.resource)
        if resource_id is None:
            return True, None
        try:
            if notification.topic == "orders_v2":
                await sync_order(self.database, session, self.meli, int(resource_id), self.clock())
                return True, None
            # `created` and `read` alike: the message as it is now carries both its text and read time.
            message = await self.meli.message(
                session.access_token, resource_id, application=session.link.client_id
            )
        except MeliError as failure:
            if settled_by_answer(failure.status):  # not there, not this seller's: asking again won't help
                return True, f"{failure.status}: {failure.failure.message}"
            raise
        async with self.database.transaction(write=True) as connection:
            recorded = await inbound_service.observe_message(
                connection, account_id, session.link.seller_id, message, self.clock()
            )
        reason = recorded.reason
        return reason is None, reason


async def _first_of(*events: asyncio.Event, timeout: float) -> None:
    """Until one of `events` is set, or `timeout` seconds passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


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
