"""The conversation rules as plain functions: which block holds, when a conversation is quiet too
long, each option's cap, and when moderation's verdict shows."""

from __future__ import annotations

import datetime as dt

import pytest

from postventa.emulator.blocking import age_conversation, block_for, conversation_block, is_quiet_too_long
from postventa.emulator.config import OTHER_CLOSED_ON_DELIVERY_SITES
from postventa.emulator.guide import option_caps, use_cap
from postventa.emulator.models import Buyer, Conversation, Message, Order, Shipment
from postventa.emulator.moderation import moderation_status, reject_later

NOW = dt.datetime(2026, 6, 10, 12, tzinfo=dt.UTC)
BUYER = Buyer(7, "COMPRADOR")


def conversation(site: str = "MLM") -> Conversation:
    return Conversation(1, 2, BUYER, site, 3, [4])


def shipment(status: str = "ready_to_ship", logistic_type: str = "drop_off", site: str = "MLM") -> Shipment:
    return Shipment(3, 2, site, logistic_type, status, None, NOW)


def order(status: str = "paid") -> Order:
    return Order(4, 2, BUYER, "MLM", 1, 3, status, NOW, NOW)


def message(
    created: dt.datetime, *, judged_at: dt.datetime | None = None, reason: str | None = None
) -> Message:
    return Message("a" * 32, 1, 2, "MLM", None, 2, 7, "hola", reason, created, False, judged_at=judged_at)


def test_forced_block_first_then_cancelled_fulfillment_payment_time() -> None:
    quiet = conversation()
    quiet.messages.append(message(NOW - dt.timedelta(days=40)))
    full = shipment(logistic_type="fulfillment")
    assert (
        conversation_block(quiet, [order("cancelled")], full, NOW).substatus == "blocked_by_cancelled_order"
    )
    assert (
        conversation_block(quiet, [order("payment_required")], full, NOW).substatus
        == "blocked_by_fulfillment"
    )
    assert (
        conversation_block(quiet, [order("payment_required")], shipment(), NOW).substatus
        == "blocked_by_payment"
    )
    assert conversation_block(quiet, [order()], shipment(), NOW).substatus == "blocked_by_time"
    quiet.forced_block = "blocked_by_buyer"
    assert conversation_block(quiet, [order("cancelled")], full, NOW).substatus == "blocked_by_buyer"


def test_thirty_days_exactly_is_not_yet_quiet_too_long() -> None:
    talk = conversation()
    assert not is_quiet_too_long(talk, NOW)
    talk.messages.append(message(NOW - dt.timedelta(days=30)))
    assert not is_quiet_too_long(talk, NOW)
    assert is_quiet_too_long(talk, NOW + dt.timedelta(seconds=1))


def test_aging_moves_every_date_back() -> None:
    talk = conversation()
    talk.messages.append(message(NOW, judged_at=NOW))
    age_conversation(talk, 2)
    [aged] = talk.messages
    assert (aged.created, aged.judged_at) == (NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=2))


@pytest.mark.parametrize(
    ("substatus", "status", "guide_error", "send_message"),
    [
        ("blocked_by_deactivated_account", 451, "Unavailable", "Unavailable"),
        ("blocked_by_buyer", 403, "forbidden", "blocked_conversation_send_message_forbidden"),
    ],
)
def test_block_answers(substatus: str, status: int, guide_error: str, send_message: str) -> None:
    block = block_for(substatus)
    assert (block.status, block.guide_error, block.send_message) == (status, guide_error, send_message)


def test_other_closes_after_delivery_only_on_the_rule_sites() -> None:
    assert option_caps(conversation("MLM"), shipment("delivered"), None, OTHER_CLOSED_ON_DELIVERY_SITES) == {
        "REQUEST_VARIANTS": 1,
        "REQUEST_BILLING_INFO": 1,
        "SEND_INVOICE_LINK": 1,
        "OTHER": 0,
    }
    mla = option_caps(
        conversation("MLA"), shipment("delivered", site="MLA"), None, OTHER_CLOSED_ON_DELIVERY_SITES
    )
    assert mla["OTHER"] == 1


def test_forced_cap_outlives_the_guide_and_counts_down() -> None:
    talk = conversation("MLA")
    talk.cap_overrides["OTHER"] = 2
    use_cap(talk, "REQUEST_VARIANTS")
    assert option_caps(talk, shipment(site="MLA"), None, frozenset()) == {
        "REQUEST_VARIANTS": 0,
        "REQUEST_BILLING_INFO": 0,
        "OTHER": 2,
    }
    use_cap(talk, "OTHER")
    assert talk.cap_overrides["OTHER"] == 1
    talk.buyer_has_written = True
    assert set(option_caps(talk, shipment(site="MLA"), None, frozenset()).values()) == {0}


def test_verdict_shows_at_its_time_and_a_late_one_at_once() -> None:
    later = NOW + dt.timedelta(seconds=5)
    pending = message(NOW, judged_at=later, reason="PERSONAL_DATA")
    assert (moderation_status(pending, NOW), pending.status_at(NOW)) == ("pending", "pending")
    assert (moderation_status(pending, later), pending.status_at(later)) == ("rejected", "moderated")
    clean = message(NOW, judged_at=NOW)
    reject_later(clean, "AUTOMATIC_MESSAGE", NOW)
    assert (moderation_status(clean, NOW), clean.status_at(NOW)) == ("rejected", "moderated")
