"""The admin API's webhook endpoints (issue 20): where an account's events are POSTed, their secret
(shown once, at registration and rotation) and what each delivery attempt did. Behind the same admin
token, with the same error body, as the rest of /admin (docs/webhooks.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, StrictBool, WithJsonSchema

from postventa.api import openapi
from postventa.api.context import Context
from postventa.api.openapi_bodies import ref
from postventa.api.render import timestamp
from postventa.api.render_webhooks import attempt_json, created_json, endpoint_json
from postventa.api.routes.admin import require_admin, validated_body
from postventa.api.routes.messages import path_id
from postventa.domain.webhooks import URL_MAX_LENGTH, EventType
from postventa.services import webhooks

Admin = Annotated[Context, Depends(require_admin)]
router = APIRouter(prefix="/admin", tags=["Administration"])

# The documents' schemas name what the service accepts; the service gives the refusals their codes
# (webhook_url_*, webhook_events_invalid), so the models take any text.
WebhookUrl = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": URL_MAX_LENGTH,
            "description": "https:// (http:// too with POSTVENTA_WEBHOOK_ALLOW_PRIVATE=true); its host "
            "must not resolve to a private, loopback or link-local address.",
            "example": "https://erp.example.com/postventa/events",
        }
    ),
]
EventName = Annotated[str, WithJsonSchema({"type": "string", "enum": [event.value for event in EventType]})]


class WebhookIn(BaseModel):
    """A new endpoint; Events left out: every event type."""

    model_config = ConfigDict(extra="forbid")
    Url: WebhookUrl
    Events: list[EventName] | None = None


class WebhookUpdateIn(BaseModel):
    """Any of the three; those left out stay as they are, and null Events subscribes to every type."""

    model_config = ConfigDict(extra="forbid")
    Url: WebhookUrl | None = None
    Events: list[EventName] | None = None
    Enabled: StrictBool | None = None


@router.post(
    "/accounts/{accountId}/webhooks",
    status_code=201,
    responses=openapi.admin_responses(
        201, "The new endpoint and its secret, shown only here.", ref("WebhookCreated")
    ),
    openapi_extra=openapi.json_request_body(WebhookIn),
)
async def create_webhook(accountId: str, request: Request, context: Admin) -> Response:
    """Register an endpoint of the account for some event types (all without Events); the answer
    holds its signing secret, which is never shown again. The URL's host is resolved and refused
    when it is private, loopback or link-local (unless POSTVENTA_WEBHOOK_ALLOW_PRIVATE=true)."""
    account_id = path_id(accountId, "accountId", "account_id_invalid")
    body = await validated_body(request, WebhookIn)
    # Resolved before the write transaction: a DNS answer may take seconds.
    url = await webhooks.check_url(body.Url, allow_private=context.settings.webhook_allow_private)
    async with context.database.transaction(write=True) as connection:
        created = await webhooks.register_endpoint(
            connection, context.database.token_cipher, account_id, url, body.Events, context.clock()
        )
    return JSONResponse(created_json(created), status_code=201)


@router.get(
    "/accounts/{accountId}/webhooks",
    responses=openapi.admin_responses(
        200, "The account's endpoints.", ref("WebhookEndpoints"), reads_body=False
    ),
)
async def list_webhooks(accountId: str, context: Admin) -> Response:
    """The account's endpoints, oldest first, with whether each is enabled (and why not); no secrets."""
    account_id = path_id(accountId, "accountId", "account_id_invalid")
    async with context.database.transaction() as connection:
        found = await webhooks.list_endpoints(connection, account_id)
    return JSONResponse({"Results": [endpoint_json(endpoint) for endpoint in found]})


@router.patch(
    "/webhooks/{webhookId}",
    responses=openapi.admin_responses(200, "The endpoint now.", ref("WebhookEndpoint")),
    openapi_extra=openapi.json_request_body(WebhookUpdateIn),
)
async def update_webhook(webhookId: str, request: Request, context: Admin) -> Response:
    """Change an endpoint's Url, Events or Enabled; `"Enabled": true` turns back on an endpoint that
    was disabled after failing for five days."""
    endpoint_id = path_id(webhookId, "webhookId", "webhook_id_invalid")
    body = await validated_body(request, WebhookUpdateIn)
    given = body.model_fields_set
    events = body.Events
    if "Events" in given and events is None:
        events = [event.value for event in EventType]
    url = None
    if body.Url is not None:
        url = await webhooks.check_url(body.Url, allow_private=context.settings.webhook_allow_private)
    async with context.database.transaction(write=True) as connection:
        endpoint = await webhooks.update_endpoint(
            connection, endpoint_id, url=url, events=events, enabled=body.Enabled, now=context.clock()
        )
    return JSONResponse(endpoint_json(endpoint))


@router.delete(
    "/webhooks/{webhookId}",
    status_code=204,
    responses=openapi.admin_responses(204, "Deleted.", reads_body=False),
)
async def delete_webhook(webhookId: str, context: Admin) -> Response:
    """Delete an endpoint; its events not yet delivered are dropped."""
    endpoint_id = path_id(webhookId, "webhookId", "webhook_id_invalid")
    async with context.database.transaction(write=True) as connection:
        await webhooks.delete_endpoint(connection, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhookId}/secret",
    responses=openapi.admin_responses(
        200, "The new secret, shown only here.", ref("WebhookSecret"), reads_body=False
    ),
)
async def rotate_webhook_secret(webhookId: str, context: Admin) -> Response:
    """A new signing secret, shown only in this answer. The old one keeps signing beside it until
    PreviousSecretExpiresAt (24 hours): requests carry both signatures meanwhile."""
    endpoint_id = path_id(webhookId, "webhookId", "webhook_id_invalid")
    async with context.database.transaction(write=True) as connection:
        rotated = await webhooks.rotate_secret(
            connection, context.database.token_cipher, endpoint_id, context.clock()
        )
    expires_at = timestamp(rotated.endpoint.previous_secret_expires_at)
    return JSONResponse({"Id": endpoint_id, "Secret": rotated.secret, "PreviousSecretExpiresAt": expires_at})


PageLimit = Annotated[int, Query(ge=1, le=webhooks.MAX_ATTEMPTS_PAGE, description="Attempts to return.")]
PageOffset = Annotated[int, Query(ge=0, lt=2**62, description="Attempts to skip, newest first.")]


@router.get(
    "/webhooks/{webhookId}/attempts",
    responses=openapi.admin_responses(
        200, "The endpoint's attempts, newest first.", ref("WebhookAttempts"), reads_body=False
    ),
)
async def list_webhook_attempts(
    webhookId: str, context: Admin, limit: PageLimit = 100, offset: PageOffset = 0
) -> Response:
    """The endpoint's delivery attempts, newest first: each one's event, number, start, duration, the
    receiver's status (null without an answer) and the error."""
    endpoint_id = path_id(webhookId, "webhookId", "webhook_id_invalid")
    async with context.database.transaction() as connection:
        found = await webhooks.list_attempts(connection, endpoint_id, limit=limit, offset=offset)
    return JSONResponse({"Results": [attempt_json(attempt) for attempt in found]})
