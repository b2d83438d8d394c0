"""The operator console's tables (issue 19): its users, the accounts each may see, and what each
conversation's buyer messages were read up to."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
)

from postventa.store.schema import metadata
from postventa.store.types import Id, UtcDateTime

console_users = Table(
    "console_users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),  # kept in lower case
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    CheckConstraint("role in ('operator', 'admin')", name="role"),
)

console_user_accounts = Table(
    "console_user_accounts",
    metadata,
    Column("user_id", ForeignKey("console_users.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
)

# How far the console's users have read each conversation: its buyer messages up to this sequence
# were opened in the console ("unread" is a buyer message past it). Never sent to Mercado Libre.
console_conversation_reads = Table(
    "console_conversation_reads",
    metadata,
    Column(
        "conversation_id",
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("read_sequence", Integer, nullable=False),
    Column("read_at", UtcDateTime(), nullable=False),
)
