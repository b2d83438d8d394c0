"""One delivery attempt: reconcile if needed, route, call Mercado Libre, decide the outcome.

`deliver` is a plain function of a job and a session: tests call it directly; the worker loop
only claims, calls it and records what it returns.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from postventa.domain.attachments import CONTENT_TYPES
from postventa.domain.delivery import (
    DEFAULT_RETRY_POLICY,
    DeliveryFailure,
    FailureKind,
    RetryPolicy,
    retry_delay_seconds,
)
from postventa.domain.reasons import Reason, TextMode
from postventa.meli.client import MeliClient, MeliError
from postventa.meli.models import MeliMessage
from postventa.services.marketplace import Session
from postventa.store.outbox import DeliveryJob, Outcome

ACTION_GUIDE = "action_guide"
MESSAGES = "messages"
RECONCILE = "reconcile"
# Mercado Libre's clock and ours may differ: a reconciliation looks this far before the first attempt.
CLOCK_SKEW = dt.timedelta(minutes=5)


def template_id(reason: Reason) -> str:
    """Mercado Libre's template id of a template reason."""
    return f"TEMPLATE___{reason.name}___1"


async def find_delivered(
    meli: MeliClient, session: Session, job: DeliveryJob, known_ids: set[str]
) -> MeliMessage | None:
    """The seller message an earlier attempt may have left in the conversation, if any.

    Only one seller message of a conversation is ever in flight (the buyer must answer between
    two), so a seller message Mercado Libre has that we have not recorded, written since our
    first attempt, is ours. For free text the text must match too.
    """
    conversation = await meli.conversation(
        session.access_token, job.conversation_resource, session.link.seller_id
    )
    since = (job.first_attempt_at or dt.datetime.min.replace(tzinfo=dt.UTC)) - CLOCK_SKEW
    candidates = [
        message
        for message in conversation
        if message.from_user_id == session.link.seller_id
        and message.id not in known_ids
        and (message.created_at is None or message.created_at >= since)
    ]
    if job.reason.rule.text_mode is TextMode.FREE_TEXT:
        candidates = [message for message in candidates if message.text.strip() == job.text.strip()]
    candidates.sort(key=lambda message: message.created_at or dt.datetime.max.replace(tzinfo=dt.UTC))
    return candidates[0] if candidates else None


async def send(
    meli: MeliClient, session: Session, job: DeliveryJob, route: str, attachment: bytes | None
) -> MeliMessage:
    """Send by the action guide (first contact) or by /messages (after the buyer wrote)."""
    pack = job.conversation_resource
    if route == ACTION_GUIDE:
        if job.reason.rule.text_mode is TextMode.FREE_TEXT:
            return await meli.send_action_guide_option(
                session.access_token, pack, job.reason.name, text=job.text
            )
        variables = None
        if job.reason is Reason.DELIVERY_PROMISE and job.delivery_window is not None:
            prefix = template_id(job.reason)
            variables = [
                {"id": f"{prefix}___VAR___INIT", "value": job.delivery_window.from_hour},
                {"id": f"{prefix}___VAR___LIMIT", "value": job.delivery_window.to_hour},
            ]
        return await meli.send_action_guide_option(
            session.access_token,
            pack,
            job.reason.name,
            template_id=template_id(job.reason),
            variables=variables,
        )
    buyer_id = await _buyer_id(meli, session, job)
    attachment_ids = []
    if attachment is not None and job.attachment_file_name and job.attachment_extension:
        site = job.site_id or session.link.site.value
        content_type = CONTENT_TYPES[job.attachment_extension].split(";")[0]
        attachment_ids.append(
            await meli.upload_attachment(
                session.access_token, site, job.attachment_file_name, attachment, content_type
            )
        )
    return await meli.send_message(
        session.access_token, pack, session.link.seller_id, buyer_id, job.text, attachment_ids
    )


def delivered(message: MeliMessage, route: str, *, found: bool = False) -> Outcome:
    """The message reached Mercado Libre: sent, or moderated with its reason."""
    moderated = message.is_moderated
    return Outcome(
        status="moderated" if moderated else "sent",
        attempt_outcome="found" if found else ("moderated" if moderated else "sent"),
        route=route,
        marketplace_message_id=message.id,
        moderation_reason=(message.moderation_reason or "moderated") if moderated else None,
    )


def after_failure(
    failure: DeliveryFailure,
    attempts: int,
    route: str,
    now: dt.datetime,
    jitter: Callable[[], float] = random.random,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
) -> Outcome:
    """Retry (with backoff, reconciling first if the outcome is unknown), reroute, or give up."""
    if failure.kind is FailureKind.REROUTE:
        return Outcome(
            status="queued",
            attempt_outcome="retry",
            route=route,
            error_code=failure.code,
            error_message=failure.message,
            next_attempt_at=now,
            next_route=MESSAGES,
        )
    delay = retry_delay_seconds(attempts, failure, jitter(), policy)
    if delay is None:
        code = failure.code if failure.kind is FailureKind.PERMANENT else "delivery_retries_exhausted"
        message = (
            failure.message
            if failure.kind is FailureKind.PERMANENT
            else f"Gave up after {attempts} attempts: {failure.message}"
        )
        return Outcome(
            status="failed", attempt_outcome="failed", route=route, error_code=code, error_message=message
        )
    return Outcome(
        status="queued",
        attempt_outcome="retry",
        route=route,
        error_code=failure.code,
        error_message=failure.message,
        next_attempt_at=now + dt.timedelta(seconds=delay),
        needs_reconcile=failure.kind is FailureKind.UNKNOWN,
    )


async def _buyer_id(meli: MeliClient, session: Session, job: DeliveryJob) -> int:
    if job.buyer_code and job.buyer_code.isdigit():
        return int(job.buyer_code)
    order = await meli.order(session.access_token, int(job.order_external_id))
    if order.buyer_id is None:
        raise MeliError(
            DeliveryFailure(FailureKind.PERMANENT, "buyer_unknown", "The order's buyer is unknown.")
        )
    return order.buyer_id
