"""The SDK's copy of the reasons stays the server's, and reads them the way the server does."""

from __future__ import annotations

import pytest
from postventa_sdk import Reason

from postventa.domain import reasons as server


def test_the_sdk_reasons_are_the_server_reasons():
    assert [(reason.name, reason.value) for reason in Reason] == [
        (reason.name, reason.value) for reason in server.Reason
    ]


@pytest.mark.parametrize("given", [4, "4", " 4 ", "OTHER", "other", "Other", Reason.OTHER])
def test_a_reason_is_taken_by_number_or_by_name_in_any_case(given):
    assert Reason.parse(given) is Reason.OTHER
    assert server.Reason.parse(given) is server.Reason.OTHER


@pytest.mark.parametrize("given", [0, 6, "0", "6"])
def test_a_number_out_of_range_is_refused(given):
    with pytest.raises(ValueError, match="not a valid Reason"):
        Reason.parse(given)


@pytest.mark.parametrize("given", ["THANKS", "", "4.0"])
def test_an_unknown_name_is_refused_with_the_known_ones(given):
    with pytest.raises(ValueError, match=r"one of REQUEST_VARIANTS, REQUEST_BILLING_INFO, .* or 1-5"):
        Reason.parse(given)
