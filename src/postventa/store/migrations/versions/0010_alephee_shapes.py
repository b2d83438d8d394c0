"""What Alephee's reads show that postventa did not keep: an account's business name and document,
an order's closing date and Mercado Libre shipment id; orders paged by date with a stable tie-break
by id (issue 17).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from postventa.store.tables import UtcDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as accounts:
        accounts.add_column(sa.Column("business_name", sa.String(200), nullable=True))
        accounts.add_column(sa.Column("doc_type", sa.String(32), nullable=True))
        accounts.add_column(sa.Column("doc_number", sa.String(64), nullable=True))
    with op.batch_alter_table("orders") as orders:
        orders.add_column(sa.Column("date_closed", UtcDateTime(), nullable=True))
        orders.add_column(sa.Column("shipping_id", sa.BigInteger(), nullable=True))
    op.drop_index("ix_orders_account_id_date_created", table_name="orders")
    op.create_index("ix_orders_account_id_date_created_id", "orders", ["account_id", "date_created", "id"])


def downgrade() -> None:
    op.drop_index("ix_orders_account_id_date_created_id", table_name="orders")
    op.create_index("ix_orders_account_id_date_created", "orders", ["account_id", "date_created"])
    with op.batch_alter_table("orders") as orders:
        orders.drop_column("shipping_id")
        orders.drop_column("date_closed")
    with op.batch_alter_table("accounts") as accounts:
        accounts.drop_column("doc_number")
        accounts.drop_column("doc_type")
        accounts.drop_column("business_name")
