"""GET /v2/orders and GET /v2/orders/{orderId} (contract §4)."""

from __future__ import annotations

import datetime as dt

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from postventa.api import openapi
from postventa.api.context import context_of
from postventa.api.guard import authorize_request, response_headers
from postventa.api.params import page_window, read_query
from postventa.api.ratelimit import READ
from postventa.api.render_orders import order_json
from postventa.api.routes.messages import path_id
from postventa.api.routing import Routes
from postventa.domain.errors import invalid
from postventa.domain.orders import StatusType, statuses_of_type
from postventa.domain.parameters import READ_PARAMETERS, Parameters, parse_identifier
from postventa.services import reading
from postventa.store.orders import OrderFilter

router = Routes(tags=["Orders"])

_FILTERS = ("limit", "offset", "statusType", "dateCreatedFrom", "idFrom", "idTo", "sort")
_SORTS = {
    "id": ("Id", "Order by internal ID asc"),
    "datecreated": ("dateCreated", "Order by date of sale asc"),
}


@router.get(
    "/v2/orders",
    summary="The account's orders, a page at a time",
    responses=openapi.read_responses("OrdersPage", "A page of the account's orders."),
    extra=openapi.ORDERS_QUERY,
)
async def list_orders(request: Request) -> Response:
    """Alephee's paging envelope; filters statusType, dateCreatedFrom, idFrom, idTo; sort by Id or date."""
    context = context_of(request)
    parameters = read_query(request, (*READ_PARAMETERS, *_FILTERS))
    account_id = await authorize_request(request, context, parameters, READ)
    limit, offset = page_window(parameters)
    sort_key = (parameters.text("sort") or "id").lower()
    if sort_key not in _SORTS:
        raise invalid("sort_invalid", "'sort' must be Id or dateCreated.")
    where = OrderFilter(
        statuses=_statuses(parameters),
        date_created_from=_date(parameters, "dateCreatedFrom"),
        id_from=_identifier(parameters, "idFrom"),
        id_to=_identifier(parameters, "idTo"),
        sort_by_date=sort_key == "datecreated",
    )
    async with context.database.transaction() as connection:
        page = await reading.orders_page(connection, account_id, where, limit=limit, offset=offset)
    sort_id, sort_name = _SORTS[sort_key]
    body = {
        "Paging": {"Limit": page.limit, "Offset": page.offset, "Total": page.total},
        "SortBy": {"Id": sort_id, "Name": sort_name},
        "AvailableSorts": [{"Id": key, "Name": name} for key, name in _SORTS.values()],
        "Total": page.total,
        "Results": [order_json(order, page.seller) for order in page.orders],
    }
    return JSONResponse(body, headers=response_headers(request))


@router.get(
    "/v2/orders/{orderId}",
    summary="One order",
    responses=openapi.read_responses("Order", "The order."),
    extra=openapi.READ_QUERY,
)
async def get_order(request: Request) -> Response:
    """One order of the account."""
    context = context_of(request)
    parameters = read_query(request, READ_PARAMETERS)
    account_id = await authorize_request(request, context, parameters, READ)
    order_id = path_id(request.path_params["orderId"], "orderId", "order_id_invalid")
    async with context.database.transaction() as connection:
        order, seller = await reading.order_of_account(connection, account_id, order_id)
    return JSONResponse(order_json(order, seller), headers=response_headers(request))


def _identifier(parameters: Parameters, name: str) -> int | None:
    raw = parameters.raw(name)
    if raw is None:
        return None
    number = parse_identifier(raw)
    if number is None:
        raise invalid(f"{name}_invalid", f"'{name}' must be a positive integer.")
    return number


def _statuses(parameters: Parameters) -> list[int] | None:
    text = parameters.text("statusType")
    if text is None:
        return None
    by_name = {kind.name.lower(): kind for kind in StatusType} | {str(int(kind)): kind for kind in StatusType}
    kind = by_name.get(text.strip().lower())
    if kind is None:
        raise invalid(
            "status_type_invalid", "'statusType' must be 0 (New), 1 (Pending), 2 (Closed) or 99 (Cancelled)."
        )
    return statuses_of_type(kind)


def _date(parameters: Parameters, name: str) -> dt.datetime | None:
    """Alephee's `yyyy-mm-dd HH:mm` (what clients send, the tap too: `2024-05-01+12%3A00`), or any
    ISO 8601 date or time (`2024-05-01`, `2024-05-01T12:00:00Z`, `…T09:00:00.5-03:00`); without a
    zone it is UTC. Inclusive: an order created at that instant is listed."""
    text = parameters.text(name)
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise invalid(
            f"{name}_invalid", f"'{name}' must be a date as yyyy-mm-dd HH:mm (UTC) or ISO 8601."
        ) from None
