"""One delivery attempt: the calls to Mercado Libre that the domain's decisions ask for.

`deliver_one` is a plain function of a delivery, a seller's channel to Mercado Libre and a clock:
tests call it directly; the worker only claims, calls it and records what it returns. What an
answer means, which route, whom to write to and what to record are decided in `domain/attempts.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from postventa.domain import attempts as decide
from postventa.domain.attachments import CONTENT_TYPES
from postventa.domain.attempts import Outcome, Route
from postventa.domain.delivery import DEFAULT_RETRY_POLICY, DeliveryFailure, FailureKind, RetryPolicy
from postventa.domain.reasons import Reason, TextMode
from postventa.meli.client import MeliClient, MeliError
from postventa.meli.models import MeliMessage
from postventa.services.marketplace import Session
from postventa.store.outbox import ClaimedMessage, DeliveryJob

# A generic block (no substatus in the answer): the conversation's status says which one.
GENERIC_BLOCK = "conversation_blocked"


@dataclass(frozen=True)
class Delivery:
    """What one attempt works from: the claimed message, its job, its file, and the Mercado Libre ids
    already recorded for the account (only read when the attempt must reconcile)."""

    claimed: ClaimedMessage
    job: DeliveryJob
    attachment: bytes | None = None
    known_ids: Collection[str] = frozenset()


class SellerChannel:
    """Mercado Libre as one seller sees it: the client and the seller's session, opened on first use
    by `open_session(refused_token)` (None at first; a token Mercado Libre refused, to replace it)."""

    def __init__(self, meli: MeliClient, open_session: Callable[[str | None], Awaitable[Session]]) -> None:
        self.meli = meli
        self._open_session = open_session
        self._session: Session | None = None

    async def session(self) -> Session:
        """The seller's session (a linked seller and a valid access token)."""
        if self._session is None:
            self._session = await self._open_session(None)
        return self._session

    async def renew(self) -> None:
        """Replace the access token Mercado Libre refused (a refresh, serialised across processes)."""
        refused = self._session.access_token if self._session is not None else None
        self._session = await self._open_session(refused)


def template_id(reason: Reason) -> str:
    """Mercado Libre's template id of a template reason."""
    return f"TEMPLATE___{reason.name}___1"


async def deliver_one(
    delivery: Delivery,
    channel: SellerChannel,
    clock: Callable[[], dt.datetime],
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    *,
    time_limit_seconds: float | None = None,
) -> Outcome:
    """One attempt of one message, whatever happens: the outcome to record.

    `time_limit_seconds` bounds the whole attempt (the worker gives it less than the message's
    lease): an attempt still waiting, for Mercado Libre or for its call budget, when its lease runs
    out would run beside the next claim's. Cut short, it may have reached Mercado Libre, so the next
    attempt reconciles first.
    """
    job, claimed = delivery.job, delivery.claimed
    route = decide.route_for(
        job.route,
        buyer_wrote_first=job.buyer_wrote_first,
        has_attachment=delivery.attachment is not None,
        with_agent=job.agent_user_id is not None,
    )
    progress = _Progress()
    try:
        async with asyncio.timeout(time_limit_seconds):
            return await _attempt(delivery, channel, route, progress)
    except TimeoutError:
        failure = DeliveryFailure(
            FailureKind.UNKNOWN, "attempt_time_limit", f"The attempt took over {time_limit_seconds} s."
        )
    except MeliError as error:
        failure = decide.after_unknown_attempt(error.failure, reconciling=claimed.needs_reconcile)
        if failure.code == GENERIC_BLOCK and "blocked_by_" not in failure.message:
            failure = await _block_named(delivery, channel, failure)
    outcome = decide.after_failure(failure, claimed.attempts, route, clock(), policy=policy)
    return decide.still_unreconciled(outcome, needed=claimed.needs_reconcile)


async def _attempt(delivery: Delivery, channel: SellerChannel, route: Route, progress: _Progress) -> Outcome:
    """Reconcile if needed, then send; an access token refused once is renewed and all tried again."""
    job = delivery.job
    refusal = decide.not_on_marketplace(job.pack_id, job.order_external_id)
    if refusal is not None:
        raise MeliError(refusal)
    try:
        return await _reconcile_then_send(delivery, channel, route, progress)
    except MeliError as error:
        if error.failure.kind is not FailureKind.AUTH:
            raise
    await channel.renew()
    return await _reconcile_then_send(delivery, channel, route, progress)


@dataclass
class _Progress:
    """How far an attempt got: whether it read the conversation to reconcile."""

    reconciled: bool = False


async def _reconcile_then_send(
    delivery: Delivery, channel: SellerChannel, route: Route, progress: _Progress
) -> Outcome:
    if delivery.claimed.needs_reconcile and not progress.reconciled:
        found = await _find_delivered(delivery, channel)
        progress.reconciled = True
        if found is not None:
            return _delivered(found, Route.RECONCILE, found=True)
    return _delivered(await _send(delivery, channel, route), route)


async def _find_delivered(delivery: Delivery, channel: SellerChannel) -> MeliMessage | None:
    job, session = delivery.job, await channel.session()
    conversation = await channel.meli.conversation(
        session.access_token,
        job.conversation_resource,
        session.link.seller_id,
        application=session.link.client_id,
    )
    free_text = job.text if job.reason.rule.text_mode is TextMode.FREE_TEXT else None
    return decide.pick_delivered(
        conversation,
        seller_id=session.link.seller_id,
        known_ids=delivery.known_ids,
        first_attempt_at=job.first_attempt_at,
        free_text=free_text,
    )


async def _block_named(
    delivery: Delivery, channel: SellerChannel, failure: DeliveryFailure
) -> DeliveryFailure:
    """A block Mercado Libre did not name in its answer: read the conversation's status for it."""
    session = await channel.session()
    try:
        read = await channel.meli.conversation_read(
            session.access_token,
            delivery.job.conversation_resource,
            session.link.seller_id,
            application=session.link.client_id,
        )
    except MeliError:
        return DeliveryFailure(FailureKind.TRANSIENT, failure.code, failure.message)
    substatus = read.status.substatus if read.status is not None else None
    named = decide.block_failure(substatus)
    return named if substatus else failure


def _delivered(message: MeliMessage, route: Route, *, found: bool = False) -> Outcome:
    pending, rejected = decide.moderation_verdict(message.status, message.moderation_status)
    return decide.delivered(
        message.id,
        route,
        moderation_pending=pending,
        moderated=rejected,
        moderation_reason=message.moderation_reason,
        found=found,
    )


async def _send(delivery: Delivery, channel: SellerChannel, route: Route) -> MeliMessage:
    """Send by the action guide (first contact) or by /messages (an open conversation)."""
    job, session, meli = delivery.job, await channel.session(), channel.meli
    pack, application = job.conversation_resource, session.link.client_id
    if route is Route.ACTION_GUIDE:
        if job.reason.rule.text_mode is TextMode.FREE_TEXT:
            return await meli.send_action_guide_option(
                session.access_token, pack, job.reason.name, text=job.text, application=application
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
            application=application,
        )
    to = decide.recipient(await _buyer_id(delivery, channel), job.agent_user_id)
    attachment_ids = []
    if delivery.attachment is not None and job.attachment_file_name and job.attachment_extension:
        site = job.site_id or session.link.site.value
        content_type = CONTENT_TYPES[job.attachment_extension].split(";")[0]
        attachment_ids.append(
            await meli.upload_attachment(
                session.access_token,
                site,
                job.attachment_file_name,
                delivery.attachment,
                content_type,
                application=application,
            )
        )
    return await meli.send_message(
        session.access_token,
        pack,
        session.link.seller_id,
        to,
        job.text,
        attachment_ids,
        application=application,
    )


async def _buyer_id(delivery: Delivery, channel: SellerChannel) -> int:
    job = delivery.job
    if job.buyer_code and job.buyer_code.isdigit():
        return int(job.buyer_code)
    session = await channel.session()
    order = await channel.meli.order(
        session.access_token, int(job.order_external_id), application=session.link.client_id
    )
    if order.buyer_id is None:
        raise MeliError(
            DeliveryFailure(FailureKind.PERMANENT, "buyer_unknown", "The order's buyer is unknown.")
        )
    return order.buyer_id
