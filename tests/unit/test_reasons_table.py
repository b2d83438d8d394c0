"""Every cell of the reasons table (contract §3.2) through the order preconditions.

The expected table is written here straight from the contract, not derived from REASON_RULES,
so a wrong row in the code makes these tests fail.
"""

from __future__ import annotations

import datetime as dt

import pytest

from postventa.domain.errors import RefusalKind
from postventa.domain.orders import DeliveryWindow, LogisticType, OrderFacts
from postventa.domain.reasons import Reason
from postventa.domain.sending import precondition_refusal
from postventa.domain.sites import Site

# 15:00 UTC is morning on every site in scope, so "tomorrow" is 2025-03-16 everywhere.
NOW = dt.datetime(2025, 3, 15, 15, 0, tzinfo=dt.UTC)
TOMORROW_WINDOW = DeliveryWindow(dt.date(2025, 3, 16), 9, 18)

# Contract §3.2, column "countries" (country → site per §2).
COUNTRIES_BY_REASON = {
    1: {"AR", "CL", "CO", "MX", "UY", "BR"},
    2: {"AR", "CO", "MX", "UY"},
    3: {"MX"},
    4: {"AR", "BR", "MX", "CO", "CL", "UY", "PE", "EC"},
    5: {"AR", "BR", "CL", "CO", "UY"},
}
SITE_COUNTRY = {
    "MLA": "AR",
    "MLB": "BR",
    "MLM": "MX",
    "MCO": "CO",
    "MLC": "CL",
    "MLU": "UY",
    "MPE": "PE",
    "MEC": "EC",
}
# Contract §3.2, column "logistic types" (None: any, including an unknown type).
LOGISTIC_KEYS_BY_REASON: dict[int, set[int] | None] = {
    1: {8, 3},  # cross_docking, me2 (drop off)
    2: None,
    3: None,
    4: None,
    5: {6, 15},  # flex, flex-turbo
}
FULFILLMENT_KEY = 5


def expected_refusal(reason: int, site: str, logistic_key: int | None) -> str | None:
    if SITE_COUNTRY[site] not in COUNTRIES_BY_REASON[reason]:
        return "reason_not_available_in_country"
    allowed = LOGISTIC_KEYS_BY_REASON[reason]
    if allowed is not None and logistic_key not in allowed:
        return "reason_not_allowed_for_logistic_type"
    return None


def table_cells():
    for reason in (1, 2, 3, 4, 5):
        for site in SITE_COUNTRY:
            for logistic in [*LogisticType, None]:
                key = None if logistic is None else int(logistic)
                yield pytest.param(
                    reason,
                    site,
                    logistic,
                    expected_refusal(reason, site, key),
                    id=f"reason{reason}-{site}-{logistic.label if logistic else 'none'}",
                )


def test_the_table_covers_every_logistic_type_of_the_contract():
    assert sorted(int(member) for member in LogisticType) == [1, 2, 3, 4, 5, 6, 7, 8, 14, 15]
    assert sorted(site.value for site in Site) == sorted(SITE_COUNTRY)


@pytest.mark.parametrize(("reason", "site", "logistic", "expected"), list(table_cells()))
def test_reason_site_and_logistic_type_cell(reason, site, logistic, expected):
    # Fulfillment orders open messaging on delivery, so they are delivered (80) here.
    status = 80 if logistic is LogisticType.FULFILLMENT else 10
    order = OrderFacts(
        marketplace="MercadoLibre",
        site=Site(site),
        status=status,
        logistic_type=logistic,
        delivery_window=TOMORROW_WINDOW,
    )

    refusal = precondition_refusal(order, Reason(reason), NOW)

    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert refusal.code == expected
        assert refusal.kind is RefusalKind.PRECONDITION


@pytest.mark.parametrize("reason", [2, 3, 4])
def test_fulfillment_order_not_yet_delivered_is_refused_where_the_cell_allows_it(reason):
    order = OrderFacts("MercadoLibre", Site.MLM, 10, LogisticType.FULFILLMENT, TOMORROW_WINDOW)

    refusal = precondition_refusal(order, Reason(reason), NOW)

    assert refusal is not None
    assert refusal.code == "fulfillment_not_delivered"


@pytest.mark.parametrize("reason", [1, 5])
def test_fulfillment_order_is_refused_for_its_logistic_type_before_delivery_matters(reason):
    order = OrderFacts("MercadoLibre", Site.MLA, 10, LogisticType.FULFILLMENT, TOMORROW_WINDOW)

    refusal = precondition_refusal(order, Reason(reason), NOW)

    assert refusal is not None
    assert refusal.code == "reason_not_allowed_for_logistic_type"


def test_refusal_messages_name_the_reason_and_the_country_or_logistic_type():
    country = precondition_refusal(
        OrderFacts("MercadoLibre", Site.MPE, 10, LogisticType.ME2, None), Reason.REQUEST_VARIANTS, NOW
    )
    logistic = precondition_refusal(
        OrderFacts("MercadoLibre", Site.MLA, 10, LogisticType.ME1, None), Reason.REQUEST_VARIANTS, NOW
    )

    assert country is not None
    assert "REQUEST_VARIANTS" in country.message
    assert "Peru" in country.message
    assert logistic is not None
    assert "REQUEST_VARIANTS" in logistic.message
    assert "cross_docking" in logistic.message
    assert "me2" in logistic.message
    assert "me1" in logistic.message
