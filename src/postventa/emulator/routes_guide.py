"""The action guide routes (research §1): options, each option's cap, and sending an option.

An excepted pack answers 400 `blocked_by_excepted_case` on all three (research §1.1).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from postventa.emulator import blocking, guide
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
        caps = _caps(emulator.state, _conversation(emulator.state, pack_id, seller))
    return guide.options_json(caps)


@router.get("/caps_available")
async def caps_available(pack_id: str, seller: SellerDep, emulator: EmulatorDep) -> list[dict[str, Any]]:
    """The caps alone, as a bare array."""
    async with emulator.state.lock:
        caps = _caps(emulator.state, _conversation(emulator.state, pack_id, seller))
    return guide.caps_json(caps)


@router.post("/option")
async def send_option(
    pack_id: str, request: Request, seller: SellerDep, emulator: EmulatorDep
) -> dict[str, Any]:
    """Send an option: its template rendered for the site, or the seller's free text (moderated)."""
    body = await read_json(request)
    state = emulator.state
    async with state.lock:
        conversation = _conversation(state, pack_id, seller)
        guide.check_not_excepted(conversation)
        option = guide.parse_option_request(body)
        shipment = state.shipment_of(conversation)
        block = blocking.block_of(state, conversation)
        caps = guide.option_caps(conversation, shipment, block, state.config.other_closed_on_delivery_sites)
        today = site_today(conversation.site_id)
        text = guide.option_text(option, conversation, shipment, block, caps, today)
        option_id = str(option.option_id)
        message = add_seller_message(state, conversation, seller, text, option_id=option_id)
        guide.use_cap(conversation, option_id)
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


def _caps(state: EmulatorState, conversation: Conversation) -> dict[str, int]:
    guide.check_not_excepted(conversation)
    block = blocking.block_of(state, conversation)
    return guide.option_caps(
        conversation, state.shipment_of(conversation), block, state.config.other_closed_on_delivery_sites
    )
