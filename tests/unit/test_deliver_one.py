"""`deliver_one`, called directly with a scripted Mercado Libre (the client's transport seam): what
one attempt sends, whom it writes to, and what it records for each answer."""

from __future__ import annotations

import asyncio
import datetime as dt

from postventa.delivery.attempt import Delivery, SellerChannel, deliver_one
from postventa.domain.attempts import AttemptResult
from postventa.domain.delivery import DeliveryFailure, FailureKind, MessageStatus
from postventa.domain.reasons import Reason
from postventa.domain.sites import Site
from postventa.meli.client import MeliClient, MeliError
from postventa.services.marketplace import Session
from postventa.store.links import MarketplaceLink
from postventa.store.outbox import ClaimedMessage, DeliveryJob
from tests.meli_transport import ScriptedTransport, reply

NOW = dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC)
PACK, SELLER, BUYER, AGENT = 2000000001, 415458330, 3037675074, 3037675074
LINK = MarketplaceLink(
    account_id=1,
    seller_id=SELLER,
    site=Site.MLB,
    client_id="app-1",
    client_secret="secret",
    refresh_token="refresh",
    access_token="token-1",
    access_token_expires_at=NOW + dt.timedelta(hours=6),
)


def job(
    *, route: str | None = None, buyer_wrote_first: bool = False, agent: int | None = None
) -> DeliveryJob:
    return DeliveryJob(
        message_id=7,
        account_id=1,
        conversation_id=1,
        conversation_sequence=1,
        reason=Reason.OTHER,
        text="Hola",
        route=route,
        first_attempt_at=NOW,
        order_external_id="2000000001",
        pack_id=PACK,
        site_id="MLB",
        buyer_code=str(BUYER + 1),
        delivery_window=None,
        attachment_id=None,
        attachment_file_name=None,
        attachment_extension=None,
        buyer_wrote_first=buyer_wrote_first,
        agent_user_id=agent,
    )


class Sessions:
    """Opens the seller's session; a refused token is replaced by the next one."""

    def __init__(self) -> None:
        self.opened: list[str | None] = []

    async def __call__(self, refused: str | None) -> Session:
        self.opened.append(refused)
        return Session(LINK, f"token-{len(self.opened)}")


def sent(status: str = "available", moderation: str = "clean") -> dict[str, object]:
    return {
        "id": "94353d192b9640e8b1ed3c77aa406f39",
        "status": status,
        "text": "Hola",
        "message_moderation": {"status": moderation, "reason": None},
    }


async def attempt(transport: ScriptedTransport, delivery_job: DeliveryJob, sessions: Sessions | None = None):
    channel = SellerChannel(MeliClient("http://meli.test", transport=transport), sessions or Sessions())
    claimed = ClaimedMessage(7, 1, needs_reconcile=False)
    return await deliver_one(Delivery(claimed, delivery_job), channel, lambda: NOW)


async def test_a_first_contact_goes_by_the_action_guide_and_is_sent():
    transport = ScriptedTransport([reply(200, sent())])

    outcome = await attempt(transport, job())

    [request] = transport.requests
    assert request.url.endswith(f"/messages/action_guide/packs/{PACK}/option")
    assert request.params["tag"] == "post_sale"
    assert (outcome.status, outcome.attempt_outcome) == (MessageStatus.SENT, AttemptResult.SENT)
    assert outcome.marketplace_message_id == "94353d192b9640e8b1ed3c77aa406f39"


async def test_pending_moderation_is_recorded_as_such():
    transport = ScriptedTransport([reply(200, sent(status="pending", moderation="pending"))])

    outcome = await attempt(transport, job())

    assert outcome.status == MessageStatus.PENDING_MODERATION


async def test_an_agent_conversation_is_written_to_the_agent():
    transport = ScriptedTransport([reply(201, sent())])

    await attempt(transport, job(buyer_wrote_first=True, agent=AGENT))

    [request] = transport.requests
    assert request.url.endswith(f"/messages/packs/{PACK}/sellers/{SELLER}")
    assert b'"to":{"user_id":"%d"}' % AGENT in bytes(request.data)


async def test_a_refused_token_is_renewed_once_and_the_message_goes():
    sessions = Sessions()
    unauthorized = reply(401, {"message": "invalid access token", "error": "unauthorized", "status": 401})
    transport = ScriptedTransport([unauthorized, reply(200, sent())])

    outcome = await attempt(transport, job(), sessions)

    assert sessions.opened == [None, "token-1"]
    assert [request.headers["Authorization"] for request in transport.requests] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert outcome.status == MessageStatus.SENT


async def test_an_unnamed_block_is_named_by_the_conversation_status_and_waits():
    blocked = reply(
        403,
        {"status_code": 403, "code": "forbidden", "message": "blocked_conversation_send_message_forbidden"},
    )
    conversation = {
        "paging": {"limit": 50, "offset": 0, "total": 0},
        "conversation_status": {"status": "blocked", "substatus": "blocked_by_payment"},
        "messages": [],
    }
    transport = ScriptedTransport([blocked, reply(200, conversation)])

    outcome = await attempt(transport, job(buyer_wrote_first=True))

    assert (outcome.status, outcome.error_code) == (MessageStatus.QUEUED, "conversation_blocked_by_payment")
    assert not outcome.counts_attempt


async def test_a_revoked_authorization_waits_for_a_new_link():
    async def revoked(_refused: str | None) -> Session:
        raise MeliError(DeliveryFailure(FailureKind.RELINK, "marketplace_link_revoked", "invalid_grant"))

    transport = ScriptedTransport()
    channel = SellerChannel(MeliClient("http://meli.test", transport=transport), revoked)

    outcome = await deliver_one(Delivery(ClaimedMessage(7, 3, False), job()), channel, lambda: NOW)

    assert transport.requests == []
    assert (outcome.status, outcome.attempt_outcome) == (MessageStatus.QUEUED, AttemptResult.WAIT)
    assert not outcome.counts_attempt


class SilentTransport:
    """A Mercado Libre that never answers."""

    async def exchange(self, method, url, *, params, headers, data):
        await asyncio.sleep(3600)

    async def aclose(self) -> None:
        return None


async def test_an_attempt_ends_before_its_lease_and_is_reconciled_next_time():
    channel = SellerChannel(MeliClient("http://meli.test", transport=SilentTransport()), Sessions())

    outcome = await deliver_one(
        Delivery(ClaimedMessage(7, 1, False), job()), channel, lambda: NOW, time_limit_seconds=0.1
    )

    assert (outcome.status, outcome.error_code) == (MessageStatus.QUEUED, "attempt_time_limit")
    assert outcome.needs_reconcile
