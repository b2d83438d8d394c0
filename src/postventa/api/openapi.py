"""OpenAPI descriptions of what FastAPI cannot infer: the send's three ways and the shared errors.

The send endpoint reads its parameters itself (any source, any casing), so its query parameters,
bodies and examples are declared here for /docs.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["Status", "Message", "Code"],
    "properties": {
        "Status": {"type": "integer", "example": 409},
        "Message": {
            "type": "string",
            "example": "The buyer has not replied to the last seller message; wait ...",
        },
        "Code": {"type": "string", "example": "awaiting_buyer_reply"},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("A parameter is missing or invalid (names it)."),
    401: _error("API key missing, unknown or revoked."),
    403: _error("The account is not associated with the API key."),
    404: _error("No such order (or message) in this account."),
    429: _error("Rate limit of the API key exceeded; see Retry-After."),
    500: {"description": "Unexpected failure", "content": {"text/plain": {"schema": {"type": "string"}}}},
}

SEND_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Stored and queued for delivery; the body is the new message's id as a JSON string.",
        "content": {"application/json": {"schema": {"type": "string", "example": "1042"}}},
        "headers": {
            "Location": {"schema": {"type": "string"}, "description": "The message resource."},
            "X-Message-Ignored": {
                "schema": {"type": "string"},
                "description": "'true' when a template reason came with a 'message', which was not sent.",
            },
        },
    },
    **ERROR_RESPONSES,
    409: _error(
        "The conversation does not allow this message now (waiting for the buyer, attachment rules)."
    ),
    412: _error("The order cannot take this reason (marketplace, country, logistic type, status, window)."),
    413: _error("The request body is over the limit."),
    415: _error("The body is not JSON, multipart/form-data or application/x-www-form-urlencoded."),
}


def _query(
    name: str, description: str, *, schema_type: str = "string", required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": schema_type},
    }


_CREDENTIALS = [
    _query("API_KEY", "The API key (also accepted in the body or the X-API-Key header).", required=False),
    _query("accountId", "The account the request acts on.", schema_type="integer", required=False),
]

READ_QUERY: dict[str, Any] = {"parameters": _CREDENTIALS}

ORDERS_QUERY: dict[str, Any] = {
    "parameters": [
        *_CREDENTIALS,
        _query("limit", "Page size, 1 to 1000 (default 100).", schema_type="integer"),
        _query("offset", "Orders to skip (default 0).", schema_type="integer"),
        _query("statusType", "0 New, 1 Pending, 2 Closed, 99 Cancelled."),
        _query("dateCreatedFrom", "Created at or after, 'yyyy-mm-dd HH:mm' (UTC)."),
        _query("idFrom", "Smallest order id.", schema_type="integer"),
        _query("idTo", "Largest order id.", schema_type="integer"),
        _query("sort", "Id (default) or dateCreated."),
    ]
}

_SEND_FIELDS: dict[str, Any] = {
    "API_KEY": {"type": "string"},
    "accountId": {"type": "integer"},
    "orderId": {"type": "integer", "description": "Optional; must equal the path's."},
    "messageOptions": {
        "description": "1 REQUEST_VARIANTS, 2 REQUEST_BILLING_INFO, 3 SEND_INVOICE_LINK, 4 OTHER, "
        "5 DELIVERY_PROMISE (number or name).",
        "oneOf": [{"type": "integer", "minimum": 1, "maximum": 5}, {"type": "string"}],
    },
    "message": {"type": "string", "maxLength": 350, "description": "Free text (reasons 3 and 4)."},
}

SEND_REQUEST: dict[str, Any] = {
    "parameters": [
        *_CREDENTIALS,
        _query("orderId", "Optional; must equal the path's.", schema_type="integer"),
        _query("messageOptions", "The reason: 1..5 or its name (OTHER)."),
        _query("message", "Free text, at most 350 characters (reasons 3 and 4)."),
    ],
    "requestBody": {
        "required": False,
        "description": "Parameters may come in the query string alone, in a JSON body (with a base64 "
        "attachment), or in a form (with a file part). Names are case-insensitive.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        **_SEND_FIELDS,
                        "fileBase64": {"type": "string", "format": "byte"},
                        "documentName": {"type": "string", "maxLength": 200},
                        "documentExtension": {"type": "string", "enum": ["pdf", "jpg", "jpeg", "png", "txt"]},
                    },
                },
                "examples": {
                    "free_text": {
                        "summary": "OTHER with free text",
                        "value": {"messageOptions": 4, "message": "¡Hola! Tu paquete sale mañana."},
                    },
                    "template": {
                        "summary": "A template reason",
                        "value": {"messageOptions": "REQUEST_BILLING_INFO"},
                    },
                    "base64_attachment": {
                        "summary": "OTHER with a base64 attachment (after the buyer answered)",
                        "value": {
                            "messageOptions": 4,
                            "message": "Te adjunto la factura.",
                            "fileBase64": "JVBERi0xLjQKJcOkw7zDtsOfCg==",
                            "documentName": "factura-0001",
                            "documentExtension": "pdf",
                        },
                    },
                },
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {**_SEND_FIELDS, "file": {"type": "string", "format": "binary"}},
                },
                "examples": {
                    "file": {
                        "summary": "OTHER with a file part",
                        "value": {"messageOptions": "4", "message": "Te adjunto la factura."},
                    }
                },
            },
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": _SEND_FIELDS},
                "examples": {
                    "form": {"summary": "A plain form", "value": {"messageOptions": "4", "message": "Hola"}}
                },
            },
        },
    },
}

SEND_DESCRIPTION = """\
Checks the request in the contract's order (key 401, account 400/403, rate limit 429, order id 400,
order 404, parameters 400, order preconditions 412, conversation 409), then stores the message with
status `queued` for delivery to Mercado Libre.

Three ways to send:

* **query only**: `POST /v2/orders/123/messages?API_KEY=…&accountId=1&messageOptions=4&message=Hola`
* **JSON** with an optional base64 attachment: `fileBase64`, `documentName`, `documentExtension`
* **multipart/form-data** with an optional `file` part

Parameter names are case-insensitive and may be mixed across sources; the same name with two
different values is refused.
"""
