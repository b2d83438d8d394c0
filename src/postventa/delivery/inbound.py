"""Inbound: process Mercado Libre's notifications, and poll for what notifications missed.

The webhook only stores a notification and wakes this processor, so it answers well within
Mercado Libre's 500 ms. Processing is idempotent: a Mercado Libre message is recorded once (unique
Mercado Libre id per account), an order import is an upsert. Polling (delivery/inbound_poll.py),
within a bounded share of the reads, follows what no notification tells the seller: a moderation
verdict given minutes after a send, seller messages written outside postventa, and the
conversation's status and AI agent. The missed feeds (notifications Mercado Libre could not deliver)
are read on start and then every so often.

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
from collections.abc import Callable

import structlog

from postventa.delivery.inbound_poll import ConversationPoller
from postventa.delivery.seller_calls import SellerCalls
from postventa.domain.errors import PostventaError, RefusalKind
from postventa.domain.notifications import (
    calls_of,
    dropped_reason,
    notification_retry_at,
    retention_cutoff,
    settled_by_answer,
)
from postventa.meli.client import MeliClient, MeliError
from postventa.services import inbound as inbound_service
from postventa.services.marketplace import session_for, sync_order
from postventa.store import inbound as inbound_store
from postventa.store.engine import Database
from postventa.store.inbound import Notification
from postventa.store.links import account_of_seller

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
        self._poller = ConversationPoller(
            database, meli, poll_interval_seconds=poll_interval_seconds, clock=clock
        )
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
        """Store the notifications Mercado Libre could not deliver; returns how many were kept
        (`ConversationPoller.read_missed_feeds`)."""
        return await self._poller.read_missed_feeds()

    async def poll_conversations(self) -> int:
        """Record what notifications missed; returns how many messages changed
        (`ConversationPoller.poll_conversations`)."""
        return await self._poller.poll_conversations()

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
