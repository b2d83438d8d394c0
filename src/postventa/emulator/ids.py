"""Identifiers shaped like Mercado Libre's: large, increasing integers, 32-hex message ids, tokens.

Counters start from a base derived from the clock, so ids keep increasing across emulator restarts
and a client's database never mistakes a new order for one it stored from an earlier run.
"""

from __future__ import annotations

import itertools
import secrets
import string
import time
import uuid
from collections.abc import Iterator

_ALPHANUMERIC = string.ascii_letters + string.digits


class IdAllocator:
    """Hands out seller, buyer, order/pack and shipment ids.

    Orders and packs share one counter: a number names exactly one of them, which matters because
    the conversation routes accept either.
    """

    def __init__(self, now_seconds: float | None = None) -> None:
        seconds = int(time.time() if now_seconds is None else now_seconds)
        self._sellers = _counter(1_000_000_000 + (seconds % 100_000) * 10_000)
        self._buyers = _counter(2_200_000_000 + (seconds % 100_000) * 10_000)
        self._orders_and_packs = _counter(2_000_000_000_000_000 + (seconds % 10**9) * 100_000)
        self._shipments = _counter(40_000_000_000 + (seconds % 100_000) * 10_000)

    def seller_id(self) -> int:
        """A new seller (user) id."""
        return next(self._sellers)

    def buyer_id(self) -> int:
        """A new buyer (user) id."""
        return next(self._buyers)

    def order_or_pack_id(self) -> int:
        """A new order or pack id, 16 digits like Mercado Libre's."""
        return next(self._orders_and_packs)

    def shipment_id(self) -> int:
        """A new shipment id."""
        return next(self._shipments)


def _counter(start: int) -> Iterator[int]:
    return itertools.count(start + 1)


def message_id() -> str:
    """A message id: 32 lower-case hex digits."""
    return uuid.uuid4().hex


def client_id() -> str:
    """An application id: a 16-digit numeric string."""
    return str(secrets.randbelow(9 * 10**15) + 10**15)


def client_secret() -> str:
    """An application secret: 32 letters and digits."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(32))


def access_token(app_id: str, seller_id: int) -> str:
    """An access token in Mercado Libre's `APP_USR-<app>-<MMDDHH>-<hex>-<user>` style."""
    stamp = time.strftime("%m%d%H", time.gmtime())
    return f"APP_USR-{app_id}-{stamp}-{secrets.token_hex(16)}-{seller_id}"


def refresh_token(seller_id: int) -> str:
    """A refresh token in Mercado Libre's `TG-<hex>-<user>` style."""
    return f"TG-{secrets.token_hex(12)}-{seller_id}"


def attachment_id(seller_id: int, extension: str) -> str:
    """An attachment id: `<seller>_<uuid>.<ext>`, as the upload answers it."""
    return f"{seller_id}_{uuid.uuid4()}.{extension}"


def notification_id() -> str:
    """The `id` of a notification (a UUID, as Mercado Libre's)."""
    return str(uuid.uuid4())
