"""What every Mercado Libre route needs: the emulator, the token's seller, the JSON body, integers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, cast

from fastapi import Depends, Request

from postventa.emulator.auth import seller_for_token
from postventa.emulator.errors import MeliError
from postventa.emulator.models import Conversation, Seller
from postventa.emulator.runtime import Emulator
from postventa.emulator.state import EmulatorState


def get_emulator(request: Request) -> Emulator:
    """The emulator serving this request."""
    return cast(Emulator, request.app.state.emulator)


async def current_seller(request: Request) -> Seller:
    """The seller of the `Authorization: Bearer` token; 401 when it is missing, unknown or expired."""
    emulator = get_emulator(request)
    async with emulator.state.lock:
        return seller_for_token(emulator.state, request.headers.get("authorization"))


EmulatorDep = Annotated[Emulator, Depends(get_emulator)]
SellerDep = Annotated[Seller, Depends(current_seller)]


async def read_json(request: Request) -> object:
    """The parsed JSON body, or None when there is none or it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return cast(object, json.loads(raw))
    except ValueError:
        return None


def parse_int(value: str | None) -> int | None:
    """A decimal integer, or None for anything else."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("-") and text[1:].isdigit():
        return int(text)
    return int(text) if text.isascii() and text.isdigit() else None


def is_true(value: str | None) -> bool:
    """Whether a header or query flag says true."""
    return value is not None and value.strip().lower() == "true"


def owned_conversation(
    state: EmulatorState,
    key_text: str,
    seller: Seller,
    *,
    missing: Callable[[str], MeliError],
    foreign: MeliError,
) -> Conversation:
    """The conversation of a pack id (or of an order id without pack) that belongs to the seller.

    `missing` builds the not-found error from a message; `foreign` is raised for another seller's.
    """
    key = parse_int(key_text)
    conversation = state.find_conversation(key) if key is not None else None
    if conversation is None:
        order = state.orders.get(key) if key is not None else None
        if order is not None and order.pack_id is not None:
            raise missing(f"Order {key_text} belongs to pack {order.pack_id}: use the pack id")
        raise missing(f"The pack {key_text} was not found")
    if conversation.seller_id != seller.id:
        raise foreign
    return conversation
