"""Domain and store objects as the JSON of the Alephee contract (PascalCase, {Key, Value} pairs)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from postventa.domain.conversation import ConversationStatus
from postventa.domain.inbound import shown_author, shown_source
from postventa.domain.orders import MERCADOLIBRE
from postventa.services.admin import AccountDetail
from postventa.services.reading import ReasonOption
from postventa.store.messages import StoredMessage

MARKETPLACE_KEYS = {MERCADOLIBRE: 1}


def timestamp(value: dt.datetime | None) -> str | None:
    """`YYYY-MM-DDTHH:MM:SSZ`: UTC, whole seconds (the fraction dropped, never rounded up), a Z.

    As Alephee writes them, and as clients written against it parse them (`%Y-%m-%dT%H:%M:%SZ`);
    one fixed width, so comparing the strings compares the times. Every read of the API uses it.
    """
    if value is None:
        return None
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def message_json(message: StoredMessage, order_id: int) -> dict[str, Any]:
    """A message of a conversation, with its delivery status and timestamps."""
    attachment = message.attachment
    return {
        "Id": message.id,
        "OrderId": message.order_id,
        "Direction": message.direction.value,
        "Reason": {"Key": int(message.reason), "Value": message.reason.name} if message.reason else None,
        "Text": message.text,
        "Attachment": (
            {
                "Name": attachment.name,
                "Extension": attachment.extension,
                "Size": attachment.size,
                "Url": f"/v2/orders/{order_id}/messages/{message.id}/attachment",
            }
            if attachment
            else None
        ),
        "Status": message.status,
        "DateCreated": timestamp(message.created_at),
        "DateStatus": timestamp(message.status_changed_at),
        "DateSent": timestamp(message.sent_at),
        "DateFailed": timestamp(message.failed_at),
        "Attempts": message.attempts,
        "MarketplaceMessageId": message.marketplace_message_id,
        "ModerationReason": message.moderation_reason,
        "ErrorCode": message.error_code,
        "ErrorMessage": message.error_message,
        "Source": shown_source(message.direction.value, message.source).value,
        "Author": shown_author(message.direction.value, message.author).value,
        "ReadAt": timestamp(message.read_at),
    }


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
