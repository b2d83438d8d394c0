"""Mercado Libre routes for OAuth, the user, orders, packs and shipments."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request

from postventa.emulator.auth import refresh_grant
from postventa.emulator.deps import EmulatorDep, SellerDep, is_true, parse_int
from postventa.emulator.errors import MeliError, generic_error
from postventa.emulator.models import Order, Seller
from postventa.emulator.render import order_json, pack_json, shipment_json, user_json
from postventa.emulator.state import EmulatorState

router = APIRouter()
SEARCH_DEFAULT_LIMIT = 50
SEARCH_MAX_LIMIT = 51  # Mercado Libre's largest page of /orders/search


@router.post("/oauth/token")
async def oauth_token(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Exchange a refresh token (form fields, JSON or query parameters) for new tokens."""
    form = _token_form(await request.body(), request.headers.get("content-type", ""))
    form = {**dict(request.query_params), **form}
    async with emulator.state.lock:
        return refresh_grant(emulator.state, form)


@router.get("/users/me")
async def users_me(seller: SellerDep) -> dict[str, Any]:
    """The token's seller."""
    return user_json(seller)


@router.get("/orders/search")
async def orders_search(request: Request, seller: SellerDep, emulator: EmulatorDep) -> dict[str, Any]:
    """The seller's orders, paged with `offset`/`limit`, oldest first (`sort=date_desc` to reverse)."""
    params = request.query_params
    seller_param = parse_int(params.get("seller"))
    if seller_param is None:
        raise generic_error(400, "bad_request", "The seller or buyer param is required")
    if seller_param != seller.id:
        raise generic_error(403, "forbidden", "Invalid caller.id")
    offset, limit = _paging(params.get("offset"), params.get("limit"))
    status = params.get("order.status")
    async with emulator.state.lock:
        orders = [
            order
            for order in emulator.state.orders.values()
            if order.seller_id == seller.id and (status is None or order.status == status)
        ]
        orders.sort(key=lambda order: order.id, reverse=params.get("sort") == "date_desc")
        page = [_order(emulator.state, order) for order in orders[offset : offset + limit]]
    return {
        "query": None,
        "results": page,
        "sort": {"id": "date_desc" if params.get("sort") == "date_desc" else "date_asc"},
        "paging": {"total": len(orders), "offset": offset, "limit": limit},
    }


@router.get("/orders/{order_id}")
async def get_order(order_id: str, seller: SellerDep, emulator: EmulatorDep) -> dict[str, Any]:
    """One order of the seller."""
    async with emulator.state.lock:
        order = emulator.state.orders.get(parse_int(order_id) or 0)
        if order is None:
            raise generic_error(404, "not_found", f"Order {order_id} not found")
        _own(order.seller_id, seller)
        return _order(emulator.state, order)


@router.get("/packs/{pack_id}")
async def get_pack(pack_id: str, seller: SellerDep, emulator: EmulatorDep) -> dict[str, Any]:
    """One pack of the seller."""
    async with emulator.state.lock:
        pack = emulator.state.packs.get(parse_int(pack_id) or 0)
        if pack is None:
            raise generic_error(404, "not_found", f"Pack {pack_id} not found")
        _own(pack.seller_id, seller)
        return pack_json(pack, [emulator.state.orders[order_id] for order_id in pack.order_ids])


@router.get("/shipments/{shipment_id}")
async def get_shipment(
    shipment_id: str, request: Request, seller: SellerDep, emulator: EmulatorDep
) -> dict[str, Any]:
    """One shipment; the `logistic` block only with `x-format-new: true`."""
    async with emulator.state.lock:
        shipment = emulator.state.shipments.get(parse_int(shipment_id) or 0)
        if shipment is None:
            raise generic_error(404, "not_found", f"Shipment {shipment_id} not found")
        _own(shipment.seller_id, seller)
        return shipment_json(shipment, new_format=is_true(request.headers.get("x-format-new")))


def _order(state: EmulatorState, order: Order) -> dict[str, Any]:
    return order_json(order, state.shipments[order.shipment_id])


def _own(owner_id: int, seller: Seller) -> None:
    if owner_id != seller.id:
        raise generic_error(403, "forbidden", "Invalid caller.id")


def _paging(offset_text: str | None, limit_text: str | None) -> tuple[int, int]:
    offset = parse_int(offset_text) if offset_text is not None else 0
    limit = parse_int(limit_text) if limit_text is not None else SEARCH_DEFAULT_LIMIT
    if offset is None or offset < 0:
        raise generic_error(400, "bad_request", "Invalid offset param")
    if limit is None or limit <= 0:
        raise generic_error(400, "bad_request", "Invalid limit param")
    if limit > SEARCH_MAX_LIMIT:
        raise generic_error(400, "bad_request", f"Limit must be a lower or equal than {SEARCH_MAX_LIMIT}.")
    return offset, limit


def _token_form(body: bytes, content_type: str) -> dict[str, str]:
    text = body.decode("utf-8", "replace")
    if "json" in content_type:
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise MeliError(
                400, {"message": "invalid JSON", "error": "invalid_request", "status": 400, "cause": []}
            ) from exc
        return {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}
