"""The running emulator: state, journal, faults, rate limiter, notifier and background tasks.

`app.state.emulator` is an `Emulator`; tests and the demo may call its methods directly (create a
seller, an order, a buyer message) instead of going through the control API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from postventa.emulator.config import EmulatorConfig
from postventa.emulator.errors import generic_error
from postventa.emulator.faults import FaultInjector
from postventa.emulator.journal import Journal
from postventa.emulator.messaging import add_buyer_message
from postventa.emulator.models import Message, Order
from postventa.emulator.notifications import Notifier
from postventa.emulator.ratelimit import RateLimiter
from postventa.emulator.sites import utc_now
from postventa.emulator.state import EmulatorState, NewOrder, NewSeller


class Emulator:
    """One emulator instance and everything it runs."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.state = EmulatorState(config)
        self.journal = Journal()
        self.faults = FaultInjector(config.fault_seed)
        self.rate_limiter = RateLimiter()
        self.notifier = Notifier(config, self.journal, self.spawn)
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine in the background, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout_seconds: float = 10.0) -> None:
        """Wait for the background work in flight (notifications, auto replies) to finish."""
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout_seconds)

    async def close(self) -> None:
        """Cancel background work; called when the application shuts down."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.notifier.aclose()

    async def create_seller(
        self, site_id: str, nickname: str | None = None, client_id: str | None = None
    ) -> NewSeller:
        """A seller with its application credentials and a first refresh token."""
        async with self.state.lock:
            return self.state.add_seller(site_id, nickname, client_id)

    async def create_order(self, new: NewOrder) -> Order:
        """An order, notified on `orders_v2`."""
        async with self.state.lock:
            order = self.state.add_order(new)
        self.notify_order(order)
        return order

    def notify_order(self, order: Order) -> None:
        """Tell the seller's application that an order was created or changed."""
        seller = self.state.sellers[order.seller_id]
        self.notifier.notify("orders_v2", f"/orders/{order.id}", seller.id, seller.client_id)

    async def buyer_writes(self, key: int, text: str) -> Message:
        """A buyer message on a conversation (pack id, or order id without pack), notified on `messages`."""
        async with self.state.lock:
            conversation = self.state.find_conversation(key)
            if conversation is None:
                raise generic_error(
                    404,
                    "not_found",
                    f"There is no conversation {key}: use a pack id, or an order id without pack.",
                )
            message = add_buyer_message(self.state, conversation, text)
            seller = self.state.sellers[conversation.seller_id]
        self.notifier.notify("messages", message.id, seller.id, seller.client_id)
        return message

    def after_seller_message(self, message: Message) -> None:
        """Schedule the automatic buyer reply (`AutoBuyerReplySeconds`) to a seller message that
        moderation lets through; a pending one is answered that long after it becomes available."""
        delay = self.config.auto_buyer_reply_seconds
        if delay is None or message.moderation_reason is not None:
            return
        pending = max(0.0, (message.moderated_at - utc_now()).total_seconds())
        self.spawn(self._auto_reply(message.conversation_key, delay + pending))

    async def _auto_reply(self, key: int, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.buyer_writes(key, self.config.auto_buyer_reply_text)
