"""The unique index on (account_id, marketplace_message_id) holds only messages that have an id.

A message gets its Mercado Libre id when it is delivered (or received); until then its entry in the
index said nothing, yet every send wrote it: one more page of the log per accepted message.
Queries by id (`marketplace_message_id = …`, `IS NOT NULL`) use the partial index as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_messages_account_id_marketplace_message_id"
HAS_MARKETPLACE_ID = "marketplace_message_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index(INDEX, table_name="messages")
    op.create_index(
        INDEX,
        "messages",
        ["account_id", "marketplace_message_id"],
        unique=True,
        sqlite_where=sa.text(HAS_MARKETPLACE_ID),
        postgresql_where=sa.text(HAS_MARKETPLACE_ID),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="messages")
    op.create_index(INDEX, "messages", ["account_id", "marketplace_message_id"], unique=True)
