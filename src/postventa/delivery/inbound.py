"""Inbound: process Mercado Libre's notifications, and poll for replies a notification missed.

The webhook only stores a notification and wakes this processor, so it answers well within
Mercado Libre's 500 ms. Processing is idempotent: a buyer message is recorded once (unique
Mercado Libre id per account), an order import is an upsert.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Callable

import structlog

from postventa.meli.client import MeliClient, MeliError
from postventa.services import inbound as inbound_service
from postventa.services.marketplace import Session, session_for, sync_order
from postventa.store import inbound as inbound_store
from postventa.store.engine import Database
from postventa.store.inbound import Notification
from postventa.store.links import account_of_seller

MAX_NOTIFICATION_ATTEMPTS = 10
FORBIDDEN_STATUS = 403
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
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.database = database
        self.meli = meli
        self.poll_interval_seconds = poll_interval_seconds
        self.clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A notification was stored: process it now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Process notifications as they arrive and poll on the interval, until `stop`."""
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self.poll_interval_seconds
        while not stop.is_set():
            try:
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

    async def poll_conversations(self) -> int:
        """Read the conversations where a reply may come and record what notifications missed."""
        budget = max(1, int(self.poll_interval_seconds * POLL_READS_PER_SECOND))
        async with self.database.transaction() as connection:
            awaiting = await inbound_store.conversations_awaiting_reply(
                connection, sent_since=self.clock() - POLL_WINDOW, limit=budget
            )
        by_account: dict[int, list[int]] = defaultdict(list)
        for account_id, resource in awaiting:
            by_account[account_id].append(resource)
        recorded = 0
        for account_id, resources in by_account.items():
            try:
                session = await session_for(self.database, account_id, self.meli, self.clock())
                if session is None:
                    continue
                for resource in resources:
                    recorded += await self._record_conversation(session, resource)
            except MeliError as error:
                log.warning("poll_failed", account_id=account_id, error=error.failure.code)
        return recorded

    async def _record_conversation(self, session: Session, resource: int) -> int:
        messages = await self.meli.conversation(session.access_token, resource, session.link.seller_id)
        recorded = 0
        for message in sorted(messages, key=lambda item: item.created_at or self.clock()):
            if message.from_user_id == session.link.seller_id:
                continue
            async with self.database.transaction(write=True) as connection:
                known = await inbound_store.has_marketplace_message(
                    connection, session.link.account_id, message.id
                )
                if not known and await inbound_service.record_marketplace_message(
                    connection, session.link.account_id, session.link.seller_id, message, self.clock()
                ):
                    recorded += 1
        return recorded

    async def _process(self, notification: Notification) -> None:
        error: str | None = None
        done = True
        try:
            done = await self._handle(notification)
            if not done:
                error = "the conversation's order is not known yet"
        except MeliError as failure:
            # 403: the seller may not read the resource (not theirs: a stray or forged notification);
            # reading it again will not change that. Anything else may pass.
            done, error = failure.status == FORBIDDEN_STATUS, failure.failure.message
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

    async def _handle(self, notification: Notification) -> bool:
        async with self.database.transaction() as connection:
            account_id = await account_of_seller(connection, notification.user_id)
        if account_id is None:
            return True
        session = await session_for(self.database, account_id, self.meli, self.clock())
        if session is None:
            return True
        # Nothing in a notification is trusted: it only says what to re-read, with this seller's token.
        resource_id = inbound_service.resource_id(notification.topic, notification.resource)
        if resource_id is None:
            return True
        if notification.topic == "orders_v2":
            await sync_order(self.database, session, self.meli, int(resource_id), self.clock())
            return True
        message = await self.meli.message(session.access_token, resource_id)
        async with self.database.transaction(write=True) as connection:
            return await inbound_service.record_marketplace_message(
                connection, account_id, session.link.seller_id, message, self.clock()
            )
