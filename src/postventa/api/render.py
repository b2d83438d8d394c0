"""Domain and store objects as the JSON of the Alephee contract (PascalCase, {Key, Value} pairs)."""

from __future__ import annotations

from typing import Any

from postventa.domain.conversation import ConversationStatus
from postventa.services.admin import AccountDetail
from postventa.services.reading import ReasonOption
from postventa.services.rendering import MARKETPLACE_KEYS as MARKETPLACE_KEYS
from postventa.services.rendering import message_json as message_json
from postventa.services.rendering import timestamp as timestamp


def option_json(option: ReasonOption, status_of: dict[Any, int]) -> dict[str, Any]:
    """One reason of GET …/messages/options."""
    refusal = option.refusal
    rule = option.reason.rule
    return {
        "Reason": {"Key": int(option.reason), "Value": option.reason.name},
        "TextMode": rule.text_mode.value,
        "CharLimit": 350 if rule.text_mode.value == "free_text" else None,
        "Available": refusal is None,
        "Status": 200 if refusal is None else status_of[refusal.kind],
        "Code": None if refusal is None else refusal.code,
        "Message": None if refusal is None else refusal.message,
        "Template": option.preview,
    }


def account_json(detail: AccountDetail) -> dict[str, Any]:
    """An account and its Mercado Libre link's seller and status (the admin API and `accounts show`)."""
    link = detail.link
    return {
        "Id": detail.account.id,
        "Name": detail.account.name,
        "BusinessName": detail.account.business_name,
        "DocType": detail.account.doc_type,
        "DocNumber": detail.account.doc_number,
        "MercadoLibre": {
            "SellerId": link.seller_id,
            "SiteId": link.site.value,
            "Status": link.status.value,
            "StatusReason": link.status_reason,
            "StatusChangedAt": timestamp(link.status_changed_at),
        }
        if link is not None
        else None,
    }


def conversation_status_json(status: ConversationStatus) -> dict[str, Any]:
    """Mercado Libre's status of the conversation: `active`, `blocked` (with its substatus), `unknown`."""
    return {"Status": status.status, "Substatus": status.substatus, "CheckedAt": timestamp(status.checked_at)}
