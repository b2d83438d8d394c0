"""Control routes on one conversation and one message: what Mercado Libre decides on its side and a
test must be able to reach (research /work/shared/research/mercadolibre-messaging.md).

`{packId}` is the conversation key: a pack id, or the order id of an order without pack.

- caps forced per option (§1.5, §2.10: Mercado Libre's cap wins over local rules);
- the excepted case (§1.1): the guide answers 400 `blocked_by_excepted_case`, `/messages` is open;
- a block with a documented substatus (§2.5), and aging a conversation into `blocked_by_time`;
- an AI-agent thread (§2.8) and the agent's messages;
- a message the seller wrote outside the API (seller center), which sends no notification;
- a late moderation verdict on a seller message (§2.4, §2.10), which notifies no one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from postventa.emulator import blocking, guide, messaging
from postventa.emulator.agents import agent_id_for
from postventa.emulator.control_models import parse_body
from postventa.emulator.control_models_packs import (
    AgeIn,
    AgentMessageIn,
    BlockIn,
    CapsIn,
    ModerateIn,
    SellerMessageIn,
)
from postventa.emulator.deps import EmulatorDep, parse_int
from postventa.emulator.errors import MeliError, bad_control_input, generic_error
from postventa.emulator.models import Conversation, Message
from postventa.emulator.moderation import reject_later
from postventa.emulator.render import message_json
from postventa.emulator.sites import iso, utc_now
from postventa.emulator.state import EmulatorState

router = APIRouter(prefix="/_emulator")
JSONDict = dict[str, Any]


@router.put("/packs/{pack_id}/caps")
async def force_caps(pack_id: str, request: Request, emulator: EmulatorDep) -> JSONDict:
    """Force the caps of the options given (an option the pack offers; 0 or more)."""
    body = parse_body(CapsIn, await request.body())
    async with emulator.state.lock:
        conversation = _conversation(emulator.state, pack_id)
        offered = guide.available_options(
            conversation.site_id, emulator.state.shipment_of(conversation).logistic_type
        )
        not_offered = sorted(set(body.root) - set(offered))
        if not_offered:
            raise bad_control_input(f"Pack {pack_id} does not offer {', '.join(not_offered)}.")
        conversation.cap_overrides.update(body.root)
        return _controls_json(conversation)


@router.delete("/packs/{pack_id}/caps")
async def clear_caps(pack_id: str, emulator: EmulatorDep) -> JSONDict:
    """Back to the caps the emulator's own rules give."""
    async with emulator.state.lock:
        conversation = _conversation(emulator.state, pack_id)
        conversation.cap_overrides.clear()
        return _controls_json(conversation)


@router.put("/packs/{pack_id}/excepted")
async def make_excepted(pack_id: str, emulator: EmulatorDep) -> JSONDict:
    """The pack is an excepted case (e.g. manufacturing time): no guide, `/messages` open."""
    return await _set(emulator.state, pack_id, excepted=True)


@router.delete("/packs/{pack_id}/excepted")
async def lift_excepted(pack_id: str, emulator: EmulatorDep) -> JSONDict:
    """The pack is an ordinary one again."""
    return await _set(emulator.state, pack_id, excepted=False)


@router.put("/packs/{pack_id}/block")
async def block(pack_id: str, request: Request, emulator: EmulatorDep) -> JSONDict:
    """Block the conversation with a documented substatus; it wins over the computed blocks."""
    body = parse_body(BlockIn, await request.body())
    return await _set(emulator.state, pack_id, forced_block=body.Reason)


@router.delete("/packs/{pack_id}/block")
async def unblock(pack_id: str, emulator: EmulatorDep) -> JSONDict:
    """Lift the forced block (blocks that follow from orders, shipment or time still apply)."""
    return await _set(emulator.state, pack_id, forced_block=None)


@router.put("/packs/{pack_id}/age")
async def age(pack_id: str, request: Request, emulator: EmulatorDep) -> JSONDict:
    """Move the conversation's message dates `Days` into the past (31 reaches `blocked_by_time`)."""
    body = parse_body(AgeIn, await request.body())
    async with emulator.state.lock:
        conversation = _conversation(emulator.state, pack_id)
        blocking.age_conversation(conversation, body.Days)
        return _controls_json(conversation)


@router.put("/packs/{pack_id}/agent")
async def start_agent(pack_id: str, emulator: EmulatorDep) -> JSONDict:
    """The buyer now talks through the site's AI agent; 400 on a site without one (MPE, MEC)."""
    async with emulator.state.lock:
        conversation = _conversation(emulator.state, pack_id)
        agent_id = agent_id_for(conversation.site_id)
        if agent_id is None:
            raise bad_control_input(f"Site {conversation.site_id} has no published AI agent (research §2.8).")
        if conversation.agent_id is None:
            conversation.agent_id, conversation.agent_turn = agent_id, False
        return _controls_json(conversation)


@router.delete("/packs/{pack_id}/agent")
async def end_agent(pack_id: str, emulator: EmulatorDep) -> JSONDict:
    """The agent thread ends; the conversation is between seller and buyer again."""
    return await _set(emulator.state, pack_id, agent_id=None, agent_turn=False)


@router.post("/packs/{pack_id}/agent-messages")
async def agent_message(pack_id: str, request: Request, emulator: EmulatorDep) -> JSONDict:
    """The AI agent writes to the seller (notified like a buyer message); the seller may answer once."""
    body = parse_body(AgentMessageIn, await request.body())
    state = emulator.state
    async with state.lock:
        conversation = _conversation(state, pack_id)
        if conversation.agent_id is None:
            raise bad_control_input(
                f"Pack {pack_id} has no agent thread: PUT /_emulator/packs/{pack_id}/agent"
            )
        message = messaging.add_agent_message(state, conversation, conversation.agent_id, body.Text)
        seller = state.sellers[conversation.seller_id]
    emulator.notifier.notify("messages", message.id, seller.id, seller.client_id)
    return {"MessageId": message.id}


@router.post("/packs/{pack_id}/seller-messages")
async def seller_center_message(pack_id: str, request: Request, emulator: EmulatorDep) -> JSONDict:
    """The seller wrote outside the API (seller center): stored, moderated, counted like an API
    message; 400 when Mercado Libre would refuse it. No notification: it is the seller's own."""
    body = parse_body(SellerMessageIn, await request.body())
    state = emulator.state
    async with state.lock:
        conversation = _conversation(state, pack_id)
        if messaging.has_unsupported_characters(body.Text):
            raise bad_control_input("The text has character/s that is/are not supported.")
        _check_seller_may_write(state, conversation)
        seller = state.sellers[conversation.seller_id]
        message = messaging.add_seller_message(state, conversation, seller, body.Text, via_api=False)
    emulator.after_seller_message(message)
    return {"MessageId": message.id, "Status": message.status}


@router.post("/messages/{message_id}/moderate")
async def moderate(message_id: str, request: Request, emulator: EmulatorDep) -> JSONDict:
    """Moderation rejects a seller message after the fact; the seller sees it on its next read."""
    body = parse_body(ModerateIn, await request.body())
    async with emulator.state.lock:
        message = _seller_message(emulator.state, message_id)
        reject_later(message, body.Reason, utc_now())
        return message_json(message)


def _check_seller_may_write(state: EmulatorState, conversation: Conversation) -> None:
    """A first contact needs a guide cap left; otherwise the send's own rules apply."""
    block = blocking.block_of(state, conversation)
    first_contact = block is None and conversation.agent_id is None and not messaging.is_open(conversation)
    caps = guide.option_caps(
        conversation, state.shipment_of(conversation), block, state.config.other_closed_on_delivery_sites
    )
    if first_contact and any(caps.values()):
        return
    try:
        messaging.check_send_allowed(conversation, block)
    except MeliError as refused:
        cause = refused.body.get("cause")
        detail = f"{refused.body['message']} ({cause})" if cause else str(refused.body["message"])
        raise bad_control_input(f"Mercado Libre would refuse this seller message: {detail}") from refused
    if first_contact:
        raise bad_control_input("Mercado Libre would refuse this seller message: no action-guide cap left")


async def _set(state: EmulatorState, pack_id: str, **changes: Any) -> JSONDict:
    async with state.lock:
        conversation = _conversation(state, pack_id)
        for name, value in changes.items():
            setattr(conversation, name, value)
        return _controls_json(conversation)


def _conversation(state: EmulatorState, pack_id: str) -> Conversation:
    key = parse_int(pack_id)
    conversation = state.find_conversation(key) if key is not None else None
    if conversation is None:
        raise generic_error(
            404,
            "not_found",
            f"There is no conversation {pack_id}: use a pack id, or an order id without pack.",
        )
    return conversation


def _seller_message(state: EmulatorState, message_id: str) -> Message:
    message = state.messages.get(message_id)
    if message is None:
        raise generic_error(404, "not_found", f"Message {message_id} not found")
    if message.from_user != message.seller_id:
        raise bad_control_input(f"Message {message_id} is not the seller's: moderation judges seller texts.")
    return message


def _controls_json(conversation: Conversation) -> JSONDict:
    last = max((message.created for message in conversation.messages), default=None)
    return {
        "PackId": conversation.key,
        "CapOverrides": dict(conversation.cap_overrides),
        "Excepted": conversation.excepted,
        "Block": conversation.forced_block,
        "AgentId": conversation.agent_id,
        "LastMessageDate": iso(last) if last else None,
    }
