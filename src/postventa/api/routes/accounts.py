"""What Alephee's API v2 answers besides orders and messages, so its clients sync unmodified:
GET /v2/accounts, /v2/accounts/{accountId}/marketplaces and /stores, and /v2/products (issue 17)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from postventa.api import openapi
from postventa.api.context import context_of
from postventa.api.guard import authorize_key, authorize_request, response_headers
from postventa.api.params import page_window, read_query
from postventa.api.ratelimit import READ
from postventa.api.render_accounts import (
    alephee_account_json,
    empty_page,
    marketplace_json,
    whole_list,
)
from postventa.api.routing import Routes
from postventa.domain.parameters import ACCOUNT_ID, READ_PARAMETERS, Parameters
from postventa.services import accounts

router = Routes(tags=["Accounts"])


@router.get(
    "/v2/accounts",
    summary="The accounts the API key opens",
    description="All of them in one answer (`Paging.Offset` 0, `Paging.Limit` = `Total`). No `accountId` "
    "is needed; one that is given must be one of the key's, as everywhere.",
    responses=openapi.read_responses("AccountsList", "The key's accounts, oldest first."),
    extra=openapi.READ_QUERY,
)
async def list_accounts(request: Request) -> Response:
    """The key's accounts in Alephee's envelope: Id, Name, BusinessName, DocType, DocNumber."""
    context = context_of(request)
    parameters = read_query(request, READ_PARAMETERS)
    grant = await authorize_key(request, context, parameters, READ)
    async with context.database.transaction() as connection:
        found = await accounts.key_accounts(connection, grant)
    body = whole_list([alephee_account_json(account) for account in found])
    return JSONResponse(body, headers=response_headers(request))


@router.get(
    "/v2/accounts/{accountId}/marketplaces",
    summary="The account's marketplaces",
    description="Mercado Libre (Id 1, as its orders' `MarketPlace.Key`) when the account is linked, with "
    "its site, seller and link status; no results when it is not.",
    responses=openapi.read_responses("MarketplacesList", "The account's marketplace links."),
    extra=openapi.KEY_QUERY,
)
async def list_marketplaces(request: Request) -> Response:
    """The account's marketplace links in Alephee's envelope."""
    context = context_of(request)
    account_id = await authorize_request(request, context, _with_path_account(request), READ)
    async with context.database.transaction() as connection:
        links = await accounts.marketplace_links(connection, account_id)
    body = whole_list([marketplace_json(link) for link in links])
    return JSONResponse(body, headers=response_headers(request))


@router.get(
    "/v2/accounts/{accountId}/stores",
    summary="The account's stores (none: postventa holds no stores)",
    responses=openapi.read_responses("StoresList", "Always no results."),
    extra=openapi.KEY_QUERY,
)
async def list_stores(request: Request) -> Response:
    """Alephee's envelope with no results, after the same checks as any read of the account."""
    context = context_of(request)
    await authorize_request(request, context, _with_path_account(request), READ)
    return JSONResponse(whole_list([]), headers=response_headers(request))


@router.get(
    "/v2/products",
    summary="The account's products (none: postventa holds no catalogue)",
    description="Alephee's paging envelope with no results: `Paging.Limit` (default 100) and "
    "`Paging.Offset` echo the window asked for, `Paging.Total` is 0.",
    responses=openapi.read_responses("ProductsPage", "Always no results."),
    extra=openapi.PRODUCTS_QUERY,
)
async def list_products(request: Request) -> Response:
    """An empty page of Alephee's products envelope, after the checks of any read."""
    context = context_of(request)
    parameters = read_query(request, (*READ_PARAMETERS, "limit", "offset"))
    await authorize_request(request, context, parameters, READ)
    limit, offset = page_window(parameters)
    return JSONResponse(empty_page(limit=limit, offset=offset), headers=response_headers(request))


def _with_path_account(request: Request) -> Parameters:
    """The query's parameters with the path's account; an `accountId` also in the query must be the same."""
    account_id = request.path_params["accountId"]
    parameters = read_query(request, READ_PARAMETERS)
    return Parameters.collect([list(parameters.values.items()), [(ACCOUNT_ID, account_id)]], READ_PARAMETERS)
