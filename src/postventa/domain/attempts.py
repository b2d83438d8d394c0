"""One delivery attempt as pure decisions: the route, what counts as already delivered, whom to
write to, what Mercado Libre's answer means for the message, and the outcome to record.

The worker (delivery/) only does the I/O these decide on: every rule here has a unit test.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from postventa.domain.delivery import (
    DEFAULT_RETRY_POLICY,
    DeliveryFailure,
    FailureKind,
    MessageStatus,
    RetryPolicy,
    classify_response,
    retry_delay_seconds,
)
from postventa.domain.orders import marketplace_conversation

# Mercado Libre's clock and ours may differ: a reconciliation looks this far before the first attempt.
CLOCK_SKEW = dt.timedelta(minutes=5)
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
# Calls our own pacing held back (meli/pacing.py): the call budget's turn too far away, or its
# storage out of reach. Nothing was sent, so they are no attempt.
OWN_PACING = frozenset({"marketplace_budget_wait", "marketplace_budget_unavailable"})
_LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


class Route(enum.StrEnum):
    """How a message reaches Mercado Libre (and how an attempt found it there)."""

    ACTION_GUIDE = "action_guide"  # the first contact, by a reason ("motivos para comunicarse")
    MESSAGES = "messages"  # an open conversation: POST /messages/packs/{pack}/sellers/{seller}
    RECONCILE = "reconcile"  # not sent: found in the conversation, left by an earlier attempt


class AttemptResult(enum.StrEnum):
    """How one attempt ended (a row of the attempt history)."""

    SENT = "sent"
    MODERATED = "moderated"
    PENDING = "pending"  # delivered; moderation has not decided yet
    FOUND = "found"  # an earlier attempt had delivered it
    RETRY = "retry"
    WAIT = "wait"  # a temporary condition on Mercado Libre's side; not counted as an attempt
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended, to record on the message and as an attempt row."""

    status: str  # a MessageStatus: sent, moderated, pending_moderation, queued (again), failed
    attempt_outcome: str  # an AttemptResult
    route: str
    marketplace_message_id: str | None = None
    moderation_reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    next_attempt_at: dt.datetime | None = None
    needs_reconcile: bool = False
    next_route: str | None = None
    # False for a wait: it does not use up the retry budget (a temporary condition never fails a message).
    counts_attempt: bool = True


class SeenMessage(Protocol):
    """What a reconciliation needs of a message read from Mercado Libre."""

    @property
    def id(self) -> str: ...
    @property
    def from_user_id(self) -> int | None: ...
    @property
    def text(self) -> str: ...
    @property
    def created_at(self) -> dt.datetime | None: ...


def route_for(
    previous_route: str | None, *, buyer_wrote_first: bool, has_attachment: bool, with_agent: bool
) -> Route:
    """The action guide opens a conversation; once the buyer (or Mercado Libre's assistant for the
    buyer) wrote, or Mercado Libre said the conversation is open, /messages carries it. Attachments
    only go by /messages (the action guide takes none)."""
    if previous_route == Route.MESSAGES or buyer_wrote_first or has_attachment or with_agent:
        return Route.MESSAGES
    return Route.ACTION_GUIDE


def not_on_marketplace(pack_id: int | None, order_external_id: str) -> DeliveryFailure | None:
    """A message whose order has no Mercado Libre pack nor numeric order id can never be delivered."""
    if marketplace_conversation(pack_id, order_external_id) is None:
        return DeliveryFailure(
            FailureKind.PERMANENT,
            "order_not_on_marketplace",
            "The order has no Mercado Libre pack or order id.",
        )
    return None


Seen = TypeVar("Seen", bound=SeenMessage)


def pick_delivered(
    conversation: Sequence[Seen],
    *,
    seller_id: int,
    known_ids: Collection[str],
    first_attempt_at: dt.datetime | None,
    free_text: str | None,
) -> Seen | None:
    """The seller message an earlier attempt may have left in the conversation, if any.

    Only one seller message of a conversation is ever in flight (the buyer must answer between
    two), so a seller message Mercado Libre has that we have not recorded, written since our
    first attempt, is ours. For free text (`free_text` given) the text must match too.
    """
    since = first_attempt_at - CLOCK_SKEW if first_attempt_at is not None else _EARLIEST
    candidates = [
        message
        for message in conversation
        if message.from_user_id == seller_id
        and message.id not in known_ids
        and (message.created_at is None or message.created_at >= since)
        and (free_text is None or message.text.strip() == free_text.strip())
    ]
    candidates.sort(key=lambda message: message.created_at or _LATEST)
    return candidates[0] if candidates else None


def recipient(buyer_id: int, agent_user_id: int | None) -> int:
    """Whom a /messages POST goes `to`: Mercado Libre's assistant when it answers for the buyer
    (its conversations take the agent's id, research §2.8), else the buyer."""
    return agent_user_id if agent_user_id is not None else buyer_id


def after_unknown_attempt(failure: DeliveryFailure, *, reconciling: bool) -> DeliveryFailure:
    """A cap refusal met by a message whose earlier attempt may have reached Mercado Libre is most
    likely that attempt's doing (it used the option's cap) still being applied when the conversation
    was read: reconcile again rather than fail a delivered message. A cap used up by someone else
    ends as the retries run out."""
    if reconciling and failure.code == "reason_cap_exhausted":
        return DeliveryFailure(
            FailureKind.UNKNOWN,
            "reconcile_after_cap",
            f"An earlier attempt may have used the cap: {failure.message}",
        )
    return failure


def block_failure(substatus: str | None) -> DeliveryFailure:
    """What a conversation block means for the message, by Mercado Libre's substatus (research §2.5):
    the same table as the answers that name it."""
    return classify_response(403, f"The conversation is blocked {substatus or ''}".strip())


PENDING_WORDS = frozenset({"pending", "in_moderation"})
REJECTED_WORDS = frozenset({"moderated", "rejected"})


def moderation_verdict(status: str | None, moderation_status: str | None) -> tuple[bool, bool]:
    """(pending, rejected) from a Mercado Libre message's `status` and `message_moderation.status`,
    whatever their case (research §2.4: `available`/`moderated`, `clean`/`rejected`/`pending`, and an
    upper-case `IN_MODERATION` in one example)."""
    words = {(status or "").lower(), (moderation_status or "").lower()}
    rejected = bool(words & REJECTED_WORDS)
    return (not rejected and bool(words & PENDING_WORDS)), rejected


def delivered(
    marketplace_message_id: str,
    route: str,
    *,
    moderation_pending: bool,
    moderated: bool,
    moderation_reason: str | None,
    found: bool = False,
) -> Outcome:
    """The message reached Mercado Libre: sent, moderated with its reason, or waiting for moderation
    to decide (Mercado Libre's `pending` is not a verdict: the inbound poll records the verdict)."""
    if moderated:
        status, result = MessageStatus.MODERATED, AttemptResult.MODERATED
    elif moderation_pending:
        status, result = MessageStatus.PENDING_MODERATION, AttemptResult.PENDING
    else:
        status, result = MessageStatus.SENT, AttemptResult.SENT
    return Outcome(
        status=status,
        attempt_outcome=AttemptResult.FOUND if found else result,
        route=route,
        marketplace_message_id=marketplace_message_id,
        moderation_reason=(moderation_reason or "moderated") if moderated else None,
    )


def after_failure(
    failure: DeliveryFailure,
    attempts: int,
    route: str,
    now: dt.datetime,
    jitter: Callable[[], float] = random.random,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
) -> Outcome:
    """Retry (with backoff, reconciling first if the outcome is unknown), reroute, wait, or give up."""
    if failure.kind is FailureKind.REROUTE:
        return _queued_again(failure, route, now, next_route=Route.MESSAGES)
    if failure.code in OWN_PACING:
        # Held back by our own share of Mercado Libre's budget: nothing left, and no attempt made.
        seconds = failure.retry_after_seconds or policy.base_seconds
        return _queued_again(
            failure,
            route,
            now + dt.timedelta(seconds=seconds),
            attempt_outcome=AttemptResult.WAIT,
            counts_attempt=False,
        )
    if failure.kind in (FailureKind.WAIT, FailureKind.RELINK):
        # A needs_relink account's messages are not claimed until it is linked again: the wait is
        # only how soon a claim may look again once it is.
        seconds = max(policy.wait_seconds, failure.retry_after_seconds or 0.0)
        return _queued_again(
            failure,
            route,
            now + dt.timedelta(seconds=seconds),
            attempt_outcome=AttemptResult.WAIT,
            counts_attempt=False,
        )
    delay = retry_delay_seconds(attempts, failure, jitter(), policy)
    if delay is None:
        permanent = failure.kind is FailureKind.PERMANENT
        return Outcome(
            status=MessageStatus.FAILED,
            attempt_outcome=AttemptResult.FAILED,
            route=route,
            error_code=failure.code if permanent else "delivery_retries_exhausted",
            error_message=failure.message
            if permanent
            else f"Gave up after {attempts} attempts: {failure.message}",
        )
    return _queued_again(
        failure,
        route,
        now + dt.timedelta(seconds=delay),
        needs_reconcile=failure.kind is FailureKind.UNKNOWN,
    )


def _queued_again(
    failure: DeliveryFailure,
    route: str,
    at: dt.datetime,
    *,
    attempt_outcome: str = AttemptResult.RETRY,
    **details: Any,
) -> Outcome:
    """Back in the queue until `at`, with the failure as the message's last error."""
    return Outcome(
        status=MessageStatus.QUEUED,
        attempt_outcome=attempt_outcome,
        route=route,
        error_code=failure.code,
        error_message=failure.message,
        next_attempt_at=at,
        **details,
    )


def still_unreconciled(outcome: Outcome, *, needed: bool) -> Outcome:
    """A message whose earlier attempt may have reached Mercado Libre stays to be reconciled until it
    settles: a send that attempt made can still be applied after this attempt read the conversation
    (a request cut short at our end goes on at Mercado Libre's), so every retry reads it again."""
    if outcome.status == MessageStatus.QUEUED and needed and not outcome.needs_reconcile:
        return replace(outcome, needs_reconcile=True)
    return outcome
