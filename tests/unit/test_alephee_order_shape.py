"""The pure parts of an order in Alephee's shape: its timestamps, its buyer code, its delivery day."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import given
from hypothesis import strategies as st

from postventa.api.render import timestamp
from postventa.api.render_orders import buyer_code_number, delivery_day_start
from postventa.domain.orders import DeliveryWindow
from postventa.domain.sites import Site
from postventa.meli.models import parse_order

ALEPHEE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
ZONES = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
MOMENTS = st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=ZONES)


def test_a_timestamp_is_written_as_alephee_writes_it() -> None:
    moment = dt.datetime(2024, 5, 1, 9, 34, 56, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
    assert timestamp(moment) == "2024-05-01T12:34:56Z"
    assert timestamp(dt.datetime(5, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == "0005-01-02T03:04:05Z"
    assert timestamp(None) is None


@given(MOMENTS)
def test_every_timestamp_parses_with_the_taps_format_to_its_second(moment: dt.datetime) -> None:
    written = timestamp(moment)
    assert written is not None
    assert ALEPHEE_TIME.match(written)
    parsed = dt.datetime.strptime(written, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert parsed == moment.astimezone(dt.UTC).replace(microsecond=0)  # never rounded up


@given(MOMENTS, MOMENTS)
def test_comparing_the_strings_compares_the_seconds(first: dt.datetime, second: dt.datetime) -> None:
    # The tap keeps the greatest DateCreated string as its bookmark.
    if first.replace(microsecond=0) < second.replace(microsecond=0):
        assert str(timestamp(first)) < str(timestamp(second))


def test_buyer_code_is_the_marketplaces_numeric_id_or_none() -> None:
    assert buyer_code_number("123456789") == 123456789
    assert buyer_code_number("0") == 0
    assert buyer_code_number("9" * 19) == 10**19 - 1
    for not_a_number in (None, "", "ABC123", "007", "12 3", "١٢", "-5", "1.5"):
        assert buyer_code_number(not_a_number) is None


def test_the_delivery_day_starts_on_the_sites_clock() -> None:
    window = DeliveryWindow(dt.date(2024, 5, 3), 9, 18)
    start = delivery_day_start(window, Site.MLA)
    assert timestamp(start) == "2024-05-03T03:00:00Z"  # midnight in Buenos Aires
    assert timestamp(delivery_day_start(window, Site.MLM)) == "2024-05-03T06:00:00Z"
    assert delivery_day_start(window, None) is None  # a local day without a place has no instant
    assert delivery_day_start(None, Site.MLA) is None


def test_mercado_libres_date_closed_and_shipment_are_read() -> None:
    order = parse_order(
        {
            "id": 2000001,
            "status": "paid",
            "date_created": "2024-05-01T09:00:00.000-03:00",
            "date_closed": "2024-05-01T09:02:03.000-03:00",
            "shipping": {"id": 43000000001},
        }
    )
    assert order.date_closed == dt.datetime(2024, 5, 1, 12, 2, 3, tzinfo=dt.UTC)
    assert order.shipment_id == 43000000001
    unpaid = parse_order({"id": 2000002, "status": "payment_required", "date_closed": None, "shipping": {}})
    assert (unpaid.date_closed, unpaid.shipment_id) == (None, None)
