"""The control API (`/_emulator/*`): make sellers, orders and buyer messages, set faults and
configuration, read the journal. Never faulted or rate limited."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request

from postventa.emulator.control_models import (
    BuyerMessageIn,
    ConfigIn,
    FaultsIn,
    OrderChangeIn,
    OrderIn,
    SellerIn,
    parse_body,
)
from postventa.emulator.deps import EmulatorDep, parse_int
from postventa.emulator.errors import bad_control_input, generic_error
from postventa.emulator.faults import FaultRule
from postventa.emulator.models import DeliveryWindow
from postventa.emulator.render import order_json
from postventa.emulator.runtime import Emulator
from postventa.emulator.sites import site_today
from postventa.emulator.state import NewOrder

router = APIRouter(prefix="/_emulator")
FLEX_DEFAULT_HOURS = (9, 18)


@router.post("/sellers")
async def create_seller(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """A seller on a site, with application credentials and a refresh token."""
    body = parse_body(SellerIn, await request.body())
    created = await emulator.create_seller(body.SiteId, body.Nickname, body.ClientId)
    return {
        "SellerId": created.seller.id,
        "ClientId": created.seller.client_id,
        "ClientSecret": created.client_secret,
        "RefreshToken": created.refresh_token,
    }


@router.post("/orders")
async def create_order(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """An order (its shipment, and its pack when `PackId` is given); notifies `orders_v2`."""
    body = parse_body(OrderIn, await request.body())
    seller = emulator.state.sellers.get(body.SellerId)
    if seller is None:
        raise bad_control_input(f"SellerId {body.SellerId} is not a seller of this emulator.")
    site_id = body.SiteId or seller.site_id
    order = await emulator.create_order(
        NewOrder(
            seller_id=body.SellerId,
            site_id=site_id,
            pack_id=body.PackId,
            logistic_type=body.LogisticType,
            status=body.Status,
            shipment_status=body.ShipmentStatus,
            buyer_id=body.Buyer.Id if body.Buyer else None,
            buyer_nickname=body.Buyer.Nickname if body.Buyer else None,
            window=_window(body, site_id),
        )
    )
    return {"OrderId": order.id, "PackId": order.pack_id, "BuyerId": order.buyer.id}


@router.put("/orders/{order_id}")
async def change_order(order_id: str, request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Change an order's status or its shipment's; notifies `orders_v2`."""
    body = parse_body(OrderChangeIn, await request.body())
    state = emulator.state
    async with state.lock:
        order = state.orders.get(parse_int(order_id) or 0)
        if order is None:
            raise generic_error(404, "not_found", f"Order {order_id} not found")
        state.change_order(order, body.Status, body.ShipmentStatus)
        answer = order_json(order, state.shipments[order.shipment_id])
    emulator.notify_order(order)
    return answer


@router.post("/packs/{pack_id}/buyer-messages")
async def buyer_message(pack_id: str, request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """The buyer writes to the seller; notifies `messages`."""
    body = parse_body(BuyerMessageIn, await request.body())
    key = parse_int(pack_id)
    if key is None:
        raise generic_error(404, "not_found", f"There is no conversation {pack_id}")
    message = await emulator.buyer_writes(key, body.Text)
    return {"MessageId": message.id}


@router.put("/faults")
async def put_faults(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Replace the fault rules (an empty list clears them)."""
    body = parse_body(FaultsIn, await request.body())
    rules = [
        FaultRule(rule.Route, rule.Kind, rule.Rate, rule.RetryAfterSeconds, rule.DelaySeconds)
        for rule in body.Faults
    ]
    emulator.faults.replace(rules, body.Seed)
    return _faults(emulator)


@router.get("/faults")
async def get_faults(emulator: EmulatorDep) -> dict[str, Any]:
    """The fault rules in force."""
    return _faults(emulator)


@router.put("/config")
async def put_config(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Change the fields given; answers the whole configuration."""
    body = parse_body(ConfigIn, await request.body())
    config, given = emulator.config, body.model_fields_set
    if "NotifyUrl" in given:
        config.notify_url = body.NotifyUrl
    if "AutoBuyerReplySeconds" in given:
        config.auto_buyer_reply_seconds = body.AutoBuyerReplySeconds
    if body.AutoBuyerReplyText is not None:
        config.auto_buyer_reply_text = body.AutoBuyerReplyText
    if body.ReadsPerMinute is not None:
        config.reads_per_minute = body.ReadsPerMinute
    if body.WritesPerMinute is not None:
        config.writes_per_minute = body.WritesPerMinute
    if body.AccessTokenTtlSeconds is not None:
        config.access_token_ttl_seconds = body.AccessTokenTtlSeconds
    if body.OtherClosedOnDeliverySites is not None:
        config.other_closed_on_delivery_sites = frozenset(body.OtherClosedOnDeliverySites)
    if "PendingModerationSeconds" in given:
        config.pending_moderation_seconds = body.PendingModerationSeconds
    return config.to_json()


@router.get("/config")
async def get_config(emulator: EmulatorDep) -> dict[str, Any]:
    """The configuration."""
    return emulator.config.to_json()


@router.get("/journal")
async def get_journal(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Entries after `since` (default 0), and `Next` to pass as `since` next time."""
    since_text = request.query_params.get("since", "0")
    since = parse_int(since_text)
    if since is None:
        raise bad_control_input(f"since must be an integer, not {since_text!r}")
    entries, following = emulator.journal.since(since)
    return {"Entries": [entry.to_json() for entry in entries], "Next": following}


@router.delete("/journal")
async def clear_journal(emulator: EmulatorDep) -> dict[str, Any]:
    """Forget the journal; sequence numbers keep increasing."""
    entries, following = emulator.journal.since(0)
    emulator.journal.clear()
    return {"Cleared": len(entries), "Next": following}


def _faults(emulator: Emulator) -> dict[str, Any]:
    return {"Faults": [rule.to_json() for rule in emulator.faults.rules]}


def _window(body: OrderIn, site_id: str) -> DeliveryWindow | None:
    if body.DeliveryWindow is not None:
        given = body.DeliveryWindow
        return DeliveryWindow(given.Date, given.FromHour, given.ToHour)
    if body.LogisticType == "self_service":
        start, end = FLEX_DEFAULT_HOURS
        return DeliveryWindow(site_today(site_id, dt.datetime.now(dt.UTC)), start, end)
    return None
