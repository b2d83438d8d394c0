"""JSON Schemas of the bodies the API answers, as `render.py` and the routes write them.

They are the OpenAPI document's `components/schemas`: /docs shows them, and the schemathesis test
holds every response to them, so a field renamed in one place and not the other fails CI.
"""

from __future__ import annotations

from typing import Any

from postventa.domain.console_users import ROLES

ID: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
"""Ids (orders, messages, accounts, keys) are positive 64-bit integers."""


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def ref(name: str) -> dict[str, Any]:
    """A reference to one of COMPONENTS."""
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "required": list(properties), "properties": properties}
    if description:
        schema["description"] = description
    return schema


_TEXT = {"type": "string"}
_INT = {"type": "integer"}
_TIMESTAMP = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$",
    "description": "UTC in whole seconds with a Z (YYYY-MM-DDTHH:MM:SSZ), as Alephee writes it.",
}


def _key_value(description: str) -> dict[str, Any]:
    return _object({"Key": _INT, "Value": _TEXT}, description)


_MARKETPLACE = _object(
    {"Key": _INT, "Value": _TEXT, "Channel": nullable(_TEXT)},
    "1 Mercado Libre, 0 another marketplace; Value is its name; Channel is not known (null).",
)

_ORDER = _object(
    {
        "Id": ID,
        "ExternalOrderId": _TEXT,
        "PackId": nullable(
            {"type": "string", "description": "Mercado Libre's pack id, as Alephee types it."}
        ),
        "SellerAccount": _object(
            {"Id": ID, "OwnCode": nullable(_TEXT), "Name": _TEXT, "BusinessName": nullable(_TEXT)},
            "The account the order belongs to.",
        ),
        "MarketPlace": _MARKETPLACE,
        "Marketplace": _MARKETPLACE,
        "SiteId": nullable(_TEXT),
        "Status": _key_value("Alephee's status code and name."),
        "StatusType": nullable(_key_value("0 New, 1 Pending, 2 Closed, 99 Cancelled.")),
        "IsCancelled": {"type": "boolean", "description": "Whether the status type is 99 Cancelled."},
        "Shipping": _object(
            {
                "ExternalShippingId": nullable({**_INT, "description": "Mercado Libre's shipment id."}),
                "LogisticType": nullable(_key_value("Alephee's logistic type.")),
                "EstimatedDeliveryDate": nullable(
                    {**_TIMESTAMP, "description": "The start of the promised day on the site's clock."}
                ),
                "EstimatedDelivery": nullable(
                    _object(
                        {
                            "Date": {"type": "string", "format": "date"},
                            "FromHour": _INT,
                            "ToHour": _INT,
                        },
                        "The promised day and hours on the site's calendar (postventa's own).",
                    )
                ),
            }
        ),
        "Buyer": _object(
            {
                "Code": nullable({**_INT, "description": "The marketplace's numeric buyer id."}),
                "Owncode": nullable(_TEXT),
                "Nickname": nullable(_TEXT),
                "Name": nullable(_TEXT),
            }
        ),
        "DateCreated": _TIMESTAMP,
        "DateClosed": nullable(_TIMESTAMP),
        "LastUpdated": nullable(_TIMESTAMP),
    },
    "An order (GET /v2/orders/{orderId}), in Alephee's field names and types.",
)

_MESSAGE = _object(
    {
        "Id": ID,
        "OrderId": ID,
        "Direction": {"type": "string", "enum": ["outbound", "inbound"]},
        "Reason": nullable(_key_value("The reason (messageOptions) of a seller message.")),
        "Text": _TEXT,
        "Attachment": nullable(
            _object(
                {
                    "Name": _TEXT,
                    "Extension": _TEXT,
                    "Size": _INT,
                    "Url": {"type": "string", "description": "Where to download it."},
                }
            )
        ),
        "Status": {
            "type": "string",
            "enum": ["queued", "sending", "pending_moderation", "sent", "moderated", "failed", "received"],
        },
        "DateCreated": _TIMESTAMP,
        "DateStatus": nullable(_TIMESTAMP),
        "DateSent": nullable(_TIMESTAMP),
        "DateFailed": nullable(_TIMESTAMP),
        "Attempts": _INT,
        "MarketplaceMessageId": nullable(_TEXT),
        "ModerationReason": nullable(_TEXT),
        "ErrorCode": nullable(_TEXT),
        "ErrorMessage": nullable(_TEXT),
        "Source": {
            "type": "string",
            "enum": ["postventa", "marketplace"],
            "description": "Where it was written: through postventa, or on Mercado Libre (the buyer's, "
            "the AI agent's, or a seller message from the seller center or another tool).",
        },
        "Author": {"type": "string", "enum": ["seller", "buyer", "agent"]},
        "ReadAt": nullable(_TIMESTAMP),
    },
    "A message of a conversation, either direction, with its delivery status.",
)

_OPTION = _object(
    {
        "Reason": _key_value("The reason (messageOptions)."),
        "TextMode": {"type": "string", "enum": ["free_text", "template"]},
        "CharLimit": nullable(_INT),
        "Available": {"type": "boolean"},
        "Status": {"type": "integer", "description": "What a send would get now: 200, or 412/409."},
        "Code": nullable(_TEXT),
        "Message": nullable(_TEXT),
        "Template": nullable({"type": "string", "description": "The text a template reason would send."}),
    },
    "What one reason would get if sent now (with a valid text and no attachment).",
)

_SORT = _object({"Id": _TEXT, "Name": _TEXT})

_ACCOUNT_EXTRAS = {
    "BusinessName": nullable(_TEXT),
    "DocType": nullable(_TEXT),
    "DocNumber": nullable(_TEXT),
}


def _whole_list(item: dict[str, Any], description: str) -> dict[str, Any]:
    """Alephee's envelope holding every record: Paging from offset 0 with Limit = Total."""
    paging = _object({"Limit": _INT, "Offset": _INT, "Total": _INT})
    return _object(
        {"Paging": paging, "Total": _INT, "Results": {"type": "array", "items": item}}, description
    )


# Issue 17: what Alephee's clients read besides orders (api/render_accounts.py).
_ALEPHEE_LISTS: dict[str, dict[str, Any]] = {
    "AccountsList": _whole_list(
        _object({"Id": ID, "Name": _TEXT, **_ACCOUNT_EXTRAS}),
        "The accounts the API key opens, all in one answer (Alephee's envelope).",
    ),
    "MarketplacesList": _whole_list(
        _object(
            {
                "Id": {**_INT, "description": "1 Mercado Libre, as its orders' MarketPlace.Key."},
                "Name": _TEXT,
                "SiteId": _TEXT,
                "SellerId": ID,
                "LinkStatus": {"type": "string", "enum": ["active", "needs_relink"]},
            }
        ),
        "The account's marketplace links; none when it is not linked.",
    ),
    "StoresList": _whole_list(
        {"type": "object", "description": "Alephee's store (postventa holds none)."},
        "The account's stores: always none.",
    ),
    "ProductsPage": _object(
        {
            "Paging": _object({"Limit": _INT, "Offset": _INT, "Total": _INT}),
            "SortBy": {"type": "null"},
            "AvailableSorts": {"type": "array", "maxItems": 0},
            "Total": _INT,
            "Results": {"type": "array", "maxItems": 0},
        },
        "Alephee's products envelope, always empty: postventa holds no catalogue.",
    ),
}

_EVENTS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "The event types sent to it (docs/webhooks.md).",
}

# Issue 20: the admin API's webhook endpoints (api/routes/admin_webhooks.py); secrets only when made.
_WEBHOOKS: dict[str, dict[str, Any]] = {
    "WebhookCreated": _object(
        {
            "Id": ID,
            "Url": _TEXT,
            "Events": _EVENTS,
            "Secret": {"type": "string", "description": "whsec_ and the key in base64; shown only here."},
        },
        "A new endpoint and its signing secret.",
    ),
    "WebhookEndpoint": _object(
        {
            "Id": ID,
            "AccountId": ID,
            "Url": _TEXT,
            "Events": _EVENTS,
            "Enabled": {"type": "boolean"},
            "DisabledReason": nullable(_TEXT),
            "DisabledAt": nullable(_TIMESTAMP),
            "CreatedAt": _TIMESTAMP,
            "LastSuccessAt": nullable(_TIMESTAMP),
            "FailingSince": nullable(_TIMESTAMP),
            "PreviousSecretExpiresAt": nullable(
                {**_TIMESTAMP, "description": "Until when the rotated secret still signs beside the new one."}
            ),
        },
        "An endpoint (never its secret).",
    ),
    "WebhookEndpoints": _object({"Results": {"type": "array", "items": ref("WebhookEndpoint")}}),
    "WebhookSecret": _object(
        {
            "Id": ID,
            "Secret": {"type": "string", "description": "The new secret; shown only here."},
            "PreviousSecretExpiresAt": nullable(_TIMESTAMP),
        },
        "The endpoint's new secret; the old one signs beside it until PreviousSecretExpiresAt.",
    ),
    "WebhookAttempts": _object(
        {
            "Results": {
                "type": "array",
                "items": _object(
                    {
                        "Id": ID,
                        "WebhookId": {"type": "string", "description": "The event's webhook-id."},
                        "EventType": _TEXT,
                        "Attempt": {"type": "integer", "minimum": 1},
                        "StartedAt": _TIMESTAMP,
                        "DurationMs": {"type": "integer", "minimum": 0},
                        "HttpStatus": nullable({**_INT, "description": "null: no answer."}),
                        "Error": nullable(_TEXT),
                        "DeliveryStatus": {
                            "type": "string",
                            "enum": ["pending", "sending", "delivered", "failed"],
                        },
                    }
                ),
            }
        },
        "The endpoint's delivery attempts, newest first.",
    ),
}

# Issue 19: the operator console's users (api/routes/admin_users.py); never a password or its hash.
_CONSOLE_USERS: dict[str, dict[str, Any]] = {
    "ConsoleUser": _object(
        {
            "Id": ID,
            "Email": {"type": "string", "description": "In lower case."},
            "AccountIds": {"type": "array", "items": ID, "description": "The accounts they may see."},
            "Role": {"type": "string", "enum": list(ROLES)},
        },
        "A person who signs in to the operator console.",
    ),
    "ConsoleUsers": _object({"Results": {"type": "array", "items": ref("ConsoleUser")}}),
}

COMPONENTS: dict[str, dict[str, Any]] = {
    "Order": _ORDER,
    "OrdersPage": _object(
        {
            "Paging": _object({"Limit": _INT, "Offset": _INT, "Total": _INT}),
            "SortBy": _SORT,
            "AvailableSorts": {"type": "array", "items": _SORT},
            "Total": _INT,
            "Results": {"type": "array", "items": ref("Order")},
        },
        "A page of orders (Alephee's envelope).",
    ),
    "Message": _MESSAGE,
    "Conversation": _object(
        {
            "OrderId": ID,
            "PackId": nullable(_INT),
            "Total": _INT,
            "Results": {"type": "array", "items": ref("Message")},
        },
        "The order's conversation, oldest first.",
    ),
    "ReasonOption": _OPTION,
    "SendOptions": _object({"OrderId": ID, "Results": {"type": "array", "items": ref("ReasonOption")}}),
    "Account": _object({"Id": ID, "Name": _TEXT}),
    "Accounts": _object({"Results": {"type": "array", "items": ref("Account")}}),
    "AccountDetail": _object(
        {
            "Id": ID,
            "Name": _TEXT,
            **_ACCOUNT_EXTRAS,
            "MercadoLibre": nullable(
                _object(
                    {
                        "SellerId": ID,
                        "SiteId": _TEXT,
                        "Status": {"type": "string", "enum": ["active", "needs_relink"]},
                        "StatusReason": nullable(_TEXT),
                        "StatusChangedAt": nullable(_TIMESTAMP),
                    },
                    "The seller and the link's status; needs_relink: link the account again.",
                )
            ),
        },
        "An account and its Mercado Libre link (never credentials or tokens).",
    ),
    "ImportedOrders": _object(
        {"Results": {"type": "array", "items": _object({"Id": ID, "ExternalOrderId": _TEXT})}}
    ),
    "ApiKeyCreated": {
        "type": "object",
        "required": ["Id", "ApiKey", "AccountIds"],
        "properties": {
            "Id": ID,
            "ApiKey": {"type": "string", "description": "Shown only here."},
            "AccountIds": {"type": "array", "items": ID},
            "RateLimits": nullable(_TEXT),
        },
    },
    "ApiKeyLimits": _object({"Id": ID, "RateLimits": nullable(_TEXT)}),
    "Created": _object({"Id": ID}),
    "MercadoLibreLink": _object({"AccountId": ID, "Linked": {"type": "boolean"}}),
    "MercadoLibreSync": _object({"Imported": {"type": "integer", "minimum": 0}}),
    "NotificationAnswer": _object({"Status": _INT, "Accepted": {"type": "boolean"}}),
    **_ALEPHEE_LISTS,
    **_WEBHOOKS,
    **_CONSOLE_USERS,
}
