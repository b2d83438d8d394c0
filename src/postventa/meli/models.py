"""What postventa reads from Mercado Libre's JSON, as plain values (parsing is lenient on case)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TokenGrant:
    """An access token and the refresh token that replaces the one used (they rotate)."""

    access_token: str
    refresh_token: str
    expires_in_seconds: int
    user_id: int | None


@dataclass(frozen=True)
class MeliMessage:
    """A message of a conversation."""

    id: str
    from_user_id: int | None
    to_user_id: int | None
    status: str  # available, moderated, rejected, pending_translation
    text: str
    moderation_status: str | None
    moderation_reason: str | None
    pack_id: int | None  # from message_resources (a pack id, or the order id of an order without pack)
    created_at: dt.datetime | None

    @property
    def is_moderated(self) -> bool:
        """Whether moderation kept it from the buyer."""
        return (
            self.status.lower() in ("moderated", "rejected")
            or (self.moderation_status or "").lower() == "rejected"
        )


@dataclass(frozen=True)
class MeliOrder:
    """An order (the fields postventa imports)."""

    id: int
    pack_id: int | None
    status: str
    site_id: str | None
    seller_id: int | None
    buyer_id: int | None
    buyer_nickname: str | None
    shipment_id: int | None
    date_created: dt.datetime | None


@dataclass(frozen=True)
class MeliShipment:
    """A shipment (x-format-new): its logistic type, status and promised delivery."""

    id: int
    status: str
    logistic_type: str | None
    delivery_date: dt.date | None
    delivery_from_hour: int | None
    delivery_to_hour: int | None


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO timestamp, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_message(data: dict[str, Any]) -> MeliMessage:
    """A message of the action guide, /messages or a conversation read."""
    moderation = _dict(data.get("message_moderation") or data.get("moderation"))
    pack_id = None
    for resource in data.get("message_resources") or []:
        if isinstance(resource, dict) and resource.get("name") in ("packs", "orders"):
            pack_id = _int(resource.get("id"))
    dates = _dict(data.get("message_date"))
    text = data.get("text")
    if isinstance(text, dict):  # the old flat shape: {"plain": "..."}
        text = text.get("plain")
    return MeliMessage(
        id=str(data.get("id") or data.get("message_id") or ""),
        from_user_id=_int(_dict(data.get("from")).get("user_id")),
        to_user_id=_int(_dict(data.get("to")).get("user_id")),
        status=str(data.get("status") or ""),
        text=str(text or ""),
        moderation_status=moderation.get("status"),
        moderation_reason=moderation.get("reason"),
        pack_id=pack_id,
        created_at=parse_time(dates.get("created") or dates.get("received") or data.get("date")),
    )


def parse_order(data: dict[str, Any]) -> MeliOrder:
    """GET /orders/{id}."""
    buyer = _dict(data.get("buyer"))
    return MeliOrder(
        id=_int(data.get("id")) or 0,
        pack_id=_int(data.get("pack_id")),
        status=str(data.get("status") or ""),
        site_id=_dict(data.get("context")).get("site") or data.get("site_id"),
        seller_id=_int(_dict(data.get("seller")).get("id")),
        buyer_id=_int(buyer.get("id")),
        buyer_nickname=buyer.get("nickname"),
        shipment_id=_int(_dict(data.get("shipping")).get("id")),
        date_created=parse_time(data.get("date_created")),
    )


def parse_shipment(data: dict[str, Any]) -> MeliShipment:
    """GET /shipments/{id} with x-format-new."""
    estimated = _dict(_dict(data.get("lead_time")).get("estimated_delivery_time"))
    frame = _dict(estimated.get("time_frame"))
    when = parse_time(estimated.get("date"))
    return MeliShipment(
        id=_int(data.get("id")) or 0,
        status=str(data.get("status") or ""),
        logistic_type=_dict(data.get("logistic")).get("type"),
        delivery_date=when.date() if when else None,
        delivery_from_hour=_hour(frame.get("from"), end=False),
        delivery_to_hour=_hour(frame.get("to"), end=True),
    )


def _hour(value: Any, *, end: bool) -> int | None:
    """A time frame bound: an hour (9) or a local timestamp ("2026-11-28T09:00:00-03:00").

    An end at midnight is the end of the day (24).
    """
    hour = _int(value)
    if hour is not None:
        return hour
    moment = parse_time(value)
    if moment is None:
        return None
    return 24 if end and moment.hour == 0 and moment.minute == 0 else moment.hour
