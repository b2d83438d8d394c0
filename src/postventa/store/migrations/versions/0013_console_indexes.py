"""The console's inbox finds a conversation's orders by its id: an index on orders (conversation_id,
date_created).

The inbox orders conversations by their latest activity, which for a conversation without messages
is its newest order's date, and shows each row's orders. Without an index every such lookup read
the whole orders table: the inbox of an account with 10,000 conversations took 1.5 s on SQLite and
1 s on PostgreSQL; with it, a few milliseconds (bench/console.py, docs/performance.md).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_orders_conversation_id_date_created"


def upgrade() -> None:
    op.create_index(INDEX, "orders", ["conversation_id", "date_created"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="orders")
