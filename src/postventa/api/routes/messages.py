"""POST /v2/orders/{orderId}/messages and the conversation reads around it."""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.api import openapi
from postventa.api.context import Context, context_of
from postventa.api.errors import STATUS_BY_KIND
from postventa.api.guard import (
    authorize_request,
    check_key_before_body,
    raw_response_headers,
    response_headers,
)
from postventa.api.idempotency import idempotency_key, send_once, stored_response
from postventa.api.intake import has_large_body
from postventa.api.params import read_parameters, read_query
from postventa.api.ratelimit import READ, SEND
from postventa.api.render import conversation_status_json, message_json, option_json
from postventa.api.routing import Routes
from postventa.domain.attachments import CONTENT_TYPES, download_file_name
from postventa.domain.errors import invalid
from postventa.domain.parameters import (
    API_KEY,
    ORDER_ID,
    READ_PARAMETERS,
    SEND_PARAMETERS,
    Parameters,
    parse_identifier,
)
from postventa.services import idempotency, reading
from postventa.services.idempotency import request_fingerprint
from postventa.services.messaging import CapsLookup, send_message
from postventa.store.idempotency import KeyLock

router = Routes(tags=["Messages"])
SEND_PATH = "/v2/orders/{orderId}/messages"


def path_id(raw: str, name: str, code: str) -> int:
    """An id from the path; malformed ids are a 400 (check 5), not a routing miss."""
    number = parse_identifier(raw)
    if number is None:
        raise invalid(code, f"'{name}' must be a positive integer.")
    return number


@router.post(
    SEND_PATH,
    summary="Send a message to the order's buyer",
    description=openapi.SEND_DESCRIPTION,
    responses=openapi.SEND_RESPONSES,
    extra=openapi.SEND_REQUEST,
)
async def send(request: Request) -> Response:
    """Checks 0–10 of the contract; 200 with the new message's id as a JSON string."""
    raw_order_id = request.path_params["orderId"]
    context = context_of(request)
    if has_large_body(request.headers):
        await check_key_before_body(request, context, read_query(request, (API_KEY,)), SEND)
    parameters = await read_parameters(
        request, SEND_PARAMETERS, max_part_bytes=context.settings.max_body_bytes
    )
    key = idempotency_key(request)
    decide = partial(_send, request, context, parameters, raw_order_id, key)
    return await context.guide.deciding(context.database, context.meli, context.clock, decide)


async def _send(
    request: Request,
    context: Context,
    parameters: Parameters,
    raw_order_id: str,
    key: str | None,
    caps: CapsLookup,
) -> Response:
    """The send's checks and its write, with Mercado Libre's caps as `caps` knows them."""
    if key is None:
        # The common case in one write transaction, shared with the sends of the moment: checks 1–4
        # read the key where 5–10 write.
        response = await context.sends.write(_GroupedSend(request, context, parameters, caps, raw_order_id))
        return _queued(request, context, response)
    account_id = await authorize_request(request, context, parameters, SEND)
    send_checks = partial(_send_checks, request, context, parameters, caps, account_id, raw_order_id)
    request_hash = request_fingerprint(request.method, raw_order_id, account_id, parameters)
    return await send_once(
        request, context, parameters, key=key, request_hash=request_hash, send_checks=send_checks
    )


class _GroupedSend:
    """A send's checks and write, run in a group's transaction (store/group_commit.py). If the group
    must be written again, checks 1–4 are not repeated: the key's rate limit counts a request once."""

    __slots__ = ("account_id", "caps", "context", "parameters", "raw_order_id", "request")

    def __init__(
        self, request: Request, context: Context, parameters: Parameters, caps: CapsLookup, raw_order_id: str
    ) -> None:
        self.request, self.context, self.parameters = request, context, parameters
        self.caps, self.raw_order_id = caps, raw_order_id
        self.account_id: int | None = None

    async def __call__(self, connection: AsyncConnection) -> Response:
        if self.account_id is None:
            self.account_id = await authorize_request(
                self.request, self.context, self.parameters, SEND, connection
            )
        return await _send_checks(
            self.request,
            self.context,
            self.parameters,
            self.caps,
            self.account_id,
            self.raw_order_id,
            None,
            connection=connection,
        )


async def _send_checks(
    request: Request,
    context: Context,
    parameters: Parameters,
    caps: CapsLookup,
    account_id: int,
    raw_order_id: str,
    lock: KeyLock | None,
    *,
    connection: AsyncConnection | None = None,
) -> Response:
    """Checks 5–10, in `connection` or in a write transaction of their own. With an idempotency key,
    the 200 is recorded in the transaction storing the message, so neither is ever kept without
    the other."""
    order_id = path_id(raw_order_id, "orderId", "order_id_invalid")
    given = parameters.raw(ORDER_ID)
    if given is not None and parse_identifier(given) != order_id:
        raise invalid(
            "order_id_mismatch", f"'orderId' {given} differs from the order in the path ({order_id})."
        )
    if connection is not None:
        return await _store_message(context, connection, parameters, caps, account_id, order_id, lock)
    async with context.database.transaction(write=True) as own_connection:
        response = await _store_message(context, own_connection, parameters, caps, account_id, order_id, lock)
    return _queued(request, context, response)


async def _store_message(
    context: Context,
    connection: AsyncConnection,
    parameters: Parameters,
    caps: CapsLookup,
    account_id: int,
    order_id: int,
    lock: KeyLock | None,
) -> Response:
    accepted = await send_message(
        connection,
        account_id=account_id,
        order_id=order_id,
        parameters=parameters,
        max_attachment_bytes=context.settings.max_attachment_bytes,
        now=context.clock(),
        caps=caps,
    )
    headers = {"Location": f"/v2/orders/{order_id}/messages/{accepted.message_id}"}
    if accepted.message_ignored:
        headers["X-Message-Ignored"] = "true"
    # The body is the id as a JSON string, written as such (JSONResponse would run json.dumps).
    response = Response(b'"%d"' % accepted.message_id, media_type="application/json", headers=headers)
    if lock is not None:
        await idempotency.complete(connection, lock, stored_response(response))
    return response


def _queued(request: Request, context: Context, response: Response) -> Response:
    """After the commit: wake the worker, and add the rate-limit headers."""
    context.on_message_queued()
    # Appended as raw headers: none of these names is set yet, and Starlette's MutableHeaders
    # rescans the whole list for each one set.
    response.raw_headers.extend(raw_response_headers(request))
    return response


@router.get(
    "/v2/orders/{orderId}/messages/options",
    summary="What each reason would get if sent now",
    responses=openapi.read_responses("SendOptions", "Each reason: can it be sent now, and if not, why."),
    extra=openapi.READ_QUERY,
)
async def options(request: Request) -> Response:
    """For each reason: can it be sent now, and if not, the status and message a send would get; with
    Mercado Libre's status of the conversation and its caps for the action guide (or why the local
    rules decided alone)."""
    context, account_id, order_id = await _read_guard(request)
    caps = await context.guide.answer(context.database, context.meli, account_id, order_id, context.clock())
    async with context.database.transaction() as connection:
        found = await reading.send_options(connection, account_id, order_id, context.clock(), caps.caps)
    body = {
        "OrderId": order_id,
        "ConversationStatus": conversation_status_json(found.status),
        "MarketplaceCaps": caps.to_json(),
        "Results": [option_json(option, STATUS_BY_KIND) for option in found.options],
    }
    return JSONResponse(body, headers=response_headers(request))


@router.get(
    "/v2/orders/{orderId}/messages",
    summary="The order's conversation, oldest first",
    responses=openapi.read_responses("Conversation", "The conversation, oldest first."),
    extra=openapi.READ_QUERY,
)
async def conversation(request: Request) -> Response:
    """Both directions, with delivery status; pack-mates share one conversation."""
    context, account_id, order_id = await _read_guard(request)
    async with context.database.transaction() as connection:
        found = await reading.conversation(connection, account_id, order_id, context.clock())
    results = [message_json(message, order_id) for message in found.messages]
    body: dict[str, Any] = {
        "OrderId": order_id,
        "PackId": found.order.data.pack_id,
        "ConversationStatus": conversation_status_json(found.status),
        "Total": len(results),
        "Results": results,
    }
    return JSONResponse(body, headers=response_headers(request))


@router.get(
    "/v2/orders/{orderId}/messages/{messageId}",
    summary="One message",
    responses=openapi.read_responses("Message", "The message."),
    extra=openapi.READ_QUERY,
)
async def one_message(request: Request) -> Response:
    """A message of the order's conversation."""
    context, account_id, order_id = await _read_guard(request)
    message_id = path_id(request.path_params["messageId"], "messageId", "message_id_invalid")
    async with context.database.transaction() as connection:
        found = await reading.message(connection, account_id, order_id, message_id)
    return JSONResponse(message_json(found, order_id), headers=response_headers(request))


@router.get(
    "/v2/orders/{orderId}/messages/{messageId}/attachment",
    summary="Download a message's attachment",
    responses=openapi.ATTACHMENT_RESPONSES,
    extra=openapi.READ_QUERY,
)
async def download_attachment(request: Request) -> Response:
    """The file as it was sent, with its name."""
    context, account_id, order_id = await _read_guard(request)
    message_id = path_id(request.path_params["messageId"], "messageId", "message_id_invalid")
    async with context.database.transaction() as connection:
        info, content = await reading.attachment(connection, account_id, order_id, message_id)
    headers = response_headers(request) | {
        "Content-Disposition": _content_disposition(download_file_name(info.name, info.extension)),
        "X-Content-Type-Options": "nosniff",
    }
    return Response(content, media_type=CONTENT_TYPES[info.extension], headers=headers)


async def _read_guard(request: Request) -> tuple[Context, int, int]:
    context = context_of(request)
    parameters = read_query(request, READ_PARAMETERS)
    account_id = await authorize_request(request, context, parameters, READ)
    return context, account_id, path_id(request.path_params["orderId"], "orderId", "order_id_invalid")


def _content_disposition(file_name: str) -> str:
    ascii_name = file_name.encode("ascii", "replace").decode().replace('"', "'")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name)}"
