"""The emulator's tunable behaviour: callback URL, automatic buyer replies, rate limits, token life.

One mutable dataclass, changed at run time through `PUT /_emulator/config`, so a test or a demo can
turn knobs without restarting the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx2

DEFAULT_AUTO_BUYER_REPLY_TEXT = "¡Gracias! Recibido."
ACCESS_TOKEN_TTL_SECONDS = 21600  # Mercado Libre's access tokens live six hours
REQUESTS_PER_MINUTE = 500  # the documented limit, for reads and for writes, per application
# Sites where OTHER closes once the shipment is delivered (research §1.1: from 20/01/2025; MLB and
# MLA "later", date unknown).
OTHER_CLOSED_ON_DELIVERY_SITES = frozenset({"MEC", "MPE", "MLU", "MCO", "MLM", "MLC"})


@dataclass
class EmulatorConfig:
    """Knobs of one emulator instance.

    `notify_transport` lets a test deliver notifications in-process (an `httpx2.ASGITransport` or
    `httpx2.MockTransport`); `notify_retry_delays_seconds` are the waits between delivery attempts.
    `fault_seed` makes the random choice of faults reproducible.
    """

    notify_url: str | None = None
    auto_buyer_reply_seconds: float | None = None
    auto_buyer_reply_text: str = DEFAULT_AUTO_BUYER_REPLY_TEXT
    reads_per_minute: int = REQUESTS_PER_MINUTE
    writes_per_minute: int = REQUESTS_PER_MINUTE
    access_token_ttl_seconds: float = ACCESS_TOKEN_TTL_SECONDS
    fault_seed: int | None = None
    notify_transport: httpx2.AsyncBaseTransport | None = None
    notify_retry_delays_seconds: tuple[float, ...] = (0.5, 2.0, 5.0)
    notify_timeout_seconds: float = 5.0
    other_closed_on_delivery_sites: frozenset[str] = OTHER_CLOSED_ON_DELIVERY_SITES
    pending_moderation_seconds: float | None = None

    def to_json(self) -> dict[str, object]:
        """The configuration as `PUT /_emulator/config` answers it."""
        return {
            "NotifyUrl": self.notify_url,
            "AutoBuyerReplySeconds": self.auto_buyer_reply_seconds,
            "AutoBuyerReplyText": self.auto_buyer_reply_text,
            "ReadsPerMinute": self.reads_per_minute,
            "WritesPerMinute": self.writes_per_minute,
            "AccessTokenTtlSeconds": self.access_token_ttl_seconds,
            "OtherClosedOnDeliverySites": sorted(self.other_closed_on_delivery_sites),
            "PendingModerationSeconds": self.pending_moderation_seconds,
        }
