"""A quota's bounds (docs/decisions.md): a window from 1 second to 1 day, from 1 to 1,000,000
requests in it; the same parser reads POSTVENTA_RATE_LIMITS and every key's own limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postventa.services.auth import (
    MAX_RATE_LIMIT_AMOUNT,
    MAX_RATE_LIMIT_WINDOW_SECONDS,
    parse_rate_limits,
)

SECONDS_PER = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "month": 2592000, "year": 31104000}


def send_limit(rule: str) -> tuple[int, int]:
    item = parse_rate_limits(f"send={rule},read=100/minute")["send"]
    return item.amount, item.get_expiry()


def refusal(rule: str) -> str:
    with pytest.raises(ValueError, match="rate limit") as caught:
        parse_rate_limits(f"send={rule},read=100/minute")
    return str(caught.value)


def test_the_bounds():
    assert (MAX_RATE_LIMIT_AMOUNT, MAX_RATE_LIMIT_WINDOW_SECONDS) == (1_000_000, 86_400)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("1/second", (1, 1)),
        ("1/1 second", (1, 1)),
        ("120/minute", (120, 60)),
        ("5/10 minutes", (5, 600)),
        ("1000 per hour", (1000, 3600)),
        ("1/86400 seconds", (1, 86400)),
        ("1/day", (1, 86400)),
        ("1000000/minute", (1_000_000, 60)),
        ("10/MINUTE", (10, 60)),
    ],
)
def test_limits_within_the_bounds_are_read(rule, expected):
    assert send_limit(rule) == expected


@pytest.mark.parametrize(
    "rule",
    ["1/0 second", "1/0 minutes", "1/10000000000 year", "5/2 days", "1/86401 seconds", "1/month", "1/year"],
)
def test_a_window_outside_a_second_to_a_day_is_refused(rule):
    assert "window from 1 second to 1 day" in refusal(rule)


@pytest.mark.parametrize("rule", ["0/minute", "1000001/minute", "99999999999999999999/second"])
def test_an_amount_outside_one_to_a_million_is_refused(rule):
    assert "from 1 to 1000000 requests" in refusal(rule)


@pytest.mark.parametrize(
    "rule", ["ten/minute", "1/second;5/minute", "1/fortnight", "1/", "/minute", "-1/minute"]
)
def test_other_shapes_are_still_refused(rule):
    assert "must be one positive N/PERIOD" in refusal(rule)


@settings(max_examples=300, database=None, deadline=None)
@given(
    amount=st.integers(min_value=0, max_value=10**12),
    multiples=st.one_of(st.none(), st.integers(min_value=0, max_value=10**12)),
    unit=st.sampled_from(sorted(SECONDS_PER)),
)
def test_a_limit_is_read_exactly_when_its_amount_and_window_are_in_bounds(amount, multiples, unit):
    rule = f"{amount}/{unit}" if multiples is None else f"{amount}/{multiples} {unit}s"
    window = SECONDS_PER[unit] * (1 if multiples is None else multiples)
    in_bounds = 1 <= amount <= MAX_RATE_LIMIT_AMOUNT and 1 <= window <= MAX_RATE_LIMIT_WINDOW_SECONDS

    if in_bounds:
        assert send_limit(rule) == (amount, window)
    else:
        refusal(rule)
