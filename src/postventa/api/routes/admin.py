"""The admin API (contract §5), behind the bearer token of POSTVENTA_ADMIN_TOKEN."""

from __future__ import annotations

import hmac
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from postventa.api import openapi
from postventa.api.context import Context, context_of
from postventa.api.openapi_bodies import ref
from postventa.api.params import read_json_document
from postventa.api.render import account_json
from postventa.api.routes.messages import path_id
from postventa.domain.errors import PostventaError, RefusalKind, not_found
from postventa.services import admin
from postventa.services.marketplace import LinkIn, link_account, sync_orders
from postventa.services.messaging import record_buyer_reply
from postventa.services.order_input import OrdersIn, validation_refusal


def require_admin(request: Request) -> Context:
    """The admin token, compared in constant time; without a configured token the admin API is off."""
    context = context_of(request)
    expected = context.settings.admin_token
    if expected is None:
        raise not_found("not_found", "Not Found")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise PostventaError.of(
            RefusalKind.UNAUTHENTICATED,
            "admin_token_invalid",
            "A valid 'Authorization: Bearer <admin token>' is required.",
        )
    return context


Admin = Annotated[Context, Depends(require_admin)]
router = APIRouter(prefix="/admin", tags=["Administration"])


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    Name: Annotated[str, Field(min_length=1, max_length=200)]


class AccountUpdateIn(BaseModel):
    """Any of the four; null clears BusinessName, DocType or DocNumber (Name cannot be cleared)."""

    model_config = ConfigDict(extra="forbid")
    Name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    BusinessName: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    DocType: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    DocNumber: Annotated[str, Field(min_length=1, max_length=64)] | None = None


_ACCOUNT_COLUMNS = {
    "Name": "name",
    "BusinessName": "business_name",
    "DocType": "doc_type",
    "DocNumber": "doc_number",
}


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    AccountIds: Annotated[list[Annotated[int, Field(gt=0, lt=2**63)]], Field(min_length=1, max_length=1000)]
    # The key's own limits, e.g. "send=10/minute,read=100/minute"; null: POSTVENTA_RATE_LIMITS.
    RateLimits: str | None = None


class ApiKeyLimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    RateLimits: str | None


class BuyerMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    Text: str


Model = TypeVar("Model", bound=BaseModel)


async def validated_body(request: Request, model: type[Model]) -> Model:
    """The JSON body as `model`, or the admin API's 400 naming the field."""
    document = await read_json_document(request)
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise validation_refusal(error) from error


@router.post(
    "/accounts",
    status_code=201,
    responses=openapi.admin_responses(201, "The new account.", ref("Account")),
    openapi_extra=openapi.json_request_body(AccountIn),
)
async def create_account(request: Request, context: Admin) -> Response:
    """A new seller account."""
    body = await validated_body(request, AccountIn)
    async with context.database.transaction(write=True) as connection:
        account = await admin.create_account(connection, body.Name, context.clock())
    return JSONResponse({"Id": account.id, "Name": account.name}, status_code=201)


@router.get(
    "/accounts", responses=openapi.admin_responses(200, "Every account.", ref("Accounts"), reads_body=False)
)
async def list_accounts(context: Admin) -> Response:
    """Every account."""
    async with context.database.transaction() as connection:
        found = await admin.list_accounts(connection)
    return JSONResponse({"Results": [{"Id": account.id, "Name": account.name} for account in found]})


@router.get(
    "/accounts/{accountId}",
    responses=openapi.admin_responses(
        200, "The account and its Mercado Libre link's status.", ref("AccountDetail"), reads_body=False
    ),
)
async def get_account(accountId: str, context: Admin) -> Response:
    """The account, and its Mercado Libre seller and link status: `needs_relink` when Mercado Libre
    refused its authorization and the seller must authorise the application again (no secrets)."""
    account_id = path_id(accountId, "accountId", "account_id_invalid")
    async with context.database.transaction() as connection:
        detail = await admin.account_detail(connection, account_id)
    return JSONResponse(account_json(detail))


@router.patch(
    "/accounts/{accountId}",
    responses=openapi.admin_responses(200, "The account now.", ref("AccountDetail")),
    openapi_extra=openapi.json_request_body(AccountUpdateIn),
)
async def update_account(accountId: str, request: Request, context: Admin) -> Response:
    """Change the account's Name, BusinessName, DocType or DocNumber (what GET /v2/accounts shows);
    the fields left out stay as they are, and null clears one of the last three."""
    account_id = path_id(accountId, "accountId", "account_id_invalid")
    body = await validated_body(request, AccountUpdateIn)
    changes = {_ACCOUNT_COLUMNS[field]: getattr(body, field) for field in body.model_fields_set}
    async with context.database.transaction(write=True) as connection:
        detail = await admin.update_account(connection, account_id, changes)
    return JSONResponse(account_json(detail))


@router.post(
    "/api-keys",
    status_code=201,
    responses=openapi.admin_responses(201, "The new key, shown only here.", ref("ApiKeyCreated")),
    openapi_extra=openapi.json_request_body(ApiKeyIn),
)
async def create_api_key(request: Request, context: Admin) -> Response:
    """A key for one or more accounts; the key is shown only in this response."""
    body = await validated_body(request, ApiKeyIn)
    async with context.database.transaction(write=True) as connection:
        created = await admin.create_api_key(
            connection, body.AccountIds, context.settings.api_key_pepper, context.clock(), body.RateLimits
        )
    return JSONResponse(
        {
            "Id": created.id,
            "ApiKey": created.api_key,
            "AccountIds": created.account_ids,
            "RateLimits": created.rate_limits,
        },
        status_code=201,
    )


@router.patch(
    "/api-keys/{keyId}",
    responses=openapi.admin_responses(200, "The key's limits now.", ref("ApiKeyLimits")),
    openapi_extra=openapi.json_request_body(ApiKeyLimitsIn),
)
async def set_api_key_limits(keyId: str, request: Request, context: Admin) -> Response:
    """Give a key its own rate limits, or back to the defaults with null; applies to its next request."""
    key_id = path_id(keyId, "keyId", "key_id_invalid")
    body = await validated_body(request, ApiKeyLimitsIn)
    async with context.database.transaction(write=True) as connection:
        stored = await admin.set_api_key_rate_limits(connection, key_id, body.RateLimits)
    return JSONResponse({"Id": key_id, "RateLimits": stored})


@router.delete(
    "/api-keys/{keyId}", status_code=204, responses=openapi.admin_responses(204, "Revoked.", reads_body=False)
)
async def revoke_api_key(keyId: str, context: Admin) -> Response:
    """Revoke a key."""
    key_id = path_id(keyId, "keyId", "key_id_invalid")
    async with context.database.transaction(write=True) as connection:
        await admin.revoke_api_key(connection, key_id, context.clock())
    return Response(status_code=204)


@router.put(
    "/accounts/{accountId}/orders",
    responses=openapi.admin_responses(200, "The orders' ids.", ref("ImportedOrders")),
    openapi_extra=openapi.json_request_body(OrdersIn),
)
async def import_orders(accountId: str, request: Request, context: Admin) -> Response:
    """Upsert orders by ExternalOrderId; any invalid order refuses the whole document."""
    account_id = path_id(accountId, "accountId", "account_id_invalid")
    document = await read_json_document(request)
    async with context.database.transaction(write=True) as connection:
        imported = await admin.import_orders(connection, account_id, document, context.clock())
    return JSONResponse(
        {"Results": [{"Id": order.id, "ExternalOrderId": order.external_order_id} for order in imported]}
    )


@router.post(
    "/orders/{orderId}/buyer-messages",
    status_code=201,
    responses=openapi.admin_responses(201, "The recorded message.", ref("Created")),
    openapi_extra=openapi.json_request_body(BuyerMessageIn),
)
async def buyer_message(orderId: str, request: Request, context: Admin) -> Response:
    """Record a buyer's reply, as the marketplace integration does."""
    order_id = path_id(orderId, "orderId", "order_id_invalid")
    body = await validated_body(request, BuyerMessageIn)
    async with context.database.transaction(write=True) as connection:
        message_id = await record_buyer_reply(
            connection, order_id=order_id, text=body.Text, now=context.clock()
        )
    return JSONResponse({"Id": message_id}, status_code=201)


@router.put(
    "/accounts/{accountId}/mercadolibre",
    responses={
        **openapi.admin_responses(200, "Linked.", ref("MercadoLibreLink")),
        **openapi.MARKETPLACE_ERRORS,
    },
    openapi_extra=openapi.json_request_body(LinkIn),
)
async def link_mercadolibre(accountId: str, request: Request, context: Admin) -> Response:
    """Link the account to a Mercado Libre seller; the credentials are checked with Mercado Libre.
    Linking again an account whose link needs relinking makes it active: its messages go at once."""
    account_id = path_id(accountId, "accountId", "account_id_invalid")
    document = await read_json_document(request)
    await link_account(context.database, account_id, document, context.meli, context.clock())
    context.on_message_queued()  # messages waiting for the link can go now
    return JSONResponse({"AccountId": account_id, "Linked": True})


@router.post(
    "/accounts/{accountId}/mercadolibre/sync",
    responses={
        **openapi.admin_responses(200, "Orders imported.", ref("MercadoLibreSync"), reads_body=False),
        **openapi.MARKETPLACE_ERRORS,
        **openapi.LINK_REVOKED_ERRORS,
    },
)
async def sync_mercadolibre(accountId: str, context: Admin) -> Response:
    """Import the seller's orders from Mercado Libre."""
    account_id = path_id(accountId, "accountId", "account_id_invalid")
    imported = await sync_orders(context.database, account_id, context.meli, context.clock())
    return JSONResponse({"Imported": imported})
