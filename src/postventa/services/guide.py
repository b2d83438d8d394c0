"""Mercado Libre's caps of a pack's action guide, asked with a short cache, for the send and /options.

A message that would open a conversation goes through the action guide, and Mercado Libre refuses
an option whose `cap_available` is 0 whatever the local rules say (research §1.2, §1.5). The send
and `/messages/options` therefore ask Mercado Libre (`GET …/caps_available`) before deciding. The
send checks run in a write transaction, where no call to Mercado Libre may wait: they read this
cache only, and when it has no answer they raise `CapsNeeded` before writing anything; the route
asks Mercado Libre outside any transaction (`refresh`) and runs the checks again.

When Mercado Libre cannot be asked (the account is not linked or needs relinking, a timeout, an
error) the answer is remembered as unknown for a short while: the local rules decide, and
`/options` says so.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog

from postventa.domain.delivery import LinkStatus
from postventa.domain.guide import GuideCaps
from postventa.meli.client import MeliClient, MeliError
from postventa.services.marketplace import session_for
from postventa.services.messaging import CapsLookup
from postventa.store import links as link_store
from postventa.store.engine import Database
from postventa.store.orders import get_order

CAPS_TTL_SECONDS = 30.0  # Mercado Libre's caps change when a message goes or the buyer writes
UNKNOWN_TTL_SECONDS = 10.0  # how long "could not ask" stands before asking again
ACCOUNT_TTL_SECONDS = 10.0  # how long "this account is not linked" spares a send the question
ASK_TIMEOUT_SECONDS = 3.0  # a send waits at most this long for Mercado Libre's answer
MAX_ENTRIES = 10_000

log = structlog.get_logger("postventa.guide")


class CapsNeeded(Exception):
    """The send needs Mercado Libre's caps for this order before it can decide (raised before any write)."""

    def __init__(self, account_id: int, order_id: int) -> None:
        super().__init__(f"caps needed for order {order_id} of account {account_id}")
        self.account_id = account_id
        self.order_id = order_id


@dataclass(frozen=True)
class CapsAnswer:
    """What is known of a pack's caps: Mercado Libre's answer, or why the local rules decide alone."""

    caps: GuideCaps | None
    source: str  # "mercadolibre", or "local_rules"
    note: str | None = None  # why Mercado Libre was not asked, when it was not

    def to_json(self) -> dict[str, object]:
        """The `/options` view of it."""
        return {
            "Source": self.source,
            "Excepted": bool(self.caps and self.caps.excepted),
            "Caps": dict(self.caps.caps) if self.caps is not None else None,
            "Note": self.note,
        }


NOT_MERCADOLIBRE = CapsAnswer(None, "local_rules", "The order is not a Mercado Libre order.")


T = TypeVar("T")


class MessagedOrder(Protocol):
    """What the cache needs of an order: `Order`, or the send's `OrderToMessage`."""

    @property
    def id(self) -> int: ...

    @property
    def marketplace_conversation(self) -> int | None: ...


class GuideCapsCache:
    """Caps by (account, conversation resource), and which accounts cannot be asked, for a few seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._answers: dict[tuple[int, int], tuple[CapsAnswer, float]] = {}
        self._unaskable: dict[int, tuple[CapsAnswer, float]] = {}

    def lookup(self, account_id: int, order: MessagedOrder) -> GuideCaps | None:
        """The caps the send decides with (None: the local rules alone); `CapsNeeded` when unknown."""
        answer = self.cached(account_id, order)
        if answer is None:
            raise CapsNeeded(account_id, order.id)
        return answer.caps

    def known(self, account_id: int, order: MessagedOrder) -> GuideCaps | None:
        """The caps if fresh, else None (the local rules decide): a lookup that never asks."""
        answer = self.cached(account_id, order)
        return answer.caps if answer is not None else None

    def cached(self, account_id: int, order: MessagedOrder) -> CapsAnswer | None:
        """The answer still fresh for this order, or None."""
        resource = order.marketplace_conversation
        if resource is None:
            return NOT_MERCADOLIBRE
        now = self._clock()
        for found in (self._unaskable.get(account_id), self._answers.get((account_id, resource))):
            if found is not None and found[1] > now:
                return found[0]
        return None

    async def deciding(
        self,
        database: Database,
        meli: MeliClient,
        clock: Callable[[], dt.datetime],
        decide: Callable[[CapsLookup], Awaitable[T]],
    ) -> T:
        """`decide` with the caps as cached (`lookup`); when they are unknown it raises `CapsNeeded`
        before writing anything, and then Mercado Libre is asked, outside any transaction, and
        `decide` runs again with what is known (`known`: the local rules decide if nothing is)."""
        try:
            return await decide(self.lookup)
        except CapsNeeded as needed:
            await self.refresh(database, meli, needed.account_id, needed.order_id, clock())
        return await decide(self.known)

    async def answer(
        self, database: Database, meli: MeliClient, account_id: int, order_id: int, now: dt.datetime
    ) -> CapsAnswer:
        """The fresh answer for the order if there is one, else Mercado Libre's (`refresh`)."""
        async with database.transaction() as connection:
            order = await get_order(connection, account_id, order_id)
        cached = self.cached(account_id, order) if order is not None else None
        return cached or await self.refresh(database, meli, account_id, order_id, now)

    async def refresh(
        self, database: Database, meli: MeliClient, account_id: int, order_id: int, now: dt.datetime
    ) -> CapsAnswer:
        """Ask Mercado Libre for the order's caps (at most ASK_TIMEOUT_SECONDS) and remember the answer."""
        async with database.transaction() as connection:
            order = await get_order(connection, account_id, order_id)
            link = await link_store.get_link(connection, account_id, database.token_cipher)
        resource = order.marketplace_conversation if order is not None else None
        if resource is None:
            return NOT_MERCADOLIBRE
        if link is None or link.status is not LinkStatus.ACTIVE:
            reason = "not linked" if link is None else "waiting to be linked again"
            answer = CapsAnswer(None, "local_rules", f"The account is {reason} to Mercado Libre.")
            self._remember_account(account_id, answer)
            return answer
        answer = await _ask(database, meli, account_id, resource, now)
        ttl = CAPS_TTL_SECONDS if answer.source == "mercadolibre" else UNKNOWN_TTL_SECONDS
        self._remember(account_id, resource, answer, ttl)
        return answer

    def _remember(self, account_id: int, resource: int, answer: CapsAnswer, ttl: float) -> None:
        if len(self._answers) >= MAX_ENTRIES:
            self._prune()
        self._answers[(account_id, resource)] = (answer, self._clock() + ttl)

    def _remember_account(self, account_id: int, answer: CapsAnswer) -> None:
        if len(self._unaskable) >= MAX_ENTRIES:
            self._unaskable.clear()
        self._unaskable[account_id] = (answer, self._clock() + ACCOUNT_TTL_SECONDS)

    def _prune(self) -> None:
        now = self._clock()
        self._answers = {key: value for key, value in self._answers.items() if value[1] > now}
        if len(self._answers) >= MAX_ENTRIES:
            self._answers.clear()


async def _ask(
    database: Database, meli: MeliClient, account_id: int, resource: int, now: dt.datetime
) -> CapsAnswer:
    try:
        async with asyncio.timeout(ASK_TIMEOUT_SECONDS):
            session = await session_for(database, account_id, meli, now)
            if session is None:
                return CapsAnswer(None, "local_rules", "The account is not linked to Mercado Libre.")
            caps = await meli.caps_available(
                session.access_token, resource, application=session.link.client_id
            )
    except TimeoutError:
        return _unknown(account_id, "Mercado Libre did not answer in time.")
    except MeliError as error:
        if error.failure.code == "excepted_case":
            return CapsAnswer(GuideCaps({}, excepted=True), "mercadolibre")
        return _unknown(account_id, f"Mercado Libre could not be asked: {error.failure.code}.")
    return CapsAnswer(GuideCaps(caps), "mercadolibre")


def _unknown(account_id: int, note: str) -> CapsAnswer:
    log.info("guide_caps_unknown", account_id=account_id, note=note)
    return CapsAnswer(None, "local_rules", note)
