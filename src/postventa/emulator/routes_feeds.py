"""`GET /missed_feeds?app_id=`: the notifications the application's callback never accepted
(research §3), kept two days, for the application whose bearer token asks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from postventa.emulator.deps import EmulatorDep, SellerDep, parse_int
from postventa.emulator.errors import generic_error
from postventa.emulator.notifications import MAX_MISSED_FEEDS

router = APIRouter()


@router.get("/missed_feeds")
async def missed_feeds(request: Request, seller: SellerDep, emulator: EmulatorDep) -> dict[str, Any]:
    """`{"messages": [notification...]}`, oldest first; `topic`, `offset` and `limit` narrow it."""
    params = request.query_params
    app_id = params.get("app_id")
    if not app_id:
        raise generic_error(400, "bad_request", "The app_id param is required")
    if app_id != seller.client_id:
        raise generic_error(403, "forbidden", f"Invalid caller.id for application {app_id}")
    offset = parse_int(params.get("offset", "0"))
    limit = parse_int(params.get("limit", str(MAX_MISSED_FEEDS)))
    if offset is None or offset < 0:
        raise generic_error(400, "bad_request", "Invalid offset param")
    if limit is None or limit <= 0:
        raise generic_error(400, "bad_request", "Invalid limit param")
    kept = emulator.notifier.missed.of_application(app_id, params.get("topic"))
    return {"messages": kept[offset : offset + limit]}
