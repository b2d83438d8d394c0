"""What the API returns, as frozen dataclasses (no validation library: the install stays small).

Each model reads the contract's PascalCase JSON with `from_json`; fields the server adds later are
ignored, so a newer server does not break an older client.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from postventa_sdk.reasons import Reason

Json = Mapping[str, Any]


def parse_time(value: object) -> dt.datetime | None:
    """An ISO 8601 timestamp (`2026-01-31T12:00:00Z`; older servers wrote `…:00.000Z`) as an aware
    datetime; None when absent."""
    if not isinstance(value, str) or not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _reason(value: object) -> Reason | None:
    if isinstance(value, Mapping) and isinstance(value.get("Key"), int):
        try:
            return Reason(value["Key"])
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class KeyValue:
    """One of the contract's `{Key, Value}` pairs (a status, a marketplace, a logistic type)."""

    key: int
    value: str

    @classmethod
    def from_json(cls, data: object) -> KeyValue | None:
        """The pair, or None when the field is null."""
        if not isinstance(data, Mapping):
            return None
        return cls(key=int(data["Key"]), value=str(data["Value"]))


@dataclass(frozen=True)
class AttachmentInfo:
    """A message's file as listed in the conversation (download it with `download_attachment`)."""

    name: str
    extension: str
    size: int
    url: str | None

    @property
    def file_name(self) -> str:
        """`name.extension`, as a download names it."""
        return f"{self.name}.{self.extension}"

    @classmethod
    def from_json(cls, data: object) -> AttachmentInfo | None:
        """The attachment, or None for a message without one."""
        if not isinstance(data, Mapping):
            return None
        return cls(
            name=data["Name"], extension=data["Extension"], size=int(data["Size"]), url=data.get("Url")
        )


@dataclass(frozen=True)
class Message:
    """A message of a conversation: either direction, with its delivery status and timestamps."""

    id: int
    order_id: int
    direction: str  # "outbound" (seller) or "inbound" (buyer)
    reason: Reason | None
    text: str | None
    attachment: AttachmentInfo | None
    # queued, sending, pending_moderation, sent, moderated, failed (outbound); received (inbound)
    status: str
    date_created: dt.datetime | None
    date_status: dt.datetime | None
    date_sent: dt.datetime | None
    date_failed: dt.datetime | None
    attempts: int
    marketplace_message_id: str | None
    moderation_reason: str | None
    error_code: str | None
    error_message: str | None
    source: str = "postventa"  # "marketplace": written outside postventa (seller center, another tool)
    author: str | None = None  # "seller", "buyer", or "agent" (Mercado Libre's assistant for the buyer)
    read_at: dt.datetime | None = None  # when its recipient read it on Mercado Libre

    @classmethod
    def from_json(cls, data: Json) -> Message:
        """A message as `GET …/messages/{messageId}` renders it."""
        return cls(
            id=int(data["Id"]),
            order_id=int(data["OrderId"]),
            direction=data["Direction"],
            reason=_reason(data.get("Reason")),
            text=data.get("Text"),
            attachment=AttachmentInfo.from_json(data.get("Attachment")),
            status=data["Status"],
            date_created=parse_time(data.get("DateCreated")),
            date_status=parse_time(data.get("DateStatus")),
            date_sent=parse_time(data.get("DateSent")),
            date_failed=parse_time(data.get("DateFailed")),
            attempts=int(data.get("Attempts") or 0),
            marketplace_message_id=data.get("MarketplaceMessageId"),
            moderation_reason=data.get("ModerationReason"),
            error_code=data.get("ErrorCode"),
            error_message=data.get("ErrorMessage"),
            source=data.get("Source") or "postventa",
            author=data.get("Author"),
            read_at=parse_time(data.get("ReadAt")),
        )


@dataclass(frozen=True)
class ConversationStatus:
    """Mercado Libre's status of a conversation: `active`, `blocked` (with its substatus), `unknown`."""

    status: str
    substatus: str | None = None
    checked_at: dt.datetime | None = None

    @classmethod
    def from_json(cls, data: object) -> ConversationStatus:
        """The `ConversationStatus` of a conversation read (unknown when absent)."""
        if not isinstance(data, Mapping):
            return cls("unknown")
        return cls(
            str(data.get("Status") or "unknown"), data.get("Substatus"), parse_time(data.get("CheckedAt"))
        )


@dataclass(frozen=True)
class Conversation:
    """An order's conversation (shared by the orders of a pack), oldest message first."""

    order_id: int
    pack_id: int | None
    messages: list[Message]
    status: ConversationStatus = ConversationStatus("unknown")

    @classmethod
    def from_json(cls, data: Json) -> Conversation:
        """`GET /v2/orders/{orderId}/messages`."""
        return cls(
            order_id=int(data["OrderId"]),
            pack_id=data.get("PackId"),
            messages=[Message.from_json(item) for item in data["Results"]],
            status=ConversationStatus.from_json(data.get("ConversationStatus")),
        )


@dataclass(frozen=True)
class SentMessage:
    """The answer to a send: the new message's id, and what the response's headers said."""

    id: int
    order_id: int
    location: str | None
    message_ignored: bool  # a template reason ignored the given text (X-Message-Ignored)
    replayed: bool  # the server replayed the response recorded for this Idempotency-Key
    idempotency_key: str
    request_id: str | None


@dataclass(frozen=True)
class ReasonOption:
    """Whether one reason can be sent now and, if not, the status and code a send would get."""

    reason: Reason
    text_mode: str  # "free_text" or "template"
    char_limit: int | None
    available: bool
    status: int
    code: str | None
    message: str | None
    template: str | None

    @classmethod
    def from_json(cls, data: Json) -> ReasonOption:
        """One item of `GET …/messages/options`."""
        return cls(
            reason=Reason(int(data["Reason"]["Key"])),
            text_mode=data["TextMode"],
            char_limit=data.get("CharLimit"),
            available=bool(data["Available"]),
            status=int(data["Status"]),
            code=data.get("Code"),
            message=data.get("Message"),
            template=data.get("Template"),
        )


@dataclass(frozen=True)
class Buyer:
    """The order's buyer as the marketplace names them."""

    code: str | None
    nickname: str | None
    name: str | None


@dataclass(frozen=True)
class DeliveryWindow:
    """A promised delivery day and hours on the site's calendar."""

    date: dt.date
    from_hour: int
    to_hour: int


@dataclass(frozen=True)
class Order:
    """An order of the account (`GET /v2/orders/{orderId}`), read from Alephee's field names."""

    id: int
    external_order_id: str
    pack_id: int | None
    marketplace: KeyValue | None
    site_id: str | None
    status: KeyValue | None
    status_type: KeyValue | None
    logistic_type: KeyValue | None
    estimated_delivery: DeliveryWindow | None
    buyer: Buyer
    date_created: dt.datetime | None
    date_closed: dt.datetime | None = None
    last_updated: dt.datetime | None = None
    is_cancelled: bool = False
    shipping_id: int | None = None  # Mercado Libre's shipment (`Shipping.ExternalShippingId`)
    estimated_delivery_date: dt.datetime | None = None  # the promised day's start, site's clock

    @classmethod
    def from_json(cls, data: Json) -> Order:
        """One order as the contract renders it (servers before issue 17 too: `Marketplace`, an
        integer `PackId`, a text `Buyer.Code`)."""
        shipping = data.get("Shipping") or {}
        window = shipping.get("EstimatedDelivery")
        buyer = data.get("Buyer") or {}
        code = buyer.get("Code")
        return cls(
            id=int(data["Id"]),
            external_order_id=str(data["ExternalOrderId"]),
            pack_id=_optional_int(data.get("PackId")),
            marketplace=KeyValue.from_json(data.get("MarketPlace") or data.get("Marketplace")),
            site_id=data.get("SiteId"),
            status=KeyValue.from_json(data.get("Status")),
            status_type=KeyValue.from_json(data.get("StatusType")),
            logistic_type=KeyValue.from_json(shipping.get("LogisticType")),
            estimated_delivery=(
                DeliveryWindow(dt.date.fromisoformat(window["Date"]), window["FromHour"], window["ToHour"])
                if isinstance(window, Mapping)
                else None
            ),
            buyer=Buyer(
                code=str(code) if code is not None else None,
                nickname=buyer.get("Nickname"),
                name=buyer.get("Name"),
            ),
            date_created=parse_time(data.get("DateCreated")),
            date_closed=parse_time(data.get("DateClosed")),
            last_updated=parse_time(data.get("LastUpdated")),
            is_cancelled=data.get("IsCancelled") is True,
            shipping_id=_optional_int(shipping.get("ExternalShippingId")),
            estimated_delivery_date=parse_time(shipping.get("EstimatedDeliveryDate")),
        )


def _optional_int(value: object) -> int | None:
    """An id the server writes as a number or as its digits (Alephee's `PackId` is a string)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


@dataclass(frozen=True)
class OrdersPage:
    """One page of `GET /v2/orders`: where it starts, how many there are in all, and its orders."""

    limit: int
    offset: int
    total: int
    orders: list[Order]

    @classmethod
    def from_json(cls, data: Json) -> OrdersPage:
        """The Alephee paging envelope."""
        paging = data["Paging"]
        return cls(
            limit=int(paging["Limit"]),
            offset=int(paging["Offset"]),
            total=int(paging["Total"]),
            orders=[Order.from_json(item) for item in data["Results"]],
        )


@dataclass(frozen=True)
class DownloadedFile:
    """An attachment's bytes, with the name and media type the server gave it."""

    file_name: str
    content_type: str
    content: bytes
