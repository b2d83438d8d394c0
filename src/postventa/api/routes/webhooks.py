"""POST /webhooks/mercadolibre: store the notification and answer at once; processing comes after."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Message

from postventa.api import openapi
from postventa.api.context import context_of
from postventa.api.params import read_json_document
from postventa.domain.errors import PostventaError, RefusalKind
from postventa.metrics import INBOUND_NOTIFICATIONS, OTHER
from postventa.services.inbound import TOPICS, accept_notification, read_notification

router = APIRouter(tags=["Mercado Libre"])
# Mercado Libre's notifications are a few hundred bytes; anyone can post here, so the API's body
# limit (sized for attachments) is far too generous for this endpoint.
MAX_NOTIFICATION_BYTES = 16 * 1024


@router.post(
    "/webhooks/mercadolibre",
    summary="Mercado Libre notifications (topics messages, orders_v2)",
    responses=openapi.WEBHOOK_RESPONSES,
    openapi_extra=openapi.WEBHOOK_REQUEST,
)
async def notification(request: Request) -> Response:
    """One insert, then 200: Mercado Libre wants an answer within 500 ms and retries otherwise."""
    context = context_of(request)
    parsed = read_notification(await read_json_document(_bounded(request)))
    async with context.database.transaction(write=True) as connection:
        accepted = await accept_notification(connection, parsed, context.clock())
    topic = parsed.topic if parsed.topic in TOPICS else OTHER  # the sender chooses it: keep labels bounded
    INBOUND_NOTIFICATIONS.labels(topic, "true" if accepted else "false").inc()
    if accepted:
        context.on_notification()
    return JSONResponse({"Status": 200, "Accepted": accepted})


def _bounded(request: Request) -> Request:
    """The request, refused (413) once its body, declared or streamed, passes MAX_NOTIFICATION_BYTES."""
    too_large = PostventaError.of(
        RefusalKind.TOO_LARGE,
        "request_too_large",
        f"A notification is at most {MAX_NOTIFICATION_BYTES} bytes.",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_NOTIFICATION_BYTES:
        raise too_large
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > MAX_NOTIFICATION_BYTES:
            raise too_large
        return message

    return Request(request.scope, receive)
