"""Control routes for what sellers and buyers do outside the application: a seller revokes the
application or authorizes it again; a buyer reads the seller's message; a message is deleted.
Like the rest of `/_emulator/*`, never faulted or rate limited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from postventa.emulator.auth import grant_seller, revoke_seller
from postventa.emulator.deps import EmulatorDep, parse_int
from postventa.emulator.errors import generic_error
from postventa.emulator.message_events import delete_message, read_by_buyer
from postventa.emulator.models import Seller
from postventa.emulator.sites import iso
from postventa.emulator.state import EmulatorState

router = APIRouter(prefix="/_emulator")


@router.post("/sellers/{seller_id}/revoke")
async def revoke(seller_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    """The seller revoked the application: its refresh and access tokens all stop working."""
    async with emulator.state.lock:
        seller = _seller(emulator.state, seller_id)
        revoke_seller(emulator.state, seller)
    return {"SellerId": seller.id, "Revoked": True}


@router.post("/sellers/{seller_id}/grant")
async def grant(seller_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    """The seller authorized the application again: a new refresh token."""
    async with emulator.state.lock:
        token = grant_seller(emulator.state, _seller(emulator.state, seller_id))
    return {"RefreshToken": token}


@router.post("/messages/{message_id}/read")
async def buyer_reads(message_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    """The buyer read the seller's message; the seller's application is notified (`messages`,
    actions `["read"]`) the first time."""
    state = emulator.state
    async with state.lock:
        message, first_read = read_by_buyer(state, message_id)
        seller = state.sellers[message.seller_id]
    if first_read:
        emulator.notifier.notify("messages", message.id, seller.id, seller.client_id, actions=["read"])
    return {"MessageId": message.id, "Read": iso(message.read) if message.read else None}


@router.delete("/messages/{message_id}")
async def delete(message_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    """The message is deleted from Mercado Libre's storage."""
    async with emulator.state.lock:
        message = delete_message(emulator.state, message_id)
    return {"MessageId": message.id, "Deleted": True}


def _seller(state: EmulatorState, seller_id: str) -> Seller:
    seller = state.sellers.get(parse_int(seller_id) or 0)
    if seller is None:
        raise generic_error(404, "not_found", f"Seller {seller_id} not found")
    return seller
