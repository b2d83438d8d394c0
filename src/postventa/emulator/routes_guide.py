"""The action guide routes (research §1): options, caps, and sending an option."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from postventa.emulator import guide
from postventa.emulator.deps import EmulatorDep, SellerDep, owned_conversation, read_json
from postventa.emulator.errors import MeliError, guide_error
from postventa.emulator.messaging import add_seller_message
from postventa.emulator.models import Conversation, Seller
from postventa.emulator.render import sent_message_json
from postventa.emulator.sites import site_today
from postventa.emulator.state import EmulatorState

router = APIRouter(prefix="/messages/action_guide/packs/{pack_id}")


@router.get("")
async def action_guide(pack_id: str, seller: SellerDep, emulator: EmulatorDep) -> dict[str, Any]:
    """The options the pack offers, each with its `cap_available`."""
    async with emulator.state.lock:
        options, cap = _options_and_cap(emulator.state, _conversation(emulator.state, pack_id, seller))
    return guide.options_json(options, cap)


@router.get("/caps_available")
async def caps_available(pack_id: str, seller: SellerDep, emulator: EmulatorDep) -> list[dict[str, Any]]:
    """The caps alone, as a bare array."""
    async with emulator.state.lock:
        options, cap = _options_and_cap(emulator.state, _conversation(emulator.state, pack_id, seller))
    return guide.caps_json(options, cap)


@router.post("/option")
async def send_option(
    pack_id: str, request: Request, seller: SellerDep, emulator: EmulatorDep
) -> dict[str, Any]:
    """Send an option: its template rendered for the site, or the seller's free text (moderated)."""
    body = await read_json(request)
    state = emulator.state
    async with state.lock:
        conversation = _conversation(state, pack_id, seller)
        option = guide.parse_option_request(body)
        shipment = state.shipment_of(conversation)
        block = guide.conversation_block(state.orders_of(conversation), shipment)
        text = guide.option_text(option, conversation, shipment, block, site_today(conversation.site_id))
        message = add_seller_message(state, conversation, seller, text, option_id=str(option.option_id))
    emulator.after_seller_message(message)
    return sent_message_json(message, conversation.buyer.nickname)


def _conversation(state: EmulatorState, pack_id: str, seller: Seller) -> Conversation:
    return owned_conversation(
        state,
        pack_id,
        seller,
        missing=_not_found,
        foreign=guide_error(
            403,
            "forbidden",
            f"You are not allowed to access the information of the pack {pack_id}",
            "forbidden",
        ),
    )


def _not_found(message: str) -> MeliError:
    return guide_error(404, "not_found", message, "not_found")


def _options_and_cap(state: EmulatorState, conversation: Conversation) -> tuple[list[str], int]:
    shipment = state.shipment_of(conversation)
    block = guide.conversation_block(state.orders_of(conversation), shipment)
    return guide.available_options(conversation.site_id, shipment.logistic_type), guide.cap_available(
        conversation, block
    )
