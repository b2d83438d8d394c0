"""Mercado Libre as it really behaves: link status, late moderation, conversation status, sources.

- `marketplace_links.status`: `active`, or `needs_relink` once Mercado Libre refused the refresh
  token (`invalid_grant`); the account's messages wait until the seller links it again.
- `messages.status` gains `pending_moderation` (Mercado Libre took the message, moderation has not
  decided), so the column widens to 24 characters.
- `messages.source`: `postventa`, or `marketplace` for a seller message written outside postventa
  (seller center, another tool); `messages.author`: `buyer`, `agent` (Mercado Libre's assistant
  answering for the buyer) or `seller`; `messages.read_at`: when the recipient read it on Mercado Libre.
- `orders.marketplace_status`: Mercado Libre's own order status (a payment pending is refused 412).
- `conversations.marketplace_status` / `marketplace_substatus` / `marketplace_status_at`: Mercado
  Libre's `conversation_status` as last seen; `conversations.agent_user_id`: the assistant the
  conversation is with, when it is.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from postventa.store.tables import UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status in ('queued', 'sending', 'sent', 'moderated', 'failed', 'received')"
NEW_STATUSES = (
    "status in ('queued', 'sending', 'pending_moderation', 'sent', 'moderated', 'failed', 'received')"
)


def upgrade() -> None:
    op.add_column("orders", sa.Column("marketplace_status", sa.String(32), nullable=True))
    with op.batch_alter_table("marketplace_links") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="active"))
        batch.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("status_changed_at", UtcDateTime(), nullable=True))
        batch.create_check_constraint("status", "status in ('active', 'needs_relink')")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("ck_messages_status", type_="check")
        batch.alter_column(
            "status", type_=sa.String(24), existing_type=sa.String(16), existing_nullable=False
        )
        batch.create_check_constraint("status", NEW_STATUSES)
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="postventa"))
        batch.add_column(sa.Column("author", sa.String(8), nullable=True))
        batch.add_column(sa.Column("read_at", UtcDateTime(), nullable=True))
        batch.create_check_constraint("source", "source in ('postventa', 'marketplace')")
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("marketplace_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("marketplace_substatus", sa.String(64), nullable=True))
        batch.add_column(sa.Column("marketplace_status_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("agent_user_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("marketplace_status")
    with op.batch_alter_table("conversations") as batch:
        for column in (
            "agent_user_id",
            "marketplace_status_at",
            "marketplace_substatus",
            "marketplace_status",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("ck_messages_source", type_="check")
        for column in ("read_at", "author", "source"):
            batch.drop_column(column)
        batch.drop_constraint("ck_messages_status", type_="check")
        batch.alter_column(
            "status", type_=sa.String(16), existing_type=sa.String(24), existing_nullable=False
        )
        batch.create_check_constraint("status", OLD_STATUSES)
    with op.batch_alter_table("marketplace_links") as batch:
        batch.drop_constraint("ck_marketplace_links_status", type_="check")
        for column in ("status_changed_at", "status_reason", "status"):
            batch.drop_column(column)
