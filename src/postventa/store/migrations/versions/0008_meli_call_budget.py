"""Mercado Libre's call budget in the database, for the processes of one application to share it
when no Redis is configured: `meli_call_window` (the calls reserved in the moving window, one row per
block) and `meli_call_counters` (counters that expire: a cool-down after a 429).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from postventa.store.tables import Id

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meli_call_window",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("taken_at", sa.Double(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_meli_call_window"),
    )
    op.create_index("ix_meli_call_window_key_taken_at", "meli_call_window", ["key", "taken_at"])
    op.create_table(
        "meli_call_counters",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meli_call_counters"),
    )


def downgrade() -> None:
    op.drop_table("meli_call_counters")
    op.drop_index("ix_meli_call_window_key_taken_at", table_name="meli_call_window")
    op.drop_table("meli_call_window")
