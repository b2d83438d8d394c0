"""The action guide ("motivos para comunicarse", research §1): which options a pack offers, each
option's cap, the excepted case, and the text a POST of an option sends.

The guide is the seller's first contact only: each available option has a cap of 1 until the seller
uses one, then every cap is 0; once the buyer has written, the seller must use `/messages`. OTHER
closes once the shipment is delivered on the sites of the 2025 rule (research §1.1, §2.10), and a
control override can force any option's cap (Mercado Libre's cap wins over local rules).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from postventa.emulator import texts
from postventa.emulator.errors import MeliError, guide_error
from postventa.emulator.models import Conversation, Shipment

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
CONVERSATION_BLOCKED = "The conversation is blocked"
EXCEPTED_CASE = "This pack belongs to an excepted case, it is requested to use the messaging resource."
AI_ASSISTANT = "blocked_by_ai_assistant"


@dataclass(frozen=True)
class Block:
    """Why a conversation is closed to the seller, and what each route answers (`status` 403, or
    451 when the buyer deactivated the account: research §1.7)."""

    substatus: str
    guide_message: str
    send_message: str
    status: int = 403

    @property
    def guide_error(self) -> str:
        """The action guide's `error` for the block, as the error table writes it."""
        return "forbidden" if self.status == 403 else "Unavailable"


@dataclass(frozen=True)
class OptionRequest:
    """The body of `POST .../option`, as sent (types checked later)."""

    option_id: object
    template_id: object
    vars: object
    text: object


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


def option_caps(
    conversation: Conversation,
    shipment: Shipment,
    block: Block | None,
    other_closed_sites: frozenset[str],
) -> dict[str, int]:
    """Each offered option's `cap_available`, in Mercado Libre's order.

    All 0 while a block holds, in an agent thread (the seller cannot start it, research §2.8) or
    once the buyer has written; otherwise 1 until the guide is used. OTHER is 0 once the shipment is
    delivered on `other_closed_sites` (research §1.1). A control override replaces the rest.
    """
    options = available_options(conversation.site_id, shipment.logistic_type)
    if block is not None or conversation.agent_id is not None or conversation.buyer_has_written:
        return dict.fromkeys(options, 0)
    caps = {}
    for option in options:
        cap = 0 if conversation.guide_used else 1
        if (
            option == "OTHER"
            and shipment.status == "delivered"
            and conversation.site_id in other_closed_sites
        ):
            cap = 0
        caps[option] = conversation.cap_overrides.get(option, cap)
    return caps


def use_cap(conversation: Conversation, option: str) -> None:
    """A sent option uses up the guide, and one of a forced cap."""
    conversation.guide_used = True
    if option in conversation.cap_overrides:
        conversation.cap_overrides[option] = max(0, conversation.cap_overrides[option] - 1)


def check_not_excepted(conversation: Conversation) -> None:
    """400 `blocked_by_excepted_case` for a pack the guide does not apply to (research §1.1)."""
    if conversation.excepted:
        raise guide_error(400, "bad_request", EXCEPTED_CASE, "blocked_by_excepted_case")


def options_json(caps: dict[str, int]) -> dict[str, Any]:
    """`GET /messages/action_guide/packs/{pack}`: the options with their caps."""
    return {"options": [_option_json(option, cap) for option, cap in caps.items()]}


def caps_json(caps: dict[str, int]) -> list[dict[str, Any]]:
    """`GET .../caps_available`: a bare array of option ids and caps."""
    return [{"option_id": option, "cap_available": cap} for option, cap in caps.items()]


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
    caps: dict[str, int],
    today: dt.date,
) -> str:
    """The text the option sends, after the checks of the documented error table, in order."""
    if block is not None:
        raise guide_error(block.status, block.guide_error, block.guide_message, block.substatus)
    if conversation.agent_id is not None:
        raise guide_error(403, "forbidden", CONVERSATION_BLOCKED, AI_ASSISTANT)
    if conversation.buyer_has_written:
        raise guide_error(403, "forbidden", USE_MESSAGES, "blocked_by_conversation_use_message_api")
    option = request.option_id
    if not isinstance(option, str) or option not in caps:
        raise guide_error(404, "not_found", "The option selected is not valid", "invalid_option")
    if caps[option] <= 0:
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
