"""Delivery to Mercado Libre: account links, attempts, inbound notifications, worker heartbeats.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from postventa.store.tables import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ALTERs and indexes only, so SQLite needs no table rebuild.
    op.add_column("messages", sa.Column("first_attempt_at", UtcDateTime(), nullable=True))
    op.add_column("messages", sa.Column("needs_reconcile", sa.Boolean(), server_default="0", nullable=False))
    op.add_column("messages", sa.Column("lease_owner", sa.String(64), nullable=True))
    op.add_column("messages", sa.Column("route", sa.String(16), nullable=True))
    op.drop_index("ix_messages_marketplace_message_id", table_name="messages")
    op.create_index(
        "uq_messages_account_id_marketplace_message_id",
        "messages",
        ["account_id", "marketplace_message_id"],
        unique=True,
    )
    op.create_table(
        "marketplace_links",
        sa.Column("account_id", Id, nullable=False),
        sa.Column("seller_id", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.String(3), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("client_secret", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("access_token_expires_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_marketplace_links_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name="pk_marketplace_links"),
        sa.UniqueConstraint("seller_id", name="uq_marketplace_links_seller_id"),
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("message_id", Id, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_delivery_attempts_message_id_messages",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
    )
    op.create_index("ix_delivery_attempts_message_id", "delivery_attempts", ["message_id"])
    op.create_table(
        "inbound_notifications",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("resource", sa.String(200), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("processed_at", UtcDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_notifications"),
        sa.UniqueConstraint(
            "topic", "resource", "user_id", name="uq_inbound_notifications_topic_resource_user_id"
        ),
    )
    op.create_index(
        "ix_inbound_notifications_processed_at_next_attempt_at",
        "inbound_notifications",
        ["processed_at", "next_attempt_at"],
    )
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("seen_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name="pk_worker_heartbeats"),
    )


def downgrade() -> None:
    for table in ("worker_heartbeats", "inbound_notifications", "delivery_attempts", "marketplace_links"):
        op.drop_table(table)
    op.drop_index("uq_messages_account_id_marketplace_message_id", table_name="messages")
    op.create_index("ix_messages_marketplace_message_id", "messages", ["marketplace_message_id"])
    with op.batch_alter_table("messages") as batch:
        for column in ("route", "lease_owner", "needs_reconcile", "first_attempt_at"):
            batch.drop_column(column)
