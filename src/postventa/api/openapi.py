"""OpenAPI descriptions of what FastAPI cannot infer: the send's three ways and the shared errors.

The send endpoint reads its parameters itself (any source, any casing), so its query parameters,
bodies and examples are declared here for /docs. Every operation's answers are declared too (the
bodies are in `openapi_bodies.py`), and `install` completes what FastAPI generates: the refusals
of the edge that any operation may get, path ids as the integers they are, and no 422 (this API
answers 400 for invalid input). The schemathesis test holds the service to this document.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from postventa.api.openapi_bodies import COMPONENTS, ID, nullable, ref
from postventa.api.routing import DocumentedRoute

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
    503: _error(
        "The database cannot take the request now (database_unavailable), the rate limit cannot "
        "be checked (rate_limit_unavailable), or too many large bodies are being read (server_busy); "
        "retry after Retry-After."
    ),
    500: {"description": "Unexpected failure", "content": {"text/plain": {"schema": {"type": "string"}}}},
}

RATE_LIMIT_HEADERS: dict[str, Any] = {
    name: {"schema": {"type": "integer"}, "description": description}
    for name, description in (
        ("x-ratelimit-limit", "Requests allowed per window for this key and endpoint class."),
        ("x-ratelimit-remaining", "Requests left in the window."),
        ("x-ratelimit-reset", "Seconds until the window frees a request."),
        ("x-ratelimit-retryafter", "Seconds to wait before retrying; -1 when allowed."),
    )
}


def read_responses(component: str, description: str) -> dict[int | str, dict[str, Any]]:
    """A read's 200 (a body of `openapi_bodies.COMPONENTS`) and the public API's refusals."""
    ok = {
        "description": description,
        "content": {"application/json": {"schema": ref(component)}},
        "headers": RATE_LIMIT_HEADERS,
    }
    return {200: ok, **ERROR_RESPONSES}


ATTACHMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file as it was sent; its type is its extension's.",
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}}
            for media_type in ("application/pdf", "image/jpeg", "image/png", "text/plain")
        },
        "headers": {
            "Content-Disposition": {
                "schema": {"type": "string"},
                "description": "attachment, with the file's name (UTF-8 in filename*).",
            },
            **RATE_LIMIT_HEADERS,
        },
    },
    **ERROR_RESPONSES,
}

_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("The body or a path id is invalid (names the field)."),
    401: _error("The admin bearer token is missing or wrong."),
    404: _error(
        "The admin API is off (no POSTVENTA_ADMIN_TOKEN), or no such account, key, order, console user "
        "or webhook endpoint."
    ),
    500: ERROR_RESPONSES[500],
}
_JSON_BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    415: _error("The body is not application/json."),
}


def admin_responses(
    status: int, description: str, body: dict[str, Any] | None = None, *, reads_body: bool = True
) -> dict[int | str, dict[str, Any]]:
    """An admin operation's success (with its body, if any) and the admin API's refusals."""
    success: dict[str, Any] = {"description": description}
    if body is not None:
        success["content"] = {"application/json": {"schema": body}}
    return {status: success, **_ADMIN_ERRORS, **(_JSON_BODY_ERRORS if reads_body else {})}


def json_request_body(model: type[BaseModel]) -> dict[str, Any]:
    """The `openapi_extra` of a route that reads its JSON body itself (the admin API's
    `validated_body`): FastAPI sees no body parameter, so the document would show none. The body is
    `model`'s JSON Schema, its nested models referenced in `components/schemas` (where
    `complete_document` moves their definitions)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


MARKETPLACE_ERRORS: dict[int | str, dict[str, Any]] = {
    502: _error("Mercado Libre could not be reached or failed; nothing was changed."),
}
EMAIL_TAKEN_ERRORS: dict[int | str, dict[str, Any]] = {
    409: _error("A console user with this email exists already (email_taken)."),
}
LINK_REVOKED_ERRORS: dict[int | str, dict[str, Any]] = {
    409: _error(
        "The account's link needs relinking (marketplace_link_revoked): Mercado Libre refused its "
        "authorization; link it again with PUT /admin/accounts/{accountId}/mercadolibre."
    ),
}

WEBHOOK_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["topic", "resource", "user_id"],
                    "properties": {
                        "topic": {"type": "string", "minLength": 1, "example": "messages"},
                        "resource": {"type": "string", "minLength": 1, "maxLength": 200},
                        "user_id": {**ID, "description": "The seller's Mercado Libre id."},
                    },
                    "description": "Mercado Libre's notification; other fields are ignored.",
                }
            }
        },
    }
}

WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Received. Accepted is false for sellers or topics this service does not follow.",
        "content": {"application/json": {"schema": ref("NotificationAnswer")}},
    },
    400: _error("The notification is malformed (not JSON, or no topic, resource or user_id)."),
    **_JSON_BODY_ERRORS,
    500: ERROR_RESPONSES[500],
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
            "Idempotent-Replayed": {
                "schema": {"type": "string", "enum": ["true"]},
                "description": "Present when this is the recorded answer to an earlier request with "
                "the same Idempotency-Key and payload.",
            },
        },
    },
    **ERROR_RESPONSES,
    409: _error(
        "The conversation does not allow this message now (waiting for the buyer, attachment rules), "
        "or a request with the same Idempotency-Key is still being processed (idempotency_key_in_use)."
    ),
    422: _error("The Idempotency-Key was already used for a different request (idempotency_key_reused)."),
    412: _error("The order cannot take this reason (marketplace, country, logistic type, status, window)."),
    413: _error("The request body is over the limit."),
    415: _error("The body is not JSON, multipart/form-data or application/x-www-form-urlencoded."),
}


_EMPTY: dict[str, Any] = {"type": "string", "maxLength": 0}


def _query(
    name: str,
    description: str,
    *,
    schema_type: str = "string",
    required: bool = False,
    bounds: tuple[int, int] | None = None,
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": schema_type}
    if bounds is not None:
        schema |= {"minimum": bounds[0], "maximum": bounds[1]}
    if schema_type == "integer":
        # An empty value (`?accountId=`) is an absent one, as for every parameter.
        schema = {"anyOf": [schema, _EMPTY]}
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


_CREDENTIALS = [
    _query("API_KEY", "The API key (also accepted in the body or the X-API-Key header).", required=False),
    _query("accountId", "The account the request acts on.", schema_type="integer", required=False),
]

READ_QUERY: dict[str, Any] = {"parameters": _CREDENTIALS}

KEY_QUERY: dict[str, Any] = {"parameters": _CREDENTIALS[:1]}  # the account is in the path

PRODUCTS_QUERY: dict[str, Any] = {
    "parameters": [
        *_CREDENTIALS,
        _query("limit", "Page size, 1 to 1000 (default 100).", schema_type="integer", bounds=(1, 1000)),
        _query("offset", "Products to skip (default 0).", schema_type="integer", bounds=(0, 2**62)),
    ]
}

ORDERS_QUERY: dict[str, Any] = {
    "parameters": [
        *_CREDENTIALS,
        _query("limit", "Page size, 1 to 1000 (default 100).", schema_type="integer", bounds=(1, 1000)),
        _query("offset", "Orders to skip (default 0).", schema_type="integer", bounds=(0, 2**62)),
        _query("statusType", "0 New, 1 Pending, 2 Closed, 99 Cancelled (or the name, any case)."),
        _query(
            "dateCreatedFrom",
            "Created at or after (inclusive): 'yyyy-mm-dd HH:mm' (UTC), or ISO 8601 "
            "('2024-05-01T12:00:00Z'; without a zone, UTC).",
        ),
        _query("idFrom", "Smallest order id.", schema_type="integer", bounds=(1, ID["maximum"])),
        _query("idTo", "Largest order id.", schema_type="integer", bounds=(1, ID["maximum"])),
        _query("sort", "Id (default) or dateCreated (ties in the same second by Id)."),
    ]
}

_EXTENSION: dict[str, Any] = {
    "type": "string",
    "description": "pdf, jpg, jpeg, png or txt, with or without the dot, any case.",
    # Empty is absent, like any parameter.
    "pattern": r"^$|^\s*\.?([Pp][Dd][Ff]|[Jj][Pp][Ee]?[Gg]|[Pp][Nn][Gg]|[Tt][Xx][Tt])\s*$",
}

# An id may come as text ("5" is 5); an empty value is an absent one.
_DIGITS: dict[str, Any] = {"type": "string", "pattern": "^[0-9]*$"}

_SEND_FIELDS: dict[str, Any] = {
    "API_KEY": {"type": "string"},
    "accountId": {"anyOf": [ID, _DIGITS]},
    "orderId": {"anyOf": [ID, _DIGITS], "description": "Optional; must equal the path's."},
    "messageOptions": {
        "description": "1 REQUEST_VARIANTS, 2 REQUEST_BILLING_INFO, 3 SEND_INVOICE_LINK, 4 OTHER, "
        "5 DELIVERY_PROMISE (number or name).",
        "oneOf": [{"type": "integer", "minimum": 1, "maximum": 5}, {"type": "string"}],
    },
    "message": {
        "type": ["string", "number"],
        "maxLength": 350,
        "description": "Free text (reasons 3 and 4); a number is read as its text.",
    },
}

SEND_REQUEST: dict[str, Any] = {
    "parameters": [
        *_CREDENTIALS,
        _query("orderId", "Optional; must equal the path's.", schema_type="integer"),
        _query("messageOptions", "The reason: 1..5 or its name (OTHER)."),
        _query("message", "Free text, at most 350 characters (reasons 3 and 4)."),
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "Makes retries safe: the same key with the same request replays the first "
            "answer (with 'Idempotent-Replayed: true') for 24 hours instead of sending again. "
            "1 to 255 printable ASCII characters, or a quoted string; scoped to the API key.",
            "schema": {"type": "string", "pattern": "^[!#-~]{1,255}$"},
        },
    ],
    "requestBody": {
        "required": False,
        "description": "Parameters may come in the query string alone, in a JSON body (with a base64 "
        "attachment), or in a form (with a file part). Names are case-insensitive.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A null (or empty) field is the same as an absent one.",
                    "properties": {
                        name: nullable(schema)
                        for name, schema in {
                            **_SEND_FIELDS,
                            "fileBase64": {"type": "string", "format": "byte"},
                            "documentName": {"type": "string", "maxLength": 200},
                            "documentExtension": _EXTENSION,
                        }.items()
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

EDGE_RESPONSES: dict[str, dict[str, Any]] = {
    "400": _error("The request could not be read (malformed HTTP, encoding or body)."),
    "408": _error(
        "The request head, or the next part of its body, did not arrive in time (request_timeout)."
    ),
    "413": _error("The request body is over the limit."),
    "414": _error("The query string is over the limit."),
    "431": _error("Too many header fields, or too many header bytes (headers_too_large)."),
    "500": ERROR_RESPONSES[500],
}
PATH_IDS = frozenset({"orderId", "messageId", "accountId", "keyId", "webhookId", "userId"})
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def install(app: FastAPI) -> None:
    """Serve the generated document completed by `complete_document` with the plain routes'
    operations (api/routing.py)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            documented = [route for route in app.routes if isinstance(route, DocumentedRoute)]
            app.openapi_schema = complete_document(generate(), documented)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def complete_document(document: dict[str, Any], documented: Iterable[DocumentedRoute] = ()) -> dict[str, Any]:
    """What FastAPI cannot know about this API, written into its generated document.

    FastAPI documents only its own routes: the plain routes' operations come from their
    declarations (`documented`), their path ids written as the integers they are. FastAPI's
    routes declare a 422 this API never answers (invalid input is a 400 with the error body).
    Every operation may also get the edge's refusals (api/edge.py) and a 500. Request models'
    nested definitions are moved to `components/schemas`, where their references point. Works on a
    copy: the generated document shares dictionaries with the routes' declarations.
    """
    document = copy.deepcopy(document)
    paths = document.setdefault("paths", {})
    for route in documented:
        paths.setdefault(route.path, {})[route.method] = _declared_operation(route)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(COMPONENTS)
    for operation in _operations(document):
        responses = operation.setdefault("responses", {})
        if "HTTPValidationError" in str(responses.get("422", "")):
            del responses["422"]
        for status, response in EDGE_RESPONSES.items():
            responses.setdefault(status, response)
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "path" and parameter.get("name") in PATH_IDS:
                parameter["schema"] = dict(ID)
        for media in operation.get("requestBody", {}).get("content", {}).values():
            schemas.update(media.get("schema", {}).pop("$defs", {}))
    return document


def _declared_operation(route: DocumentedRoute) -> dict[str, Any]:
    """A plain route's operation: its path parameters, then what its declaration says."""
    operation = copy.deepcopy(route.operation)
    in_path = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.path_parameters
    ]
    parameters = [*in_path, *operation.pop("parameters", [])]
    if parameters:
        operation["parameters"] = parameters
    return operation


def _operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in _HTTP_METHODS:
                yield operation
