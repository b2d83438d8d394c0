"""Order preconditions (contract §3.5 check 8), their order, and the delivery window edges."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from postventa.domain.conversation import Direction, PastMessage
from postventa.domain.errors import RefusalKind
from postventa.domain.orders import DeliveryWindow, LogisticType, OrderFacts
from postventa.domain.reasons import Reason
from postventa.domain.sending import precondition_refusal, send_refusal, site_today, text_to_send
from postventa.domain.sites import Site

BUENOS_AIRES = ZoneInfo("America/Argentina/Buenos_Aires")
NOW = dt.datetime(2025, 3, 15, 12, 0, tzinfo=BUENOS_AIRES)
TODAY = dt.date(2025, 3, 15)
TOMORROW = dt.date(2025, 3, 16)

FINE_FLEX_ORDER = OrderFacts(
    marketplace="MercadoLibre",
    site=Site.MLA,
    status=10,
    logistic_type=LogisticType.FLEX,
    delivery_window=DeliveryWindow(TOMORROW, 9, 18),
)


def code_of(order: OrderFacts, reason: Reason, now: dt.datetime = NOW) -> str | None:
    refusal = precondition_refusal(order, reason, now)
    if refusal is None:
        return None
    assert refusal.kind is RefusalKind.PRECONDITION
    return refusal.code


def test_a_fine_flex_order_can_take_a_delivery_promise():
    assert code_of(FINE_FLEX_ORDER, Reason.DELIVERY_PROMISE) is None


@pytest.mark.parametrize("marketplace", ["Dafiti", "Amazon", "", "Mercado Libre"])
def test_order_from_another_marketplace_is_refused(marketplace):
    order = replace(FINE_FLEX_ORDER, marketplace=marketplace)

    assert code_of(order, Reason.OTHER) == "not_mercadolibre_order"


@pytest.mark.parametrize("marketplace", ["mercadolibre", "MERCADOLIBRE", " MercadoLibre "])
def test_mercadolibre_is_recognised_in_any_case(marketplace):
    order = replace(FINE_FLEX_ORDER, marketplace=marketplace)

    assert code_of(order, Reason.OTHER) is None


def test_not_mercadolibre_wins_over_every_other_failure():
    order = OrderFacts("Dafiti", Site.MPE, 90, LogisticType.FULFILLMENT, None)

    assert code_of(order, Reason.DELIVERY_PROMISE) == "not_mercadolibre_order"


def test_country_wins_over_logistic_type():
    order = replace(FINE_FLEX_ORDER, site=Site.MPE)  # flex is wrong for reason 1, Peru too

    assert code_of(order, Reason.REQUEST_VARIANTS) == "reason_not_available_in_country"


def test_order_without_a_known_site_has_no_country_for_any_reason():
    # Contract is silent on an unknown site; the code refuses even OTHER ("all sites").
    order = replace(FINE_FLEX_ORDER, site=None)

    assert code_of(order, Reason.OTHER) == "reason_not_available_in_country"


def test_logistic_type_wins_over_cancelled():
    order = replace(FINE_FLEX_ORDER, status=90)

    assert code_of(order, Reason.REQUEST_VARIANTS) == "reason_not_allowed_for_logistic_type"


@pytest.mark.parametrize("status", [11, 90, 93])
def test_cancelled_statuses_close_the_conversation(status):
    order = replace(FINE_FLEX_ORDER, status=status)

    assert code_of(order, Reason.OTHER) == "order_cancelled"


@pytest.mark.parametrize("status", [0, 10, 17, 20, 30, 31, 70, 80, 87, 89, 91, 92])
def test_statuses_that_are_not_cancelled_allow_messages(status):
    order = replace(FINE_FLEX_ORDER, status=status)

    assert code_of(order, Reason.OTHER) is None


@pytest.mark.parametrize("status", [11, 90, 93])
def test_cancelled_wins_over_fulfillment_not_delivered(status):
    order = replace(FINE_FLEX_ORDER, logistic_type=LogisticType.FULFILLMENT, status=status)

    assert code_of(order, Reason.OTHER) == "order_cancelled"


@pytest.mark.parametrize("status", [0, 10, 17, 20, 30, 31, 87, 89, 91, 92])
def test_fulfillment_order_opens_only_when_delivered(status):
    order = replace(FINE_FLEX_ORDER, logistic_type=LogisticType.FULFILLMENT, status=status)

    assert code_of(order, Reason.OTHER) == "fulfillment_not_delivered"
    assert code_of(replace(order, status=80), Reason.OTHER) is None


@pytest.mark.parametrize("logistic", [LogisticType.ME2, LogisticType.FLEX, LogisticType.CROSS_DOCKING])
def test_orders_not_by_fulfillment_need_not_be_delivered(logistic):
    order = replace(FINE_FLEX_ORDER, logistic_type=logistic, status=20)

    assert code_of(order, Reason.OTHER) is None


def test_cancelled_wins_over_a_missing_delivery_window():
    order = replace(FINE_FLEX_ORDER, status=90, delivery_window=None)

    assert code_of(order, Reason.DELIVERY_PROMISE) == "order_cancelled"


@pytest.mark.parametrize("logistic", [LogisticType.FLEX, LogisticType.FLEX_TURBO])
def test_delivery_promise_without_a_window_is_refused(logistic):
    order = replace(FINE_FLEX_ORDER, logistic_type=logistic, delivery_window=None)

    assert code_of(order, Reason.DELIVERY_PROMISE) == "delivery_window_missing"


@pytest.mark.parametrize("reason", [Reason.REQUEST_BILLING_INFO, Reason.SEND_INVOICE_LINK, Reason.OTHER])
def test_other_reasons_do_not_need_a_window(reason):
    order = OrderFacts("MercadoLibre", Site.MLM, 10, LogisticType.FLEX, None)

    assert code_of(order, reason) is None


def test_window_yesterday_is_past():
    order = replace(FINE_FLEX_ORDER, delivery_window=DeliveryWindow(dt.date(2025, 3, 14), 9, 18))

    assert code_of(order, Reason.DELIVERY_PROMISE) == "delivery_window_past"


def test_window_ending_exactly_now_is_past():
    order = replace(FINE_FLEX_ORDER, delivery_window=DeliveryWindow(TODAY, 9, 12))

    assert code_of(order, Reason.DELIVERY_PROMISE, dt.datetime(2025, 3, 15, 12, 0, tzinfo=BUENOS_AIRES)) == (
        "delivery_window_past"
    )


def test_window_ending_one_second_from_now_is_usable():
    order = replace(FINE_FLEX_ORDER, delivery_window=DeliveryWindow(TODAY, 9, 12))
    now = dt.datetime(2025, 3, 15, 11, 59, 59, tzinfo=BUENOS_AIRES)

    assert code_of(order, Reason.DELIVERY_PROMISE, now) is None


def test_window_later_today_is_usable_even_once_it_has_started():
    order = replace(FINE_FLEX_ORDER, delivery_window=DeliveryWindow(TODAY, 9, 18))

    assert code_of(order, Reason.DELIVERY_PROMISE) is None
    assert (
        code_of(replace(order, delivery_window=DeliveryWindow(TODAY, 14, 18)), Reason.DELIVERY_PROMISE)
        is None
    )


def test_window_is_read_in_the_sites_time_zone_not_utc():
    # 01:00 UTC on the 16th is 22:00 on the 15th in Buenos Aires: a window until 23 h is still ahead.
    now = dt.datetime(2025, 3, 16, 1, 0, tzinfo=dt.UTC)
    order = replace(FINE_FLEX_ORDER, delivery_window=DeliveryWindow(TODAY, 18, 23))

    assert code_of(order, Reason.DELIVERY_PROMISE, now) is None


def test_same_instant_and_window_differ_between_sites_in_different_zones():
    # 00:30 UTC on the 16th: 21:30 in Buenos Aires (UTC-3), 19:30 in Bogotá (UTC-5).
    now = dt.datetime(2025, 3, 16, 0, 30, tzinfo=dt.UTC)
    window = DeliveryWindow(TODAY, 15, 21)
    argentina = replace(FINE_FLEX_ORDER, site=Site.MLA, delivery_window=window)
    colombia = replace(FINE_FLEX_ORDER, site=Site.MCO, delivery_window=window)

    assert code_of(argentina, Reason.DELIVERY_PROMISE, now) == "delivery_window_past"
    assert code_of(colombia, Reason.DELIVERY_PROMISE, now) is None


def test_the_zone_of_now_does_not_change_the_decision():
    order = replace(FINE_FLEX_ORDER, delivery_window=DeliveryWindow(TODAY, 9, 12))
    at_noon_local = dt.datetime(2025, 3, 15, 15, 0, tzinfo=dt.UTC)  # 12:00 in Buenos Aires
    tokyo = at_noon_local.astimezone(ZoneInfo("Asia/Tokyo"))

    assert code_of(order, Reason.DELIVERY_PROMISE, at_noon_local) == "delivery_window_past"
    assert code_of(order, Reason.DELIVERY_PROMISE, tokyo) == "delivery_window_past"


def test_chile_summer_time_is_honoured():
    # January is summer in Chile (UTC-3): a window until 20 h ends at 23:00 UTC, not 00:00 UTC.
    order = OrderFacts(
        "MercadoLibre", Site.MLC, 10, LogisticType.FLEX, DeliveryWindow(dt.date(2025, 1, 10), 9, 20)
    )

    assert code_of(order, Reason.DELIVERY_PROMISE, dt.datetime(2025, 1, 10, 22, 59, tzinfo=dt.UTC)) is None
    assert code_of(order, Reason.DELIVERY_PROMISE, dt.datetime(2025, 1, 10, 23, 0, tzinfo=dt.UTC)) == (
        "delivery_window_past"
    )


def test_site_today_is_the_buyers_calendar_day():
    late_evening_in_argentina = dt.datetime(2025, 3, 16, 2, 30, tzinfo=dt.UTC)

    assert site_today(Site.MLA, late_evening_in_argentina) == TODAY
    assert site_today(Site.MLM, late_evening_in_argentina) == TODAY
    assert site_today(Site.MLA, dt.datetime(2025, 3, 16, 3, 0, tzinfo=dt.UTC)) == TOMORROW


def test_delivery_promise_text_says_tomorrow_on_the_buyers_calendar():
    # 02:30 UTC on the 16th is still the 15th in Argentina, so the 16th is "mañana", not "hoy".
    now = dt.datetime(2025, 3, 16, 2, 30, tzinfo=dt.UTC)

    text = text_to_send(FINE_FLEX_ORDER, Reason.DELIVERY_PROMISE, None, now)

    assert text == "Hola, entregaremos tu compra mañana entre las 9 y las 18 hs."


def test_text_to_send_is_the_sellers_text_for_free_text_reasons():
    assert text_to_send(FINE_FLEX_ORDER, Reason.OTHER, "Hola!", NOW) == "Hola!"


def test_text_to_send_is_the_template_for_template_reasons():
    order = OrderFacts("MercadoLibre", Site.MLB, 10, LogisticType.ME2, None)

    assert text_to_send(order, Reason.REQUEST_VARIANTS, None, NOW) == (
        "Olá! Por favor, confirme as características que quer para o produto que você comprou, "
        "assim, podemos fazer o envio."
    )


def test_send_refusal_checks_the_order_before_the_conversation():
    waiting = [PastMessage(Direction.OUTBOUND, Reason.OTHER)]
    cancelled = replace(FINE_FLEX_ORDER, status=90)

    order_refusal = send_refusal(cancelled, waiting, Reason.OTHER, has_attachment=False, now=NOW)
    conversation = send_refusal(FINE_FLEX_ORDER, waiting, Reason.OTHER, has_attachment=False, now=NOW)
    allowed = send_refusal(FINE_FLEX_ORDER, [], Reason.OTHER, has_attachment=False, now=NOW)

    assert order_refusal is not None
    assert (order_refusal.kind, order_refusal.code) == (RefusalKind.PRECONDITION, "order_cancelled")
    assert conversation is not None
    assert (conversation.kind, conversation.code) == (RefusalKind.CONFLICT, "awaiting_buyer_reply")
    assert allowed is None
