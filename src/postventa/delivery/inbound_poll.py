"""Polling Mercado Libre for what notifications missed, within a bounded share of the reads.

The poll follows what no notification tells the seller: a moderation verdict given minutes after a
send, seller messages written outside postventa, and the conversation's status and AI agent. The
missed feeds (notifications Mercado Libre could not deliver) are stored like the webhook's. Run by
the inbound processor (delivery/inbound.py) on a schedule of its own.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable

import structlog
from sqlalchemy.exc import IntegrityError

from postventa.domain.errors import PostventaError
from postventa.domain.inbound import LATE_MODERATION_WINDOW, moderation_change, thread_agent
from postventa.meli.client import MeliClient, MeliError
from postventa.meli.models import MeliMessage
from postventa.services import inbound as inbound_service
from postventa.services.inbound import Recorded
from postventa.services.marketplace import Session, session_for
from postventa.store import inbound as inbound_store
from postventa.store import observed as observed_store
from postventa.store.engine import Database
from postventa.store.messages import ConversationChanged

# A message Mercado Libre will not show this seller (403: not theirs) or no longer has (404:
# deleted): the poll's reading it again will not change that.
GONE_STATUSES = frozenset({403, 404})
# Polling must not starve delivery of Mercado Libre's shared 500 reads a minute: it spends at most
# a fifth of them, on the conversations most recently written to, within Mercado Libre's 30 days.
POLL_READS_PER_SECOND = 500 / 60 * 0.2
POLL_WINDOW = dt.timedelta(days=30)

log = structlog.get_logger("postventa.inbound")


class ConversationPoller:
    """Reads again what moderation has not decided and the conversations that may have changed,
    and stores the missed feeds."""

    def __init__(
        self,
        database: Database,
        meli: MeliClient,
        *,
        poll_interval_seconds: float,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.database = database
        self.meli = meli
        self.poll_interval_seconds = poll_interval_seconds
        self.clock = clock

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
