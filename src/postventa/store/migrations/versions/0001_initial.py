"""Accounts, API keys, orders, conversations, attachments and messages (the outbox).

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from postventa.store.tables import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )
    op.create_table(
        "api_key_accounts",
        sa.Column("api_key_id", Id, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name="fk_api_key_accounts_api_key_id_api_keys",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_api_key_accounts_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "account_id", name="pk_api_key_accounts"),
    )
    op.create_table(
        "conversations",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("conversation_key", sa.String(80), nullable=False),
        sa.Column("message_count", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_conversations_account_id_accounts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.UniqueConstraint(
            "account_id", "conversation_key", name="uq_conversations_account_id_conversation_key"
        ),
    )
    op.create_table(
        "orders",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("conversation_id", Id, nullable=False),
        sa.Column("external_order_id", sa.String(64), nullable=False),
        sa.Column("pack_id", sa.BigInteger(), nullable=True),
        sa.Column("marketplace", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(3), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("logistic_type", sa.Integer(), nullable=True),
        sa.Column("buyer_code", sa.String(64), nullable=True),
        sa.Column("buyer_nickname", sa.String(200), nullable=True),
        sa.Column("buyer_name", sa.String(200), nullable=True),
        sa.Column("date_created", UtcDateTime(), nullable=False),
        sa.Column("delivery_date", sa.Date(), nullable=True),
        sa.Column("delivery_from_hour", sa.Integer(), nullable=True),
        sa.Column("delivery_to_hour", sa.Integer(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_orders_account_id_accounts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name="fk_orders_conversation_id_conversations"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("account_id", "external_order_id", name="uq_orders_account_id_external_order_id"),
    )
    op.create_index("ix_orders_account_id_date_created", "orders", ["account_id", "date_created"])
    op.create_index("ix_orders_account_id_status", "orders", ["account_id", "status"])
    op.create_table(
        "attachments",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("extension", sa.String(8), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_attachments_account_id_accounts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_attachments"),
    )
    op.create_table(
        "messages",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("conversation_id", Id, nullable=False),
        sa.Column("conversation_sequence", sa.Integer(), nullable=False),
        sa.Column("order_id", Id, nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("message_ignored", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("attachment_id", Id, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("status_changed_at", UtcDateTime(), nullable=False),
        sa.Column("sent_at", UtcDateTime(), nullable=True),
        sa.Column("failed_at", UtcDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
        sa.Column("marketplace_message_id", sa.String(64), nullable=True),
        sa.Column("moderation_reason", sa.String(64), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.CheckConstraint("direction in ('outbound', 'inbound')", name="ck_messages_direction"),
        sa.CheckConstraint(
            "status in ('queued', 'sending', 'sent', 'moderated', 'failed', 'received')",
            name="ck_messages_status",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_messages_account_id_accounts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name="fk_messages_conversation_id_conversations"
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_messages_order_id_orders"),
        sa.ForeignKeyConstraint(
            ["attachment_id"], ["attachments.id"], name="fk_messages_attachment_id_attachments"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint(
            "conversation_id",
            "conversation_sequence",
            name="uq_messages_conversation_id_conversation_sequence",
        ),
    )
    op.create_index("ix_messages_status_next_attempt_at", "messages", ["status", "next_attempt_at"])
    op.create_index("ix_messages_marketplace_message_id", "messages", ["marketplace_message_id"])


def downgrade() -> None:
    for table in (
        "messages",
        "attachments",
        "orders",
        "conversations",
        "api_key_accounts",
        "api_keys",
        "accounts",
    ):
        op.drop_table(table)
