"""Messaging routes (research §2, §3): read a conversation, send a message, read one message,
upload and download attachments. Blocks (research §2.5) come from `blocking`; every read shows a
message's current moderation, including a late verdict (research §2.10)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from postventa.emulator import attachments, blocking, messaging
from postventa.emulator.deps import EmulatorDep, SellerDep, is_true, owned_conversation, parse_int, read_json
from postventa.emulator.errors import MeliError, generic_error, send_error
from postventa.emulator.models import Conversation, Seller
from postventa.emulator.render import conversation_status_json, legacy_message_json, message_json
from postventa.emulator.state import EmulatorState

router = APIRouter()
DEFAULT_PAGE_LIMIT = 10
_MESSAGE_ID = re.compile(r"[0-9a-f]{32}")


@router.get("/messages/packs/{pack_id}/sellers/{seller_id}")
async def read_conversation(
    pack_id: str, seller_id: str, request: Request, seller: SellerDep, emulator: EmulatorDep
) -> dict[str, Any]:
    """A page of the conversation, newest first; marks it read unless `mark_as_read=false`."""
    params = request.query_params
    offset, limit = _paging(params.get("offset"), params.get("limit"))
    mark = params.get("mark_as_read", "true").strip().lower() != "false"
    state = emulator.state
    async with state.lock:
        conversation = _conversation(
            state, pack_id, seller_id, seller, _read_forbidden(pack_id), _read_missing
        )
        block = blocking.block_of(state, conversation)
        page = messaging.conversation_page(conversation, limit, offset, mark_as_read=mark)
        return {
            "paging": {"limit": limit, "offset": offset, "total": len(conversation.messages)},
            "conversation_status": conversation_status_json(conversation, block),
            "messages": [message_json(message) for message in page],
            "seller_max_message_length": messaging.SELLER_MAX_MESSAGE_LENGTH,
            "buyer_max_message_length": messaging.BUYER_MAX_MESSAGE_LENGTH,
        }


@router.post("/messages/packs/{pack_id}/sellers/{seller_id}", status_code=201)
async def send_message(
    pack_id: str, seller_id: str, request: Request, seller: SellerDep, emulator: EmulatorDep
) -> dict[str, Any]:
    """Send a message once the buyer has written; 403 before, or while the conversation is blocked."""
    body = await read_json(request)
    state = emulator.state
    forbidden = send_error(403, "forbidden", f"Access denied for user {seller.id} to order {pack_id}")
    async with state.lock:
        conversation = _conversation(state, pack_id, seller_id, seller, forbidden, _send_missing)
        checked = messaging.parse_send_body(body, seller, conversation)
        block = blocking.block_of(state, conversation)
        messaging.check_send_allowed(conversation, block)
        files = messaging.resolve_attachments(state, seller, checked.attachment_ids)
        message = messaging.add_seller_message(state, conversation, seller, checked.text, attachments=files)
    emulator.after_seller_message(message)
    return message_json(message)


@router.post("/messages/attachments")
async def upload_attachment(request: Request, seller: SellerDep, emulator: EmulatorDep) -> dict[str, Any]:
    """Store a multipart `file` (JPG, PNG, PDF or TXT, up to 25 MB); answers its id."""
    site_id = attachments.require_site(request.query_params.get("site_id"))
    filename, data = None, b""
    async with request.form() as form:
        upload = form.get("file")
        if isinstance(upload, UploadFile):
            filename, data = upload.filename, await upload.read()
    attachment = attachments.new_attachment(seller.id, site_id, filename, data)
    async with emulator.state.lock:
        emulator.state.attachments[attachment.id] = attachment
    return {"id": attachment.id}


@router.get("/messages/attachments/{attachment_id}")
async def download_attachment(
    attachment_id: str, request: Request, seller: SellerDep, emulator: EmulatorDep
) -> Response:
    """The file of one of the seller's attachments."""
    attachments.require_site(request.query_params.get("site_id"))
    async with emulator.state.lock:
        attachment = emulator.state.attachments.get(attachment_id)
    if attachment is None or attachment.seller_id != seller.id:
        raise generic_error(404, "not_found", f"The attachment {attachment_id} was not found")
    disposition = f"attachment; filename*=UTF-8''{quote(attachment.original_filename)}"
    return Response(
        attachment.data, media_type=attachment.content_type, headers={"Content-Disposition": disposition}
    )


@router.get("/messages/{message_id}")
async def get_message(
    message_id: str, request: Request, seller: SellerDep, emulator: EmulatorDep
) -> JSONResponse:
    """One message: `{"paging":null,"conversation_status":null,"messages":[...]}` with
    `x-format-new: true`, otherwise the old flat shape."""
    if not _MESSAGE_ID.fullmatch(message_id):
        raise generic_error(400, "bad_request", "The specified message id does not exists")
    async with emulator.state.lock:
        message = emulator.state.messages.get(message_id)
        if message is None:
            raise generic_error(
                404, "not_found", f"The message with id: {message_id} could not be retrieved from storage"
            )
        if message.seller_id != seller.id:
            raise generic_error(
                403, "forbidden", f"Access denied for user {seller.id} to message with id {message_id}"
            )
        conversation = emulator.state.conversations[message.conversation_key]
        if is_true(request.headers.get("x-format-new")):
            body: dict[str, Any] = {
                "paging": None,
                "conversation_status": None,
                "messages": [message_json(message)],
            }
        else:
            body = legacy_message_json(message, conversation.order_ids[0])
    return JSONResponse(body)


def _conversation(
    state: EmulatorState,
    pack_id: str,
    seller_id: str,
    seller: Seller,
    forbidden: MeliError,
    missing: Callable[[str], MeliError],
) -> Conversation:
    if parse_int(seller_id) != seller.id:
        raise forbidden
    return owned_conversation(state, pack_id, seller, missing=missing, foreign=forbidden)


def _read_missing(message: str) -> MeliError:
    return generic_error(404, "not_found", message)


def _send_missing(message: str) -> MeliError:
    return send_error(404, "not_found", message)


def _read_forbidden(pack_id: str) -> MeliError:
    return generic_error(403, "forbidden", f"User access token invalid for resource {pack_id}")


def _paging(offset_text: str | None, limit_text: str | None) -> tuple[int, int]:
    limit = parse_int(limit_text) if limit_text is not None else DEFAULT_PAGE_LIMIT
    offset = parse_int(offset_text) if offset_text is not None else 0
    if limit is None:
        raise generic_error(400, "bad_request", "Invalid limit param")
    if limit <= 0:
        raise generic_error(400, "bad_request", "The limit param must be greater than 0")
    if offset is None or offset < 0:
        raise generic_error(400, "bad_request", "Invalid offset param")
    return offset, limit
