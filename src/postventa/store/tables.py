"""The schema, declared once (SQLAlchemy Core); migrations create exactly this. The console's and
the webhooks' tables are declared in store/tables_console.py and store/tables_webhooks.py and
gathered here, so that every table is imported from this module.

The `messages` row is the delivery outbox: the delivery worker claims queued rows by
`status` and `next_attempt_at`, so accepting a message and queueing it are one insert.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from postventa.store.schema import metadata as metadata
from postventa.store.tables_console import console_conversation_reads as console_conversation_reads
from postventa.store.tables_console import console_user_accounts as console_user_accounts
from postventa.store.tables_console import console_users as console_users
from postventa.store.tables_webhooks import webhook_attempts as webhook_attempts
from postventa.store.tables_webhooks import webhook_deliveries as webhook_deliveries
from postventa.store.tables_webhooks import webhook_endpoints as webhook_endpoints
from postventa.store.types import Id as Id  # re-exported: migrations import the types from here
from postventa.store.types import UtcDateTime as UtcDateTime

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # What Alephee's accounts show besides the name; the operator sets them (migration 0010).
    Column("business_name", String(200), nullable=True),
    Column("doc_type", String(32), nullable=True),
    Column("doc_number", String(64), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # Keys read "pv_<prefix>_<secret>": the prefix finds the row, the secret's hash is compared.
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    # This key's own limits ("send=10/minute,read=100/minute"); NULL: POSTVENTA_RATE_LIMITS.
    Column("rate_limits", String(200), nullable=True),
)

api_key_accounts = Table(
    "api_key_accounts",
    metadata,
    Column("api_key_id", ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    # "pack:<pack id>" or "order:<order id>": Mercado Libre keeps one conversation per pack.
    Column("conversation_key", String(80), nullable=False),
    # Bumped by every message; the unique (conversation, sequence) of messages backs the lock.
    Column("message_count", Integer, nullable=False, server_default="0"),
    # Mercado Libre's conversation_status as last read (active/blocked, its substatus, when read).
    Column("marketplace_status", String(16), nullable=True),
    Column("marketplace_substatus", String(64), nullable=True),
    Column("marketplace_status_at", UtcDateTime(), nullable=True),
    # Mercado Libre's assistant answering for the buyer, when the conversation is with one.
    Column("agent_user_id", BigInteger, nullable=True),
    UniqueConstraint("account_id", "conversation_key"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("conversation_id", ForeignKey("conversations.id"), nullable=False),
    Column("external_order_id", String(64), nullable=False),
    Column("pack_id", BigInteger, nullable=True),
    Column("marketplace", String(64), nullable=False),
    Column("site_id", String(3), nullable=True),
    Column("status", Integer, nullable=False),
    Column("logistic_type", Integer, nullable=True),
    Column("buyer_code", String(64), nullable=True),
    Column("buyer_nickname", String(200), nullable=True),
    Column("buyer_name", String(200), nullable=True),
    Column("date_created", UtcDateTime(), nullable=False),
    Column("delivery_date", Date, nullable=True),
    Column("delivery_from_hour", Integer, nullable=True),
    Column("delivery_to_hour", Integer, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    # Mercado Libre's own order status (`paid`, `payment_required`, …) when synced from it.
    Column("marketplace_status", String(32), nullable=True),
    # Mercado Libre's `date_closed` and shipment id, when known (migration 0010).
    Column("date_closed", UtcDateTime(), nullable=True),
    Column("shipping_id", BigInteger, nullable=True),
    UniqueConstraint("account_id", "external_order_id"),
    Index(None, "account_id", "date_created", "id"),  # paged by date, ties by id
    Index(None, "account_id", "status"),
    # A conversation's orders, newest last: the console's inbox (migration 0013).
    Index(None, "conversation_id", "date_created"),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("extension", String(8), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# The file's bytes, last in their row: SQLite can then write them without holding them in memory
# (migration 0004).
attachment_contents = Table(
    "attachment_contents",
    metadata,
    Column(
        "attachment_id",
        ForeignKey("attachments.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("content", LargeBinary, nullable=False),
)

MESSAGE_STATUSES = ("queued", "sending", "pending_moderation", "sent", "moderated", "failed", "received")
HAS_MARKETPLACE_ID = "marketplace_message_id IS NOT NULL"

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("conversation_id", ForeignKey("conversations.id"), nullable=False),
    Column("conversation_sequence", Integer, nullable=False),
    Column("order_id", ForeignKey("orders.id"), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("reason", Integer, nullable=True),
    Column("text", Text, nullable=False),
    Column("message_ignored", Boolean, nullable=False, server_default="0"),
    Column("attachment_id", ForeignKey("attachments.id"), nullable=True),
    Column("status", String(24), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("status_changed_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("failed_at", UtcDateTime(), nullable=True),
    # Delivery bookkeeping (the outbox): attempts so far, when to try next, who holds the lease.
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Column("lease_expires_at", UtcDateTime(), nullable=True),
    Column("marketplace_message_id", String(64), nullable=True),
    Column("moderation_reason", String(64), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    # When the first attempt started: a reconciliation looks for Mercado Libre messages from then on.
    Column("first_attempt_at", UtcDateTime(), nullable=True),
    # The last attempt may have reached Mercado Libre: read the conversation before sending again.
    Column("needs_reconcile", Boolean, nullable=False, server_default="0"),
    Column("lease_owner", String(64), nullable=True),
    # "messages" once Mercado Libre said the conversation is open (the action guide is closed to it).
    Column("route", String(16), nullable=True),
    # "marketplace": a seller message written outside postventa (seller center, another tool).
    Column("source", String(16), nullable=False, server_default="postventa"),
    # Who wrote it: "seller", "buyer", or "agent" (Mercado Libre's assistant answering for the buyer).
    Column("author", String(8), nullable=True),
    Column("read_at", UtcDateTime(), nullable=True),  # when its recipient read it on Mercado Libre
    UniqueConstraint("conversation_id", "conversation_sequence"),
    CheckConstraint("direction in ('outbound', 'inbound')", name="direction"),
    CheckConstraint(
        "status in ('queued', 'sending', 'pending_moderation', 'sent', 'moderated', 'failed', 'received')",
        name="status",
    ),
    CheckConstraint("source in ('postventa', 'marketplace')", name="source"),
    Index(None, "status", "next_attempt_at", "id"),  # the claim's order (migration 0006)
    # A Mercado Libre message is recorded once per account (notifications may repeat). Partial: a
    # message not yet delivered has no id, and an entry for it would be one more page for every send
    # to write (migration 0005).
    Index(
        "uq_messages_account_id_marketplace_message_id",
        "account_id",
        "marketplace_message_id",
        unique=True,
        sqlite_where=text(HAS_MARKETPLACE_ID),
        postgresql_where=text(HAS_MARKETPLACE_ID),
    ),
)

marketplace_links = Table(
    "marketplace_links",
    metadata,
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("seller_id", BigInteger, nullable=False, unique=True),
    Column("site_id", String(3), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("client_secret", Text, nullable=False),
    Column("refresh_token", Text, nullable=False),
    Column("access_token", Text, nullable=True),
    Column("access_token_expires_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    # "needs_relink" once Mercado Libre refused the refresh token: the messages wait for a new link.
    Column("status", String(16), nullable=False, server_default="active"),
    Column("status_reason", Text, nullable=True),
    Column("status_changed_at", UtcDateTime(), nullable=True),
    CheckConstraint("status in ('active', 'needs_relink')", name="status"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("worker", String(64), nullable=False),
    Column("route", String(16), nullable=False),  # action_guide, messages, reconcile
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=False),
    Column("outcome", String(16), nullable=False),  # sent, moderated, retry, failed, found
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
)

inbound_notifications = Table(
    "inbound_notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("topic", String(32), nullable=False),
    Column("resource", String(200), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("processed_at", UtcDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("topic", "resource", "user_id"),
    Index(None, "processed_at", "next_attempt_at"),
    # Due notifications are claimed newest first; each seller's pending ones are counted and the
    # oldest beyond its bound dropped (store/inbound.py).
    Index(None, "processed_at", "received_at"),
    Index(None, "user_id", "processed_at", "received_at"),
)

worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("seen_at", UtcDateTime(), nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("api_key_id", ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    # The client's Idempotency-Key; the unique (api_key_id, key) decides a race between duplicates.
    Column("key", String(255), nullable=False),
    # SHA-256 of the request as parsed (method, path, parameters, attachment bytes).
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # running, done
    # While running: the first request holds the key until then (a crashed one lets go).
    Column("locked_until", UtcDateTime(), nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("response_headers", Text, nullable=True),  # JSON object
    Column("response_body", LargeBinary, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),
    UniqueConstraint("api_key_id", "key"),
)

# Mercado Libre's call budget, shared by every process of an application when no Redis is configured
# (store/meli_budget.py, meli/pacing.py): the calls reserved in the moving window, one row per block,
# and the counters that expire (a cool-down after a 429). Times are epoch seconds, as `limits` keeps
# them. Ephemeral: counts of the last minute, not data a copy of the database carries.
meli_call_window = Table(
    "meli_call_window",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(255), nullable=False),
    Column("taken_at", Double(), nullable=False),
    Column("amount", Integer, nullable=False),
    Index(None, "key", "taken_at"),
    info={"ephemeral": True},
)

meli_call_counters = Table(
    "meli_call_counters",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("expires_at", Double(), nullable=False),
    info={"ephemeral": True},
)

# The operator console's users (issue 19): people who sign in with an email and a password (an
# Argon2 hash), apart from API keys (machines). An operator reads and sends for the accounts given
# to them; an admin also requeues failed messages (migration 0011).
CONSOLE_ROLES = ("operator", "admin")
