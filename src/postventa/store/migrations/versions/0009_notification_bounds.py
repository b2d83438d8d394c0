"""Indexes for the notifications' bounds: due ones claimed newest first, and each seller's pending
ones counted and the oldest dropped beyond the per-seller bound (issue 16).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_inbound_notifications_processed_at_received_at",
        "inbound_notifications",
        ["processed_at", "received_at"],
    )
    op.create_index(
        "ix_inbound_notifications_user_id_processed_at_received_at",
        "inbound_notifications",
        ["user_id", "processed_at", "received_at"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_inbound_notifications_user_id_processed_at_received_at", table_name="inbound_notifications"
    )
    op.drop_index("ix_inbound_notifications_processed_at_received_at", table_name="inbound_notifications")
