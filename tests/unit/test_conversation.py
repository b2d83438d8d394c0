"""Conversation rules (contract §3.5 check 9): who may write next on a pack's conversation."""

from __future__ import annotations

import pytest

from postventa.domain.conversation import Direction, PastMessage, conversation_refusal
from postventa.domain.errors import RefusalKind
from postventa.domain.reasons import Reason

OTHER = Reason.OTHER
INVOICE = Reason.SEND_INVOICE_LINK


def seller(reason: Reason = OTHER, *, attachment: bool = False, failed: bool = False) -> PastMessage:
    return PastMessage(Direction.OUTBOUND, reason, has_attachment=attachment, failed=failed)


def buyer() -> PastMessage:
    return PastMessage(Direction.INBOUND)


def code_of(history, reason: Reason = OTHER, *, attachment: bool = False) -> str | None:
    refusal = conversation_refusal(history, reason, has_attachment=attachment)
    if refusal is None:
        return None
    assert refusal.kind is RefusalKind.CONFLICT
    return refusal.code


def test_first_message_of_an_empty_conversation_is_allowed():
    assert code_of([]) is None


@pytest.mark.parametrize("reason", list(Reason))
def test_second_seller_message_waits_for_the_buyer(reason):
    assert code_of([seller()], reason) == "awaiting_buyer_reply"


def test_buyer_reply_unlocks_the_next_seller_message():
    assert code_of([seller(), buyer()]) is None


def test_every_seller_message_needs_its_own_reply():
    assert code_of([seller(), buyer(), seller()]) == "awaiting_buyer_reply"
    assert code_of([seller(), buyer(), seller(), buyer()]) is None


def test_buyer_writing_first_does_not_block_the_seller():
    assert code_of([buyer()]) is None
    assert code_of([buyer(), buyer()]) is None


def test_a_buyer_message_before_the_last_seller_message_does_not_count_as_reply():
    assert code_of([buyer(), seller()]) == "awaiting_buyer_reply"


def test_a_failed_seller_message_does_not_count_as_sent():
    assert code_of([seller(failed=True)]) is None
    assert code_of([seller(), buyer(), seller(failed=True)]) is None


def test_a_failed_message_after_a_pending_one_does_not_unlock_it():
    assert code_of([seller(), seller(failed=True)]) == "awaiting_buyer_reply"


def test_attachment_on_the_first_message_is_refused():
    assert code_of([], attachment=True) == "attachment_requires_answered_message"


def test_attachment_needs_the_buyer_to_have_answered_a_plain_message():
    assert code_of([buyer()], attachment=True) == "attachment_requires_answered_message"
    assert code_of([seller(), buyer()], attachment=True) is None


def test_answered_failed_plain_message_does_not_open_attachments():
    history = [seller(failed=True), buyer()]

    assert code_of(history, attachment=True) == "attachment_requires_answered_message"


def test_attachment_after_answered_plain_message_then_more_exchanges_is_allowed():
    history = [seller(), buyer(), seller(), buyer()]

    assert code_of(history, attachment=True) is None


def test_after_an_attachment_later_messages_must_use_its_reason():
    history = [seller(OTHER), buyer(), seller(INVOICE, attachment=True), buyer()]

    assert code_of(history, OTHER) == "reason_locked_by_attachment"
    assert code_of(history, OTHER, attachment=True) == "reason_locked_by_attachment"
    assert code_of(history, INVOICE) is None
    assert code_of(history, INVOICE, attachment=True) is None


def test_the_lock_stays_after_further_messages_of_the_same_reason():
    history = [
        seller(OTHER),
        buyer(),
        seller(INVOICE, attachment=True),
        buyer(),
        seller(INVOICE),
        buyer(),
    ]

    assert code_of(history, OTHER) == "reason_locked_by_attachment"
    assert code_of(history, INVOICE) is None


def test_the_latest_attachment_sets_the_reason():
    history = [
        seller(OTHER),
        buyer(),
        seller(INVOICE, attachment=True),
        buyer(),
        seller(OTHER, attachment=True),
        buyer(),
    ]

    assert code_of(history, OTHER) is None
    assert code_of(history, INVOICE) == "reason_locked_by_attachment"


def test_a_failed_attachment_message_does_not_lock_the_reason():
    history = [seller(OTHER), buyer(), seller(INVOICE, attachment=True, failed=True)]

    assert code_of(history, OTHER) is None


def test_awaiting_reply_wins_over_the_attachment_rule():
    assert code_of([seller()], attachment=True) == "awaiting_buyer_reply"


def test_awaiting_reply_wins_over_the_reason_lock():
    history = [seller(OTHER), buyer(), seller(INVOICE, attachment=True)]

    assert code_of(history, OTHER) == "awaiting_buyer_reply"


def test_attachment_rule_wins_over_the_reason_lock():
    # The only plain message failed, so no answered plain message exists; an attachment did go out.
    history = [seller(OTHER, failed=True), buyer(), seller(INVOICE, attachment=True), buyer()]

    assert code_of(history, OTHER, attachment=True) == "attachment_requires_answered_message"
    assert code_of(history, OTHER) == "reason_locked_by_attachment"


def test_refusal_messages_explain_the_rule():
    waiting = conversation_refusal([seller()], OTHER, has_attachment=False)
    locked = conversation_refusal(
        [seller(), buyer(), seller(INVOICE, attachment=True), buyer()], OTHER, has_attachment=False
    )

    assert waiting is not None
    assert "replied" in waiting.message
    assert locked is not None
    assert "SEND_INVOICE_LINK" in locked.message
