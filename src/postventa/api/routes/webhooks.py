"""POST /webhooks/mercadolibre: store the notification and answer at once; processing comes after."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postventa.api.context import context_of
from postventa.api.params import read_json_document
from postventa.services.inbound import accept_notification, read_notification

router = APIRouter(tags=["Mercado Libre"])


@router.post("/webhooks/mercadolibre", summary="Mercado Libre notifications (topics messages, orders_v2)")
async def notification(request: Request) -> Response:
    """One insert, then 200: Mercado Libre wants an answer within 500 ms and retries otherwise."""
    context = context_of(request)
    parsed = read_notification(await read_json_document(request))
    async with context.database.transaction(write=True) as connection:
        accepted = await accept_notification(connection, parsed, context.clock())
    if accepted:
        context.on_notification()
    return JSONResponse({"Status": 200, "Accepted": accepted})
