"""One attempt's decisions: route, reconciliation, recipient, blocks, waits and what is recorded."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from postventa.domain.attempts import (
    CLOCK_SKEW,
    AttemptResult,
    Route,
    after_failure,
    after_unknown_attempt,
    block_failure,
    delivered,
    moderation_verdict,
    not_on_marketplace,
    pick_delivered,
    recipient,
    route_for,
    still_unreconciled,
)
from postventa.domain.delivery import (
    MAX_ATTEMPTS,
    WAIT_SECONDS,
    DeliveryFailure,
    FailureKind,
    MessageStatus,
    classify_response,
)

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
SELLER = 100


@dataclass(frozen=True)
class Seen:
    id: str
    from_user_id: int | None
    text: str
    created_at: dt.datetime | None


@pytest.mark.parametrize(
    ("previous", "buyer_first", "attachment", "agent", "route"),
    [
        (None, False, False, False, Route.ACTION_GUIDE),
        ("action_guide", False, False, False, Route.ACTION_GUIDE),
        ("messages", False, False, False, Route.MESSAGES),
        (None, True, False, False, Route.MESSAGES),
        (None, False, True, False, Route.MESSAGES),
        (None, False, False, True, Route.MESSAGES),
    ],
)
def test_the_action_guide_opens_and_messages_carries_an_open_conversation(
    previous, buyer_first, attachment, agent, route
):
    chosen = route_for(previous, buyer_wrote_first=buyer_first, has_attachment=attachment, with_agent=agent)

    assert chosen is route


def test_an_order_without_a_mercadolibre_id_fails_for_good():
    failure = not_on_marketplace(None, "EXT-12")

    assert failure is not None
    assert (failure.kind, failure.code) == (FailureKind.PERMANENT, "order_not_on_marketplace")
    assert not_on_marketplace(None, "2000001234") is None
    assert not_on_marketplace(55, "EXT-12") is None


def test_reconciliation_finds_the_unrecorded_seller_message_written_since_the_first_attempt():
    first = NOW - dt.timedelta(minutes=1)
    conversation = [
        Seen("old", SELLER, "Hola", first - CLOCK_SKEW - dt.timedelta(seconds=1)),
        Seen("buyer", 7, "Hola", NOW),
        Seen("known", SELLER, "Hola", NOW),
        Seen("other-text", SELLER, "Chau", NOW),
        Seen("ours", SELLER, " Hola ", NOW),
    ]

    found = pick_delivered(
        conversation, seller_id=SELLER, known_ids={"known"}, first_attempt_at=first, free_text="Hola"
    )

    assert found is not None
    assert found.id == "ours"


def test_reconciliation_of_a_template_ignores_the_text_and_takes_the_earliest():
    conversation = [
        Seen("later", SELLER, "b", NOW),
        Seen("earlier", SELLER, "a", NOW - dt.timedelta(seconds=5)),
    ]

    found = pick_delivered(
        conversation, seller_id=SELLER, known_ids=set(), first_attempt_at=None, free_text=None
    )

    assert found is not None
    assert found.id == "earlier"


def test_nothing_found_when_only_the_buyer_wrote():
    conversation = [Seen("buyer", 7, "Hola", NOW)]

    assert (
        pick_delivered(conversation, seller_id=SELLER, known_ids=set(), first_attempt_at=NOW, free_text=None)
        is None
    )


def test_an_agent_conversation_is_written_to_the_agent():
    assert recipient(7, None) == 7
    assert recipient(7, 3037675074) == 3037675074


@pytest.mark.parametrize(
    ("substatus", "kind", "code"),
    [
        ("blocked_by_payment", FailureKind.WAIT, "conversation_blocked_by_payment"),
        ("blocked_by_fulfillment", FailureKind.WAIT, "fulfillment_not_delivered"),
        ("blocked_by_buyer", FailureKind.PERMANENT, "conversation_blocked_by_buyer"),
        ("blocked_by_time", FailureKind.PERMANENT, "conversation_blocked_by_time"),
        ("blocked_by_mediation", FailureKind.PERMANENT, "conversation_in_mediation"),
        ("blocked_by_claim_change_open", FailureKind.PERMANENT, "conversation_blocked_by_claim"),
        ("blocked_by_deactivated_account", FailureKind.PERMANENT, "buyer_account_deactivated"),
        ("blocked_by_ai_assistant", FailureKind.PERMANENT, "conversation_blocked_by_agent"),
        ("blocked_by_cancelled_order", FailureKind.PERMANENT, "conversation_blocked"),
        (None, FailureKind.PERMANENT, "conversation_blocked"),
    ],
)
def test_each_block_has_its_documented_outcome(substatus, kind, code):
    failure = block_failure(substatus)

    assert (failure.kind, failure.code) == (kind, code)


@pytest.mark.parametrize(
    ("status", "text", "kind", "code"),
    [
        (400, "invalid_grant Error validating grant", FailureKind.RELINK, "marketplace_link_revoked"),
        (400, "bad_request blocked_by_excepted_case", FailureKind.REROUTE, "excepted_case"),
        (
            403,
            "blocked_conversation_send_message_forbidden blocked_by_payment",
            FailureKind.WAIT,
            "conversation_blocked_by_payment",
        ),
    ],
)
def test_mercadolibre_answers_that_wait_relink_or_reroute(status, text, kind, code):
    failure = classify_response(status, text)

    assert (failure.kind, failure.code) == (kind, code)


@pytest.mark.parametrize("kind", [FailureKind.WAIT, FailureKind.RELINK])
def test_a_temporary_condition_waits_and_never_fails_the_message(kind):
    failure = DeliveryFailure(kind, "conversation_blocked_by_payment", "blocked")

    outcome = after_failure(failure, MAX_ATTEMPTS + 5, "messages", NOW)

    assert outcome.status == MessageStatus.QUEUED
    assert outcome.attempt_outcome == AttemptResult.WAIT
    assert not outcome.counts_attempt
    assert outcome.next_attempt_at == NOW + dt.timedelta(seconds=WAIT_SECONDS)


def test_a_retry_counts_as_an_attempt():
    failure = DeliveryFailure(FailureKind.TRANSIENT, "marketplace_locked", "lock")

    assert after_failure(failure, 1, "messages", NOW, jitter=lambda: 0.0).counts_attempt


@pytest.mark.parametrize(
    ("pending", "moderated", "status", "result"),
    [
        (False, False, MessageStatus.SENT, AttemptResult.SENT),
        (True, False, MessageStatus.PENDING_MODERATION, AttemptResult.PENDING),
        (False, True, MessageStatus.MODERATED, AttemptResult.MODERATED),
    ],
)
def test_pending_moderation_is_not_sent(pending, moderated, status, result):
    outcome = delivered(
        "abc",
        Route.MESSAGES,
        moderation_pending=pending,
        moderated=moderated,
        moderation_reason="PERSONAL_DATA",
    )

    assert (outcome.status, outcome.attempt_outcome, outcome.marketplace_message_id) == (
        status,
        result,
        "abc",
    )
    assert outcome.moderation_reason == ("PERSONAL_DATA" if moderated else None)


def test_a_found_message_is_recorded_as_found():
    outcome = delivered(
        "abc", Route.RECONCILE, moderation_pending=False, moderated=False, moderation_reason=None, found=True
    )

    assert (outcome.status, outcome.attempt_outcome) == (MessageStatus.SENT, AttemptResult.FOUND)


def test_a_message_to_reconcile_stays_so_until_it_settles():
    retry = after_failure(DeliveryFailure(FailureKind.TRANSIENT, "x", "y"), 1, "messages", NOW)
    failed = after_failure(DeliveryFailure(FailureKind.PERMANENT, "x", "y"), 1, "messages", NOW)

    assert still_unreconciled(retry, needed=True).needs_reconcile
    assert not still_unreconciled(retry, needed=False).needs_reconcile
    assert still_unreconciled(failed, needed=True) == failed


@pytest.mark.parametrize(
    ("status", "moderation", "verdict"),
    [
        ("available", "clean", (False, False)),
        ("available", None, (False, False)),
        ("pending", "pending", (True, False)),
        ("IN_MODERATION", "NON_MODERATED", (True, False)),
        ("available", "PENDING", (True, False)),
        ("moderated", "rejected", (False, True)),
        ("available", "REJECTED", (False, True)),
    ],
)
def test_moderation_verdict_reads_any_case(status, moderation, verdict):
    assert moderation_verdict(status, moderation) == verdict


@pytest.mark.parametrize("code", ["marketplace_budget_wait", "marketplace_budget_unavailable"])
def test_a_call_our_own_pacing_held_back_is_no_attempt(code):
    failure = DeliveryFailure(FailureKind.TRANSIENT, code, "not now", retry_after_seconds=7)

    outcome = after_failure(failure, MAX_ATTEMPTS, "messages", NOW)

    assert (outcome.status, outcome.attempt_outcome) == (MessageStatus.QUEUED, AttemptResult.WAIT)
    assert not outcome.counts_attempt
    assert outcome.next_attempt_at == NOW + dt.timedelta(seconds=7)


def test_a_cap_refusal_after_an_unknown_attempt_is_reconciled_again_not_failed():
    refused = classify_response(403, "You are not allowed to execute the option OTHER again")

    again = after_unknown_attempt(refused, reconciling=True)
    outcome = after_failure(again, 2, "action_guide", NOW, jitter=lambda: 0.0)

    assert (again.kind, again.code) == (FailureKind.UNKNOWN, "reconcile_after_cap")
    assert (outcome.status, outcome.needs_reconcile) == (MessageStatus.QUEUED, True)
    assert after_unknown_attempt(refused, reconciling=False) is refused
