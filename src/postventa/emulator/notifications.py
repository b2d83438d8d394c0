"""Notifications to the application's callback URL, as Mercado Libre sends them (research §3):
`messages` (actions `created` when a message reaches the seller, `read` when the buyer read the
seller's message; resource = the message id) and `orders_v2` when an order changes. Sent in the
background, retried a few times, journaled as `NOTIFY` entries (one per attempt). A notification
whose every attempt failed is kept for `GET /missed_feeds` for two days."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx2

from postventa.emulator import ids
from postventa.emulator.config import EmulatorConfig
from postventa.emulator.journal import Journal
from postventa.emulator.sites import iso, utc_now

Spawn = Callable[[Coroutine[Any, Any, None]], None]
MISSED_FEEDS_KEEP_SECONDS = 2 * 24 * 3600  # Mercado Libre keeps missed notifications two days
MAX_MISSED_FEEDS = 10_000


@dataclass(frozen=True)
class MissedNotification:
    """A notification the callback never accepted, and when the notifier gave up on it."""

    application_id: str
    topic: str
    payload: dict[str, Any]
    given_up_at: float


class MissedFeeds:
    """The notifications kept for `GET /missed_feeds`, oldest first, dropped after two days."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._kept: list[MissedNotification] = []

    def add(self, application_id: str, payload: dict[str, Any]) -> None:
        """Keep a notification whose delivery was given up."""
        self._kept.append(MissedNotification(application_id, payload["topic"], payload, self._clock()))
        if len(self._kept) > MAX_MISSED_FEEDS:
            del self._kept[: len(self._kept) - MAX_MISSED_FEEDS]

    def of_application(self, application_id: str, topic: str | None = None) -> list[dict[str, Any]]:
        """The application's missed notifications still kept (of one topic when given), oldest first."""
        oldest = self._clock() - MISSED_FEEDS_KEEP_SECONDS
        self._kept = [missed for missed in self._kept if missed.given_up_at > oldest]
        return [
            dict(missed.payload)
            for missed in self._kept
            if missed.application_id == application_id and (topic is None or missed.topic == topic)
        ]


class Notifier:
    """Posts notifications to `EmulatorConfig.notify_url`, when one is set."""

    def __init__(self, config: EmulatorConfig, journal: Journal, spawn: Spawn) -> None:
        self._config = config
        self._journal = journal
        self._spawn = spawn
        self._client: httpx2.AsyncClient | None = None
        self.missed = MissedFeeds()

    def notify(
        self,
        topic: str,
        resource: str,
        user_id: int,
        application_id: str,
        actions: list[str] | None = None,
    ) -> None:
        """Schedule one notification; nothing happens without a callback URL.

        `actions` defaults to `["created"]` on `messages` and to none on other topics.
        """
        url = self._config.notify_url
        if not url:
            return
        if actions is None:
            actions = ["created"] if topic == "messages" else []
        payload: dict[str, Any] = {
            "id": ids.notification_id(),
            "resource": resource,
            "user_id": user_id,
            "topic": topic,
            "actions": actions,
            "application_id": int(application_id),
            "attempts": 0,
            "sent": None,
            "received": iso(utc_now()),
        }
        self._spawn(self._deliver(url, payload, application_id))

    async def _deliver(self, url: str, payload: dict[str, Any], application_id: str) -> None:
        client = self._http()
        for delay in (*self._config.notify_retry_delays_seconds, None):
            if await self._attempt(client, url, payload):
                return
            if delay is not None:
                await asyncio.sleep(delay)
        self.missed.add(application_id, payload)

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(
                transport=self._config.notify_transport, timeout=self._config.notify_timeout_seconds
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client (and its connections); called when the emulator shuts down."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _attempt(self, client: httpx2.AsyncClient, url: str, payload: dict[str, Any]) -> bool:
        payload["attempts"] += 1
        payload["sent"] = iso(utc_now())
        entry = self._journal.open("NOTIFY", url, {"topic": payload["topic"]}, dict(payload))
        try:
            response = await client.post(url, json=payload)
        except httpx2.HTTPError:
            entry.finish(None, applied=False)
            return False
        delivered = response.is_success
        entry.finish(response.status_code, applied=delivered)
        return delivered
