"""The Mercado Libre client through a scripted transport (its seam): errors classified, a 429's
Retry-After honoured before the next call, the new reads (caps, a conversation with its status,
missed feeds), and what no answer means."""

from __future__ import annotations

import time

import pytest

from postventa.domain.delivery import FailureKind
from postventa.meli.client import MeliClient, MeliError
from postventa.meli.pacing import CallBudget
from postventa.meli.transport import FilePart
from tests.meli_transport import ScriptedTransport, no_reply, reply

BASE = "http://meli.test"
PACK, SELLER = 2000001, 415458330


def client_with(transport: ScriptedTransport) -> MeliClient:
    return MeliClient(BASE, transport=transport)


def message(number: int) -> dict[str, object]:
    return {"id": f"{number:032x}", "from": {"user_id": 1}, "to": {"user_id": SELLER}, "status": "available"}


async def test_a_429_is_classified_with_its_retry_after_and_the_next_call_waits_it_out() -> None:
    body = {"message": "too many requests", "error": "too_many_requests", "status": 429}
    transport = ScriptedTransport(
        [reply(429, body, {"Retry-After": "0.4"}), reply(200, {"id": 5, "status": "paid"})]
    )
    meli = client_with(transport)
    with pytest.raises(MeliError) as refused:
        await meli.order("token", 5, application="123")
    answered_at = time.monotonic()
    order = await meli.order("token", 5, application="123")
    waited = time.monotonic() - answered_at
    assert refused.value.status == 429
    assert refused.value.failure.kind is FailureKind.TRANSIENT
    assert refused.value.failure.code == "marketplace_rate_limited"
    assert refused.value.failure.retry_after_seconds == pytest.approx(0.4)
    assert order.id == 5
    assert waited >= 0.35  # the endpoint cooled down before it was called again
    await meli.aclose()
    assert transport.closed


async def test_an_excepted_pack_has_no_caps_and_says_so() -> None:
    excepted = {
        "cause": "blocked_by_excepted_case",
        "error": "bad_request",
        "message": "This pack belongs to an excepted case, it is requested to use the messaging resource.",
        "status_code": 400,
    }
    meli = client_with(ScriptedTransport([reply(400, excepted)]))
    with pytest.raises(MeliError) as refused:
        await meli.caps_available("token", PACK)
    assert refused.value.status == 400
    assert refused.value.failure.code == "excepted_case"


async def test_caps_are_asked_for_post_sale_and_read_from_a_bare_array() -> None:
    caps = [{"option_id": "REQUEST_VARIANTS", "cap_available": 1}, {"option_id": "OTHER", "cap_available": 0}]
    transport = ScriptedTransport([reply(200, caps)])
    assert await client_with(transport).caps_available("token", PACK) == {"REQUEST_VARIANTS": 1, "OTHER": 0}
    request = transport.requests[0]
    assert request.url == f"{BASE}/messages/action_guide/packs/{PACK}/caps_available"
    assert request.params == {"tag": "post_sale"}
    assert request.headers["Authorization"] == "Bearer token"


async def test_a_conversation_is_read_page_by_page_unread_with_its_agent_status() -> None:
    status = {
        "path": f"/packs/{PACK}/sellers/{SELLER}/conversations/agent",
        "status": "active",
        "substatus": None,
    }
    first = [message(n) for n in range(50)]
    transport = ScriptedTransport(
        [
            reply(200, {"paging": {"total": 52}, "conversation_status": status, "messages": first}),
            reply(
                200,
                {
                    "paging": {"total": 52},
                    "conversation_status": status,
                    "messages": [message(50), message(51)],
                },
            ),
        ]
    )
    read = await client_with(transport).conversation_read("token", PACK, SELLER)
    assert [m.id for m in read.messages] == [f"{n:032x}" for n in range(52)]
    assert read.status.is_agent
    assert read.status.status == "active"
    assert [r.params["offset"] for r in transport.requests] == ["0", "50"]
    assert all(r.params["mark_as_read"] == "false" for r in transport.requests)


async def test_the_messages_alone_are_still_there() -> None:
    transport = ScriptedTransport([reply(200, {"paging": {"total": 1}, "messages": [message(1)]})])
    messages = await client_with(transport).conversation("token", PACK, SELLER)
    assert [m.id for m in messages] == [f"{1:032x}"]


async def test_a_message_mercado_libre_does_not_have_is_message_not_found() -> None:
    gone = {"message": "The message with id: x could not be retrieved from storage", "error": "not_found"}
    meli = client_with(ScriptedTransport([reply(404, gone)]))
    with pytest.raises(MeliError) as missing:
        await meli.message("token", "3f6da1e35ac84f70a24af7360d24c7bc")
    assert missing.value.status == 404
    assert missing.value.failure.code == "message_not_found"
    assert missing.value.failure.kind is FailureKind.PERMANENT


async def test_missed_feeds_are_asked_for_the_application() -> None:
    feeds = {"messages": [{"resource": "3f6d", "topic": "messages", "user_id": SELLER}, "junk"]}
    transport = ScriptedTransport([reply(200, feeds)])
    found = await client_with(transport).missed_feeds("token", "5112093284467491")
    assert found == [{"resource": "3f6d", "topic": "messages", "user_id": SELLER}]
    assert transport.requests[0].params == {"app_id": "5112093284467491"}


async def test_no_answer_to_a_write_is_unknown_and_to_a_read_transient() -> None:
    meli = client_with(ScriptedTransport(default=no_reply(may_have_arrived=True)))
    with pytest.raises(MeliError) as write:
        await meli.send_message("token", PACK, SELLER, 1, "hola", [])
    with pytest.raises(MeliError) as read:
        await meli.order("token", 5)
    assert write.value.failure.kind is FailureKind.UNKNOWN
    assert read.value.failure.kind is FailureKind.TRANSIENT
    unsent = client_with(ScriptedTransport(default=no_reply(may_have_arrived=False)))
    with pytest.raises(MeliError) as refused:
        await unsent.send_message("token", PACK, SELLER, 1, "hola", [])
    assert refused.value.failure.code == "marketplace_unreachable"


async def test_an_attachment_goes_as_one_file_part() -> None:
    transport = ScriptedTransport([reply(200, {"id": "415460047_a96d.pdf"})])
    found = await client_with(transport).upload_attachment(
        "token", "MLA", "f.pdf", b"%PDF", "application/pdf"
    )
    assert found == "415460047_a96d.pdf"
    assert transport.requests[0].data == FilePart("file", "f.pdf", b"%PDF", "application/pdf")
    assert transport.requests[0].params == {"tag": "post_sale", "site_id": "MLA"}


async def test_a_turn_further_than_the_longest_wait_fails_at_once_and_sends_nothing() -> None:
    transport = ScriptedTransport([reply(429, {"message": "too many requests"}), reply(200, {"id": 5})])
    budget = CallBudget(cool_down_seconds=10, max_wait_seconds=0.2)
    meli = MeliClient(BASE, transport=transport, budget=budget)
    with pytest.raises(MeliError) as limited:
        await meli.order("token", 5, application="123")
    started = time.monotonic()
    with pytest.raises(MeliError) as cooling:
        await meli.order("token", 5, application="123")
    assert limited.value.status == 429
    assert time.monotonic() - started < 5  # failed at once, not after the 10 s cool-down
    assert cooling.value.status is None
    assert cooling.value.failure.kind is FailureKind.TRANSIENT
    assert cooling.value.failure.code == "marketplace_budget_wait"
    assert cooling.value.failure.retry_after_seconds == pytest.approx(10, abs=0.3)
    assert len(transport.requests) == 1
    await meli.shipment("token", 9, application="123")  # another endpoint is not cooling down
    assert len(transport.requests) == 2


async def test_a_spent_budget_fails_at_once_with_the_time_to_wait() -> None:
    transport = ScriptedTransport(default=reply(200, {"id": 5}))
    meli = MeliClient(BASE, transport=transport, budget=CallBudget(2, 2, max_wait_seconds=1))
    await meli.order("token", 5, application="123")
    await meli.order("token", 5, application="123")
    with pytest.raises(MeliError) as spent:
        await meli.order("token", 5, application="123")
    assert spent.value.failure.code == "marketplace_budget_wait"
    assert 55 < (spent.value.failure.retry_after_seconds or 0) <= 62  # the window and a lease
    assert len(transport.requests) == 2


async def test_a_token_refresh_is_not_held_back_by_a_spent_budget() -> None:
    grant = {"access_token": "a2", "refresh_token": "r2", "expires_in": 21600, "user_id": 1}
    transport = ScriptedTransport(default=reply(200, grant))
    meli = MeliClient(BASE, transport=transport, budget=CallBudget(1, 1, max_wait_seconds=0.1))
    await meli.refresh("app", "secret", "r1")  # would spend the whole budget if it counted

    refreshed = await meli.refresh("app", "secret", "r1")

    assert refreshed.refresh_token == "r2"
    assert len(transport.requests) == 2
