"""Mercado Libre's JSON shapes for users, orders, packs, shipments, messages and conversations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from postventa.emulator.guide import Block
from postventa.emulator.models import Attachment, Conversation, Message, Order, Pack, Seller, Shipment
from postventa.emulator.moderation import moderation_status
from postventa.emulator.sites import iso, iso_local, site_zone, utc_now

JSONDict = dict[str, Any]
_COUNTRIES = {
    "MLA": "AR",
    "MLB": "BR",
    "MLM": "MX",
    "MCO": "CO",
    "MLC": "CL",
    "MLU": "UY",
    "MPE": "PE",
    "MEC": "EC",
}


def user_json(seller: Seller) -> JSONDict:
    """`GET /users/me`."""
    return {
        "id": seller.id,
        "nickname": seller.nickname,
        "site_id": seller.site_id,
        "country_id": _COUNTRIES.get(seller.site_id),
        "user_type": "normal",
    }


def order_json(order: Order, shipment: Shipment) -> JSONDict:
    """`GET /orders/{id}`: the shipping carries only its id (research §4)."""
    return {
        "id": order.id,
        "pack_id": order.pack_id,
        "status": order.status,
        "status_detail": None,
        "date_created": iso_local(order.date_created, order.site_id),
        "last_updated": iso_local(order.last_updated, order.site_id),
        "date_closed": iso_local(order.date_closed, order.site_id) if order.date_closed else None,
        "buyer": {"id": order.buyer.id, "nickname": order.buyer.nickname},
        "seller": {"id": order.seller_id},
        "shipping": {"id": shipment.id},
        "context": {"site": order.site_id, "channel": "marketplace", "flows": []},
        "tags": _order_tags(order, shipment),
    }


def pack_json(pack: Pack, orders: list[Order]) -> JSONDict:
    """`GET /packs/{id}`."""
    cancelled = bool(orders) and all(order.status == "cancelled" for order in orders)
    return {
        "id": pack.id,
        "status": "cancelled" if cancelled else "released",
        "status_detail": None,
        "orders": [{"id": order_id} for order_id in pack.order_ids],
        "buyer": {"id": pack.buyer.id},
        "shipment": {"id": pack.shipment_id},
        "date_created": iso_local(pack.date_created, pack.site_id),
        "last_updated": iso_local(
            max((order.last_updated for order in orders), default=pack.date_created), pack.site_id
        ),
    }


def shipment_json(shipment: Shipment, *, new_format: bool) -> JSONDict:
    """`GET /shipments/{id}`: the `logistic` block only with `x-format-new: true`."""
    if not new_format:
        return {"id": shipment.id, "status": shipment.status, "mode": shipment.mode}
    return {
        "id": shipment.id,
        "status": shipment.status,
        "substatus": None,
        "date_created": iso_local(shipment.date_created, shipment.site_id),
        "logistic": {"mode": shipment.mode, "type": shipment.logistic_type, "direction": "forward"},
        "source": {"site_id": shipment.site_id},
        "lead_time": {"estimated_delivery_time": _estimated_delivery(shipment)},
    }


def message_json(message: Message) -> JSONDict:
    """A message as the conversation read (and the `x-format-new` message read) shows it."""
    now = utc_now()
    status = message.status_at(now)
    available = message.moderated_at if status == "available" else None
    return {
        "id": message.id,
        "site_id": message.site_id,
        "client_id": int(message.client_id) if message.client_id else None,
        "from": {"user_id": message.from_user},
        "to": {"user_id": message.to_user},
        "status": status,
        "subject": None,
        "text": message.text,
        "message_date": {
            "received": iso(message.created),
            "available": iso(available) if available else None,
            "notified": iso(message.notified) if message.notified else None,
            "created": iso(message.created),
            "read": iso(message.read) if message.read else None,
        },
        "message_moderation": _moderation_json(message, now),
        "message_attachments": [_attachment_json(attachment) for attachment in message.attachments],
        "message_resources": [
            {"id": str(message.conversation_key), "name": "packs"},
            {"id": str(message.seller_id), "name": "sellers"},
        ],
        "conversation_first_message": message.first,
    }


def sent_message_json(message: Message, buyer_nickname: str) -> JSONDict:
    """The answer of an action-guide POST: the message, with the buyer's name in `to`."""
    body = message_json(message)
    body["to"] = {"user_id": message.to_user, "name": buyer_nickname}
    return body


def legacy_message_json(message: Message, order_id: int) -> JSONDict:
    """`GET /messages/{id}` without `x-format-new`: the old flat shape (research §3)."""
    now = utc_now()
    status, moderation = message.status_at(now), moderation_status(message, now)
    available = message.moderated_at if status == "available" else None
    return {
        "message_id": message.id,
        "date_received": iso(message.created),
        "date": iso(message.created),
        "date_available": iso(available) if available else None,
        "date_notified": iso(message.notified) if message.notified else None,
        "date_read": iso(message.read) if message.read else None,
        "from": {"user_id": message.from_user},
        "to": {"user_id": message.to_user},
        "subject": None,
        "text": {"plain": message.text},
        "attachments": [_attachment_json(attachment) for attachment in message.attachments],
        "attachments_validations": {
            "invalid_size": [],
            "invalid_extension": [],
            "forbidden": [],
            "internal_error": [],
        },
        "site_id": message.site_id,
        "resource": "orders",
        "resource_id": order_id,
        "status": status,
        "moderation": {
            "status": moderation,
            "date_moderated": None if moderation == "pending" else iso(message.moderated_at),
            "source": "online",
        },
    }


def conversation_status_json(conversation: Conversation, block: Block | None) -> JSONDict:
    """`conversation_status`: `blocked` with a substatus while a block holds, else `active`; the
    path ends in `/conversations/agent` in an AI-agent thread (research §2.8)."""
    last = conversation.messages[-1].created if conversation.messages else utc_now()
    agent = "/conversations/agent" if conversation.agent_id is not None else ""
    return {
        "path": f"/packs/{conversation.key}/sellers/{conversation.seller_id}{agent}",
        "status": "blocked" if block else "active",
        "substatus": block.substatus if block else None,
        "status_date": iso(last),
        "status_update_allowed": False,
        "claim_id": None,
        "shipping_id": conversation.shipment_id,
    }


def _order_tags(order: Order, shipment: Shipment) -> list[str]:
    tags = ["pack_order"] if order.pack_id is not None else []
    if order.status == "paid":
        tags.append("paid")
    tags.append("delivered" if shipment.status == "delivered" else "not_delivered")
    return tags


def _estimated_delivery(shipment: Shipment) -> JSONDict:
    zone = site_zone(shipment.site_id)
    window = shipment.window
    if window is None:
        day = shipment.date_created.astimezone(zone).date() + dt.timedelta(days=3)
        return {"date": _local_iso(day, 0, zone), "time_frame": {"from": None, "to": None}}
    return {
        "date": _local_iso(window.date, 0, zone),
        "time_frame": {
            "from": _local_iso(window.date, window.from_hour, zone),
            "to": _local_iso(window.date, window.to_hour, zone),
        },
    }


def _local_iso(day: dt.date, hour: int, zone: dt.tzinfo) -> str:
    moment = dt.datetime.combine(day, dt.time(), tzinfo=zone) + dt.timedelta(hours=hour)
    return moment.isoformat(timespec="milliseconds")


def _moderation_json(message: Message, now: dt.datetime) -> JSONDict:
    status = moderation_status(message, now)
    pending = status == "pending"
    return {
        "status": status,
        "reason": None if pending else message.moderation_reason,
        "source": "online",
        "moderation_date": None if pending else iso(message.moderated_at),
    }


def _attachment_json(attachment: Attachment) -> JSONDict:
    return {
        "filename": attachment.id,
        "original_filename": attachment.original_filename,
        "type": attachment.content_type,
        "size": attachment.size,
        "potential_security_threat": False,
        "creation_date": iso(attachment.created),
    }
