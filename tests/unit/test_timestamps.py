"""Timestamps on SQLite: the one-call text form is exactly what SQLAlchemy's DATETIME would store
(stored rows, their ordering as text and the migrations' defaults all rely on that form)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.base import DATETIME

from postventa.store.tables import UtcDateTime

SQLITE = sqlite.dialect()
OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
MOMENTS = st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=OFFSETS)


def sqlalchemy_text(value: dt.datetime) -> str:
    """The column's value through SQLAlchemy's own SQLite processor, after our conversion to UTC."""
    in_utc = UtcDateTime().process_bind_param(value, SQLITE)
    process = DATETIME().bind_processor(SQLITE)
    assert process is not None
    assert in_utc is not None
    return str(process(in_utc))


@given(MOMENTS)
def test_sqlite_text_is_sqlalchemys(moment: dt.datetime) -> None:
    process = UtcDateTime().bind_processor(SQLITE)
    assert process(moment) == sqlalchemy_text(moment)


def test_whole_seconds_keep_their_microseconds_digits() -> None:
    process = UtcDateTime().bind_processor(SQLITE)
    moment = dt.datetime(2026, 12, 2, 14, 5, 48, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
    assert process(moment) == "2026-12-02 17:05:48.000000"
    assert process(None) is None


def test_a_naive_time_is_refused() -> None:
    process = UtcDateTime().bind_processor(SQLITE)
    with pytest.raises(ValueError, match="naive"):
        process(dt.datetime(2026, 12, 2, 14, 5, 48))


@given(st.lists(MOMENTS, min_size=1, max_size=8))
def test_each_value_gets_its_own_text_whatever_came_before(moments: list[dt.datetime]) -> None:
    # The processors keep the last value's text: a run of values, repeated or not, through the
    # processors of different columns, each gets its own.
    processors = [UtcDateTime().bind_processor(SQLITE), UtcDateTime().bind_processor(SQLITE)]
    for index, moment in enumerate([*moments, *moments[::-1], moments[0], moments[0]]):
        assert processors[index % 2](moment) == sqlalchemy_text(moment)
