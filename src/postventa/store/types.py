"""The column types the schema shares (store/tables.py) and the migrations use."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit identities.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timestamps stored in UTC and always read back time-zone aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite, the text SQLAlchemy's DATETIME would store, written in one call (its own
        processor fills a format from a dict: a few percent of a send's CPU). Elsewhere, as usual."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text


# The last timestamp written as text, and its text: a send binds the same `now` three times
# (created, status changed, next attempt), each column through its own processor. Kept by identity
# (datetimes are immutable), as one tuple so that a thread reading it never sees half an update.
_last_text: tuple[dt.datetime | None, str | None] = (None, None)


def _sqlite_text(value: dt.datetime | None) -> str | None:
    global _last_text
    if value is None:
        return None
    seen, text = _last_text
    if value is seen:
        return text
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    utc = value if value.tzinfo is dt.UTC else value.astimezone(dt.UTC)  # the clock's are UTC already
    text = utc.replace(tzinfo=None).isoformat(" ", "microseconds")
    _last_text = (value, text)
    return text
