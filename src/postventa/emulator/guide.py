"""The action guide ("motivos para comunicarse", research §1): which options a pack offers, their
caps, what blocks a conversation, and the text a POST of an option sends.

The guide is the seller's first contact only: each available option has a cap of 1 until the seller
uses one, then every cap is 0; once the buyer has written, the seller must use `/messages`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from postventa.emulator import texts
from postventa.emulator.errors import MeliError, guide_error
from postventa.emulator.models import PAYMENT_PENDING_STATUSES, Conversation, Order, Shipment

OPTION_LABELS = {
    "REQUEST_VARIANTS": "Solicitar datos de variantes",
    "REQUEST_BILLING_INFO": "Pedir datos de facturación",
    "SEND_INVOICE_LINK": "Enviar link para facturación",
    "DELIVERY_PROMISE": "Informar promesa de entrega",
    "OTHER": "Otros, campo libre",
}
FREE_TEXT_OPTIONS = frozenset({"SEND_INVOICE_LINK", "OTHER"})
CHAR_LIMIT = 350
VARIANTS_LOGISTIC_TYPES = frozenset({"cross_docking", "drop_off", "xd_drop_off"})
FULFILLMENT_NOT_DELIVERED = (
    "You can not send the message because the purchase is Mercado Envíos Full and has not been yet delivered"
)
SEND_FORBIDDEN = "blocked_conversation_send_message_forbidden"
USE_MESSAGES = "This package has the conversation blocked, please check blocked messages"
PROMISE_BEFORE_TODAY = (
    "The promise of delivery of the shipping contained in the pack is from a date before today"
)


@dataclass(frozen=True)
class Block:
    """Why a conversation is closed to the seller, and what each route answers."""

    substatus: str
    guide_message: str
    send_message: str


@dataclass(frozen=True)
class OptionRequest:
    """The body of `POST .../option`, as sent (types checked later)."""

    option_id: object
    template_id: object
    vars: object
    text: object


def conversation_block(orders: list[Order], shipment: Shipment) -> Block | None:
    """The block in force (cancelled order, Full not delivered, payment pending), or None."""
    if orders and all(order.status == "cancelled" for order in orders):
        return Block("blocked_by_cancelled_order", "The conversation is blocked", SEND_FORBIDDEN)
    if shipment.logistic_type == "fulfillment" and shipment.status != "delivered":
        return Block("blocked_by_fulfillment", FULFILLMENT_NOT_DELIVERED, FULFILLMENT_NOT_DELIVERED)
    if any(order.status in PAYMENT_PENDING_STATUSES for order in orders):
        return Block("blocked_by_payment", "The conversation is blocked", SEND_FORBIDDEN)
    return None


def available_options(site_id: str, logistic_type: str) -> list[str]:
    """The options a pack on this site with this logistic type offers, in Mercado Libre's order."""
    options = []
    if logistic_type in VARIANTS_LOGISTIC_TYPES:
        options.append("REQUEST_VARIANTS")
    if texts.billing_info_text(site_id) is not None:
        options.append("REQUEST_BILLING_INFO")
    if site_id == "MLM":
        options.append("SEND_INVOICE_LINK")
    if logistic_type == "self_service" and texts.has_delivery_promise_text(site_id):
        options.append("DELIVERY_PROMISE")
    options.append("OTHER")
    return options


def template_id(option_id: str) -> str:
    """The one template id of a template option."""
    return f"TEMPLATE___{option_id}___1"


def cap_available(conversation: Conversation, block: Block | None) -> int:
    """1 while the seller has not used the guide and the buyer has not written, else 0."""
    return 0 if block or conversation.guide_used or conversation.buyer_has_written else 1


def options_json(options: list[str], cap: int) -> dict[str, Any]:
    """`GET /messages/action_guide/packs/{pack}`: the options with their caps."""
    return {"options": [_option_json(option, cap) for option in options]}


def caps_json(options: list[str], cap: int) -> list[dict[str, Any]]:
    """`GET .../caps_available`: a bare array of option ids and caps."""
    return [{"option_id": option, "cap_available": cap} for option in options]


def parse_option_request(body: object) -> OptionRequest:
    """The option POST's fields; a body that is not a JSON object is a 400."""
    if not isinstance(body, dict):
        raise guide_error(400, "bad_request", "A JSON body is required", "invalid_body")
    return OptionRequest(body.get("option_id"), body.get("template_id"), body.get("vars"), body.get("text"))


def option_text(
    request: OptionRequest,
    conversation: Conversation,
    shipment: Shipment,
    block: Block | None,
    today: dt.date,
) -> str:
    """The text the option sends, after the checks of the documented error table, in order."""
    if block is not None:
        raise guide_error(403, "forbidden", block.guide_message, block.substatus)
    if conversation.buyer_has_written:
        raise guide_error(403, "forbidden", USE_MESSAGES, "blocked_by_conversation_use_message_api")
    option = request.option_id
    if not isinstance(option, str) or option not in available_options(
        conversation.site_id, shipment.logistic_type
    ):
        raise guide_error(404, "not_found", "The option selected is not valid", "invalid_option")
    if conversation.guide_used:
        raise guide_error(
            403,
            "bad_request",
            f"You are not allowed to execute the option {option} again",
            "cap_not_available",
        )
    if option in FREE_TEXT_OPTIONS:
        return _free_text(request.text)
    return _template_text(option, request, conversation.site_id, shipment, today)


def _free_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip() or len(text) > CHAR_LIMIT:
        raise guide_error(400, "limit_exceeded", "The text is invalid", "invalid_text")
    return text


def _template_text(
    option: str, request: OptionRequest, site_id: str, shipment: Shipment, today: dt.date
) -> str:
    expected = template_id(option)
    if request.template_id != expected:
        raise _invalid_template(request.template_id)
    if option == "REQUEST_VARIANTS":
        return texts.request_variants_text(site_id)
    if option == "REQUEST_BILLING_INFO":
        return texts.billing_info_text(site_id) or ""
    init, limit = _promise_hours(request.vars, expected)
    window_date = shipment.window.date if shipment.window else today
    if window_date < today:
        raise guide_error(400, "bad_request", PROMISE_BEFORE_TODAY, "delivery_promise_expired")
    return texts.delivery_promise_text(site_id, (window_date - today).days, init, limit)


def _promise_hours(variables: object, template: str) -> tuple[int, int]:
    values: dict[str, int] = {}
    if isinstance(variables, list):
        for variable in variables:
            if isinstance(variable, dict) and isinstance(variable.get("id"), str):
                values[variable["id"]] = _hour(variable.get("value"))
    init, limit = values.get(f"{template}___VAR___INIT", -1), values.get(f"{template}___VAR___LIMIT", -1)
    if init < 0 or limit < 0 or init >= limit:
        raise _invalid_template(template)
    return init, limit


def _hour(value: object) -> int:
    if isinstance(value, bool):
        return -1
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value <= 24:
        return value
    return -1


def _invalid_template(template: object) -> MeliError:
    shown = template if isinstance(template, str) else ""
    return guide_error(400, "bad_request", f"The template {shown} is invalid", "invalid_template")


def _option_json(option: str, cap: int) -> dict[str, Any]:
    free_text = option in FREE_TEXT_OPTIONS
    promise = option == "DELIVERY_PROMISE"
    return {
        "id": option,
        "internal_description": OPTION_LABELS[option],
        "enabled": True,
        # The documented example spells DELIVERY_PROMISE's type in capitals; kept as published.
        "type": "free_text" if free_text else "TEMPLATE" if promise else "template",
        "templates": None if free_text else [_template_json(option)],
        "actionable": True,
        "char_limit": CHAR_LIMIT if free_text else None,
        "child_options": [] if promise else None,
        "cap_available": cap,
    }


def _template_json(option: str) -> dict[str, Any]:
    identifier = template_id(option)
    if option != "DELIVERY_PROMISE":
        return {"id": identifier, "vars": None}
    return {
        "id": identifier,
        "texts": {site: {"html": html} for site, html in texts.DELIVERY_PROMISE_TEXTS.items()},
        "vars": [
            {"id": f"{identifier}___VAR___INIT", "type": "NUMBER"},
            {"id": f"{identifier}___VAR___LIMIT", "type": "NUMBER"},
        ],
    }
