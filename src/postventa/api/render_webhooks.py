"""Webhook endpoints and their attempts as the admin API and `postventa webhooks` show them (issue 20):
an endpoint never with its secret, except in the answer that made the secret."""

from __future__ import annotations

from typing import Any

from postventa.api.render import timestamp
from postventa.services.webhooks import EndpointWithSecret, WebhookEndpoint
from postventa.store.webhook_endpoints import StoredAttempt


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint: where, which events, whether it is enabled (and why not), its delivery record."""
    return {
        "Id": endpoint.id,
        "AccountId": endpoint.account_id,
        "Url": endpoint.url,
        "Events": list(endpoint.events),
        "Enabled": endpoint.enabled,
        "DisabledReason": endpoint.disabled_reason,
        "DisabledAt": timestamp(endpoint.disabled_at),
        "CreatedAt": timestamp(endpoint.created_at),
        "LastSuccessAt": timestamp(endpoint.last_success_at),
        "FailingSince": timestamp(endpoint.failing_since),
        "PreviousSecretExpiresAt": timestamp(endpoint.previous_secret_expires_at),
    }


def created_json(created: EndpointWithSecret) -> dict[str, Any]:
    """A registered endpoint with its secret, `{"Id", "Url", "Events", "Secret"}`: the only time the
    secret is shown."""
    endpoint = created.endpoint
    return {"Id": endpoint.id, "Url": endpoint.url, "Events": list(endpoint.events), "Secret": created.secret}


def attempt_json(attempt: StoredAttempt) -> dict[str, Any]:
    """One delivery attempt: its event, when, how long, the receiver's status or the error."""
    return {
        "Id": attempt.id,
        "WebhookId": attempt.webhook_id,
        "EventType": attempt.event_type,
        "Attempt": attempt.attempt,
        "StartedAt": timestamp(attempt.started_at),
        "DurationMs": attempt.duration_ms,
        "HttpStatus": attempt.http_status,
        "Error": attempt.error,
        "DeliveryStatus": attempt.delivery_status,
    }
