"""Messages and orders as the API renders them (Alephee's JSON: PascalCase, {Key, Value} pairs).

Here rather than in `api/` because the webhooks (issue 20) send the same JSON: a message event's
`data` is the message as `GET /v2/orders/{orderId}/messages/{messageId}` renders it, an order
event's the order as `GET /v2/orders/{orderId}` does, and the events are rendered below the API
(services/webhook_bodies.py). `api/render.py` and `api/render_orders.py` re-export them.

An order shows what postventa holds; a field of an object it shows but cannot fill
(`MarketPlace.Channel`, `SellerAccount.OwnCode`, `Buyer.Owncode`) is null; whole parts it never
holds (`Items`, `Payments`, `Billing`, …) are absent. `docs/decisions.md` ("Alephee's order shape")
maps every field to its source.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from postventa.domain.inbound import shown_author, shown_source
from postventa.domain.orders import (
    MERCADOLIBRE,
    ORDER_STATUS_LABELS,
    DeliveryWindow,
    StatusType,
    status_type_of,
)
from postventa.domain.sites import Site
from postventa.store.accounts import Account
from postventa.store.messages import StoredMessage
from postventa.store.orders import Order

MARKETPLACE_KEYS = {MERCADOLIBRE: 1}


def timestamp(value: dt.datetime | None) -> str | None:
    """`YYYY-MM-DDTHH:MM:SSZ`: UTC, whole seconds (the fraction dropped, never rounded up), a Z.

    As Alephee writes them, and as clients written against it parse them (`%Y-%m-%dT%H:%M:%SZ`);
    one fixed width, so comparing the strings compares the times. Every read of the API uses it.
    """
    if value is None:
        return None
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def message_json(message: StoredMessage, order_id: int) -> dict[str, Any]:
    """A message of a conversation, with its delivery status and timestamps."""
    attachment = message.attachment
    return {
        "Id": message.id,
        "OrderId": message.order_id,
        "Direction": message.direction.value,
        "Reason": {"Key": int(message.reason), "Value": message.reason.name} if message.reason else None,
        "Text": message.text,
        "Attachment": (
            {
                "Name": attachment.name,
                "Extension": attachment.extension,
                "Size": attachment.size,
                "Url": f"/v2/orders/{order_id}/messages/{message.id}/attachment",
            }
            if attachment
            else None
        ),
        "Status": message.status,
        "DateCreated": timestamp(message.created_at),
        "DateStatus": timestamp(message.status_changed_at),
        "DateSent": timestamp(message.sent_at),
        "DateFailed": timestamp(message.failed_at),
        "Attempts": message.attempts,
        "MarketplaceMessageId": message.marketplace_message_id,
        "ModerationReason": message.moderation_reason,
        "ErrorCode": message.error_code,
        "ErrorMessage": message.error_message,
        "Source": shown_source(message.direction.value, message.source).value,
        "Author": shown_author(message.direction.value, message.author).value,
        "ReadAt": timestamp(message.read_at),
    }


def order_json(order: Order, seller: Account) -> dict[str, Any]:
    """An order of `GET /v2/orders` and `GET /v2/orders/{orderId}`."""
    data = order.data
    status_type = status_type_of(data.status)
    key = MARKETPLACE_KEYS.get(data.marketplace, 0)
    marketplace = {"Key": key, "Value": data.marketplace, "Channel": None}
    return {
        "Id": order.id,
        "ExternalOrderId": data.external_order_id,
        "PackId": str(data.pack_id) if data.pack_id is not None else None,
        "SellerAccount": {
            "Id": seller.id,
            "OwnCode": None,
            "Name": seller.name,
            "BusinessName": seller.business_name,
        },
        "MarketPlace": marketplace,  # the spelling of Alephee's responses and of the tap
        "Marketplace": marketplace,  # the spelling of Alephee's documentation, and of our SDK before 17
        "SiteId": data.site.value if data.site else None,
        "Status": {"Key": data.status, "Value": ORDER_STATUS_LABELS.get(data.status, "Unknown")},
        "StatusType": {"Key": int(status_type), "Value": status_type.label}
        if status_type is not None
        else None,
        "IsCancelled": status_type is StatusType.CANCELLED,
        "Shipping": _shipping_json(order),
        "Buyer": {
            "Code": buyer_code_number(data.buyer.code),
            "Owncode": None,
            "Nickname": data.buyer.nickname,
            "Name": data.buyer.name,
        },
        "DateCreated": timestamp(data.date_created),
        "DateClosed": timestamp(data.date_closed),
        "LastUpdated": timestamp(order.updated_at),
    }


def _shipping_json(order: Order) -> dict[str, Any]:
    data = order.data
    window = data.delivery_window
    return {
        "ExternalShippingId": data.shipping_id,
        "LogisticType": {"Key": int(data.logistic_type), "Value": data.logistic_type.label}
        if data.logistic_type
        else None,
        "EstimatedDeliveryDate": timestamp(delivery_day_start(window, data.site)),
        "EstimatedDelivery": (
            {"Date": window.date.isoformat(), "FromHour": window.from_hour, "ToHour": window.to_hour}
            if window
            else None
        ),
    }


def buyer_code_number(code: str | None) -> int | None:
    """Alephee's `Buyer.Code` is an integer: the marketplace's numeric buyer id (Mercado Libre's
    `buyer.id`). A code that is not such a number (letters, a leading zero, empty) has no integer: None."""
    if code is None or not (code.isascii() and code.isdigit()):
        return None
    number = int(code)
    return number if str(number) == code else None


def delivery_day_start(window: DeliveryWindow | None, site: Site | None) -> dt.datetime | None:
    """The start of the promised delivery day on the site's clock (as Mercado Libre's
    `estimated_delivery_time.date` gives it); None without a window, or without a site to say
    which clock (the window's day is a local day)."""
    if window is None or site is None:
        return None
    return dt.datetime.combine(window.date, dt.time(), tzinfo=ZoneInfo(site.time_zone))
