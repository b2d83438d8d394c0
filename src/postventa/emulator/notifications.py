"""Notifications to the application's callback URL (research §3): `messages` when a buyer writes,
`orders_v2` when an order changes. Sent in the background, retried a few times, journaled as
`NOTIFY` entries (one per attempt)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import httpx2

from postventa.emulator import ids
from postventa.emulator.config import EmulatorConfig
from postventa.emulator.journal import Journal
from postventa.emulator.sites import iso, utc_now

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class Notifier:
    """Posts notifications to `EmulatorConfig.notify_url`, when one is set."""

    def __init__(self, config: EmulatorConfig, journal: Journal, spawn: Spawn) -> None:
        self._config = config
        self._journal = journal
        self._spawn = spawn
        self._client: httpx2.AsyncClient | None = None

    def notify(self, topic: str, resource: str, user_id: int, application_id: str) -> None:
        """Schedule one notification; nothing happens without a callback URL."""
        url = self._config.notify_url
        if not url:
            return
        payload: dict[str, Any] = {
            "_id": ids.notification_id(),
            "resource": resource,
            "user_id": user_id,
            "topic": topic,
            "actions": ["created"] if topic == "messages" else [],
            "application_id": int(application_id),
            "attempts": 0,
            "sent": None,
            "received": iso(utc_now()),
        }
        self._spawn(self._deliver(url, payload))

    async def _deliver(self, url: str, payload: dict[str, Any]) -> None:
        client = self._http()
        for delay in (*self._config.notify_retry_delays_seconds, None):
            if await self._attempt(client, url, payload):
                return
            if delay is not None:
                await asyncio.sleep(delay)

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
