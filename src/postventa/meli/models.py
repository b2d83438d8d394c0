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
    status: str  # available, moderated, rejected, pending_translation (as sent: case varies)
    text: str
    moderation_status: str | None  # lower case: clean, rejected, pending, non_moderated
    moderation_reason: str | None
    pack_id: int | None  # from message_resources (a pack id, or the order id of an order without pack)
    created_at: dt.datetime | None
    read_at: dt.datetime | None = None  # when the recipient read it (message_date.read, date_read)
    client_id: str | None = None  # the application that wrote it, when Mercado Libre says

    @property
    def is_moderated(self) -> bool:
        """Whether moderation kept it from the buyer."""
        return self.status.lower() in ("moderated", "rejected") or self.moderation_status == "rejected"

    @property
    def is_pending_moderation(self) -> bool:
        """Whether moderation has not decided yet (and has not rejected it): it may still be rejected
        minutes later."""
        if self.is_moderated:
            return False
        return self.moderation_status == "pending" or self.status.lower() in ("pending", "in_moderation")


@dataclass(frozen=True)
class ConversationStatus:
    """A conversation's `conversation_status`: whether the seller may write, and with whom.

    `path` is `/packs/{pack}/sellers/{seller}`, or `.../conversations/{type}` in a thread with one of
    Mercado Libre's messaging agents answering for the buyer (research §2.8).
    """

    status: str | None  # active, blocked
    substatus: str | None  # blocked_by_time, blocked_by_buyer, ... (lower case)
    path: str | None
    conversation_type: str | None  # the `{type}` of a `/conversations/{type}` path (e.g. agent)

    @property
    def is_blocked(self) -> bool:
        """Whether Mercado Libre says the conversation is blocked."""
        return self.status == "blocked"

    @property
    def is_agent(self) -> bool:
        """Whether the buyer's side is one of Mercado Libre's messaging agents."""
        return self.conversation_type == "agent"


@dataclass(frozen=True)
class MeliConversation:
    """Every message of a conversation (oldest as Mercado Libre orders them) and its status."""

    messages: list[MeliMessage]
    status: ConversationStatus


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
    date_closed: dt.datetime | None = None  # when the sale was closed (paid); null until then


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


def _lower(value: Any) -> str | None:
    """A word as lower case (Mercado Libre writes IN_MODERATION and in_moderation), or None."""
    if not isinstance(value, str):
        return None
    return value.strip().lower() or None


def parse_message(data: dict[str, Any]) -> MeliMessage:
    """A message of the action guide, a conversation read or `GET /messages/{id}` in either shape:
    the current one (`id`, `message_date`, `message_moderation`, `message_resources`) or the old flat
    one (`message_id`, `date_*`, `text.plain`, `moderation`, `resource`/`resource_id`)."""
    moderation = _dict(data.get("message_moderation") or data.get("moderation"))
    dates = _dict(data.get("message_date"))
    text = data.get("text")
    if isinstance(text, dict):  # the old flat shape: {"plain": "..."}
        text = text.get("plain")
    client_id = data.get("client_id")
    return MeliMessage(
        id=str(data.get("id") or data.get("message_id") or ""),
        from_user_id=_int(_dict(data.get("from")).get("user_id")),
        to_user_id=_int(_dict(data.get("to")).get("user_id")),
        status=str(data.get("status") or ""),
        text=str(text or ""),
        moderation_status=_lower(moderation.get("status")),
        moderation_reason=moderation.get("reason"),
        pack_id=_pack_id(data),
        created_at=parse_time(
            dates.get("created") or dates.get("received") or data.get("date_received") or data.get("date")
        ),
        read_at=parse_time(dates.get("read") or data.get("date_read")),
        client_id=str(client_id) if client_id not in (None, "") else None,
    )


def _pack_id(data: dict[str, Any]) -> int | None:
    """The pack (or order) a message belongs to: `message_resources`, or the flat `resource_id`."""
    for resource in data.get("message_resources") or []:
        if isinstance(resource, dict) and resource.get("name") in ("packs", "orders"):
            return _int(resource.get("id"))
    if data.get("resource") in ("packs", "orders"):
        return _int(data.get("resource_id"))
    return None


def parse_conversation_status(data: Any) -> ConversationStatus:
    """`conversation_status` of a conversation read (missing or null: nothing known)."""
    status = _dict(data)
    path = status.get("path") if isinstance(status.get("path"), str) else None
    return ConversationStatus(
        status=_lower(status.get("status")),
        substatus=_lower(status.get("substatus")),
        path=path,
        conversation_type=_conversation_type(path),
    )


def _conversation_type(path: str | None) -> str | None:
    """`agent` of `/packs/1/sellers/2/conversations/agent`; None for a plain conversation path."""
    if not path:
        return None
    segments = [segment for segment in path.split("/") if segment]
    if len(segments) >= 2 and segments[-2].lower() == "conversations":
        return segments[-1].lower()
    return None


def parse_caps(data: Any) -> dict[str, int]:
    """`caps_available`: a bare array of `{option_id, cap_available}` (or one wrapped in an object's
    `items`/`caps`), as option id → messages still allowed. Entries without an id are skipped."""
    if isinstance(data, dict):
        data = data.get("items") or data.get("caps") or []
    caps: dict[str, int] = {}
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, dict) or not entry.get("option_id"):
            continue
        cap = _int(entry.get("cap_available"))
        caps[str(entry["option_id"]).upper()] = cap if cap is not None and cap > 0 else 0
    return caps


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
        date_closed=parse_time(data.get("date_closed")),
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
