"""Attachment bytes in a table of their own, as its last column.

SQLite writes a large value without holding it in memory only when it is the last column of its
row: there a zero-filled blob of the file's size is written as a count of zeros, and the bytes go
into its pages afterwards (store/sqlite_driver.py `write_blob`). `attachments.content` was followed
by `created_at`, which made SQLite build the whole record, zeros included, in memory.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "attachment_contents",
        sa.Column("attachment_id", Id, autoincrement=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["attachments.id"],
            name="fk_attachment_contents_attachment_id_attachments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("attachment_id", name="pk_attachment_contents"),
    )
    op.execute("INSERT INTO attachment_contents (attachment_id, content) SELECT id, content FROM attachments")
    # A plain column: both databases drop it in place (SQLite since 3.35), without rebuilding the table.
    op.execute("ALTER TABLE attachments DROP COLUMN content")


def downgrade() -> None:
    op.add_column("attachments", sa.Column("content", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE attachments SET content = "
        "(SELECT content FROM attachment_contents WHERE attachment_id = attachments.id)"
    )
    op.drop_table("attachment_contents")
