"""The outbound webhooks' tables (issue 20): the endpoints, the deliveries (the dispatcher's outbox:
one row per event per endpoint) and every attempt."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from postventa.store.schema import metadata
from postventa.store.types import Id, UtcDateTime

# The statuses a delivery goes through (`webhook_deliveries.status`).
WEBHOOK_DELIVERY_STATUSES = ("pending", "sending", "delivered", "failed")

# Outbound webhooks to integrators (issue 20, migration 0012; docs/webhooks.md). Unrelated to
# `inbound_notifications`, which Mercado Libre's own notifications fill.
#
# An account's endpoints: where its events are POSTed, which (a bitmask of domain/webhooks.py's
# EVENT_BITS, so that the fan-out is one indexed INSERT … SELECT), and the signing secret sealed
# like Mercado Libre's credentials (store/sealing.py). A rotated secret's predecessor still signs
# until `previous_secret_expires_at` (two signatures during the overlap).
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("url", String(2048), nullable=False),
    Column("events_mask", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("disabled_reason", Text, nullable=True),
    Column("disabled_at", UtcDateTime(), nullable=True),
    Column("secret", Text, nullable=False),  # sealed
    Column("previous_secret", Text, nullable=True),  # sealed
    Column("previous_secret_expires_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_success_at", UtcDateTime(), nullable=True),
    # The first failure since the last success: an endpoint failing for 5 days is disabled.
    Column("failing_since", UtcDateTime(), nullable=True),
)

# One event to one endpoint: the outbox of the webhook dispatcher (delivery/webhook_dispatch.py),
# written in the transaction of the change it reports. `webhook_id` (msg_…) is the event's, the
# same for every endpoint and every retry. `snapshot` (JSON) holds the subject's columns as the
# change left them; `body` is rendered from it once, at the first attempt, and sent byte for byte
# on every retry.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("endpoint_id", ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("webhook_id", String(40), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("subject_id", BigInteger, nullable=False),  # the message, or the order for order.updated
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("snapshot", Text, nullable=True),
    Column("body", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    UniqueConstraint("endpoint_id", "webhook_id"),
    CheckConstraint("status in ('pending', 'sending', 'delivered', 'failed')", name="status"),
    Index(None, "status", "next_attempt_at", "id"),  # the claim's order
)

# Every attempt of a delivery, as GET /admin/webhooks/{id}/attempts shows them (newest first).
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "delivery_id", ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("endpoint_id", ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Index(None, "endpoint_id", "id"),
)
