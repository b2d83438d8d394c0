"""The action guide's rules in the send decision: Mercado Libre's caps, OTHER after delivery, payment."""

from __future__ import annotations

import datetime as dt

import pytest

from postventa.domain.conversation import Direction, PastMessage
from postventa.domain.guide import OTHER_CLOSED_ON_DELIVERY, GuideCaps
from postventa.domain.orders import DELIVERED, LogisticType, OrderFacts
from postventa.domain.reasons import Reason
from postventa.domain.sending import send_refusal
from postventa.domain.sites import Site

NOW = dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC)
BUYER_WROTE = [PastMessage(Direction.INBOUND)]


def order(site: Site = Site.MLA, status: int = 10, marketplace_status: str | None = "paid") -> OrderFacts:
    return OrderFacts("MercadoLibre", site, status, LogisticType.CROSS_DOCKING, None, marketplace_status)


def code(refusal) -> str | None:
    return refusal.code if refusal is not None else None


def test_a_cap_of_zero_refuses_the_first_contact_with_that_reason_only():
    caps = GuideCaps({"OTHER": 0, "REQUEST_BILLING_INFO": 1})

    other = send_refusal(order(), [], Reason.OTHER, has_attachment=False, now=NOW, caps=caps)
    billing = send_refusal(order(), [], Reason.REQUEST_BILLING_INFO, has_attachment=False, now=NOW, caps=caps)

    assert code(other) == "marketplace_cap_exhausted"
    assert other is not None
    assert "cap is 0" in other.message
    assert billing is None


def test_caps_do_not_apply_once_the_buyer_wrote():
    caps = GuideCaps({"OTHER": 0})

    assert send_refusal(order(), BUYER_WROTE, Reason.OTHER, has_attachment=False, now=NOW, caps=caps) is None


def test_unknown_caps_and_excepted_packs_leave_the_local_rules_to_decide():
    assert send_refusal(order(), [], Reason.OTHER, has_attachment=False, now=NOW, caps=None) is None
    excepted = GuideCaps({"OTHER": 0}, excepted=True)
    assert send_refusal(order(), [], Reason.OTHER, has_attachment=False, now=NOW, caps=excepted) is None


def test_the_seller_waiting_for_a_reply_is_told_so_rather_than_the_cap():
    waiting = [PastMessage(Direction.OUTBOUND, Reason.OTHER)]

    refusal = send_refusal(
        order(), waiting, Reason.OTHER, has_attachment=False, now=NOW, caps=GuideCaps({"OTHER": 0})
    )

    assert code(refusal) == "awaiting_buyer_reply"


@pytest.mark.parametrize("site", sorted(Site, key=lambda site: site.value))
def test_other_cannot_open_a_conversation_after_delivery_where_mercadolibre_says_so(site):
    delivered = order(site=site, status=DELIVERED)

    refusal = send_refusal(delivered, [], Reason.OTHER, has_attachment=False, now=NOW)

    expected = "reason_closed_after_delivery" if site in OTHER_CLOSED_ON_DELIVERY else None
    assert code(refusal) == expected
    assert send_refusal(delivered, BUYER_WROTE, Reason.OTHER, has_attachment=False, now=NOW) is None


@pytest.mark.parametrize("status", ["payment_required", "payment_in_process", "PARTIALLY_PAID"])
def test_an_unpaid_order_is_refused_412(status):
    refusal = send_refusal(order(marketplace_status=status), [], Reason.OTHER, has_attachment=False, now=NOW)

    assert code(refusal) == "order_payment_pending"
    assert refusal is not None
    assert refusal.kind.value == "precondition"


def test_a_paid_or_imported_order_is_not_payment_pending():
    assert (
        send_refusal(order(marketplace_status="paid"), [], Reason.OTHER, has_attachment=False, now=NOW)
        is None
    )
    assert (
        send_refusal(order(marketplace_status=None), [], Reason.OTHER, has_attachment=False, now=NOW) is None
    )
