"""The claim's index orders by (status, next_attempt_at, id), the claim's own order.

A claim takes the oldest due messages, ties broken by id. PostgreSQL's index on (status,
next_attempt_at) gave the rows in due order but not by id within one instant, so every claim sorted
all the queued messages due at the same instant: after a bulk requeue (or a burst queued in one
commit) that was every message in the queue, 10,000 rows sorted to hand out a few, 7 ms a claim.
With the id in the index the claim reads its rows in order and stops at the limit. (SQLite's
indexes end with the rowid, which is the id: it already walked in that order.)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_INDEX = "ix_messages_status_next_attempt_at"
NEW_INDEX = "ix_messages_status_next_attempt_at_id"


def upgrade() -> None:
    op.create_index(NEW_INDEX, "messages", ["status", "next_attempt_at", "id"])
    op.drop_index(OLD_INDEX, table_name="messages")


def downgrade() -> None:
    op.create_index(OLD_INDEX, "messages", ["status", "next_attempt_at"])
    op.drop_index(NEW_INDEX, table_name="messages")
