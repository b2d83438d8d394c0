"""Caps per option (OTHER closed after delivery, forced caps), the excepted case, and conversation
blocks: forced through the control API, from the order's payment, and after 30 quiet days."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator.test_action_guide import VARIANTS, assert_guide_error, other
from tests.emulator.world import SellerSession, World

POST_SALE = {"tag": "post_sale"}
BILLING = {"option_id": "REQUEST_BILLING_INFO", "template_id": "TEMPLATE___REQUEST_BILLING_INFO___1"}
EXCEPTED_BODY = {
    "cause": "blocked_by_excepted_case",
    "error": "bad_request",
    "message": "This pack belongs to an excepted case, it is requested to use the messaging resource.",
    "status_code": 400,
}
RULE_SITES = ["MEC", "MPE", "MLU", "MCO", "MLM", "MLC"]


async def caps_of(world: World, seller: SellerSession, key: int) -> dict[str, int]:
    answer = await world.http.get(
        f"/messages/action_guide/packs/{key}/caps_available", params=POST_SALE, headers=seller.headers
    )
    assert answer.status_code == 200, answer.text
    return {cap["option_id"]: cap["cap_available"] for cap in answer.json()}


async def option_caps(world: World, seller: SellerSession, key: int) -> dict[str, int]:
    answer = await world.guide(seller, key)
    assert answer.status_code == 200, answer.text
    return {option["id"]: option["cap_available"] for option in answer.json()["options"]}


async def status_of(world: World, seller: SellerSession, key: int) -> tuple[str, str | None]:
    status = (await world.conversation(seller, key, mark_as_read="false"))["conversation_status"]
    return status["status"], status["substatus"]


async def control(world: World, method: str, path: str, body: Any = None) -> dict[str, Any]:
    answer = await world.http.request(method, f"/_emulator{path}", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.mark.parametrize("site", RULE_SITES)
async def test_other_is_closed_once_delivered_on_the_rule_sites(world: World, site: str) -> None:
    seller = await world.seller(site)
    key = (await world.order(seller, ShipmentStatus="delivered"))["Key"]
    caps = await caps_of(world, seller, key)
    assert caps["OTHER"] == 0
    assert caps["REQUEST_VARIANTS"] == 1
    assert (await option_caps(world, seller, key))["OTHER"] == 0
    assert_guide_error(
        await world.option(seller, key, other()),
        403,
        "bad_request",
        "You are not allowed to execute the option OTHER again",
    )
    assert (await world.option(seller, key, VARIANTS)).status_code == 200


async def test_other_closes_when_the_shipment_becomes_delivered(world: World) -> None:
    seller = await world.seller("MLM")
    created = await world.order(seller)
    key = created["Key"]
    assert (await caps_of(world, seller, key))["OTHER"] == 1
    await world.http.put(f"/_emulator/orders/{created['OrderId']}", json={"ShipmentStatus": "delivered"})
    assert (await caps_of(world, seller, key))["OTHER"] == 0


@pytest.mark.parametrize("site", ["MLA", "MLB"])
async def test_other_stays_open_on_mla_and_mlb_until_configured(world: World, site: str) -> None:
    seller = await world.seller(site)
    key = (await world.order(seller, ShipmentStatus="delivered"))["Key"]
    assert (await caps_of(world, seller, key))["OTHER"] == 1
    config = await control(world, "PUT", "/config", {"OtherClosedOnDeliverySites": [*RULE_SITES, site]})
    assert config["OtherClosedOnDeliverySites"] == sorted([*RULE_SITES, site])
    assert (await caps_of(world, seller, key))["OTHER"] == 0
    assert (await world.option(seller, key, other())).status_code == 403


async def test_other_closed_sites_default_and_validation(world: World) -> None:
    config = (await world.http.get("/_emulator/config")).json()
    assert config["OtherClosedOnDeliverySites"] == sorted(RULE_SITES)
    refused = await world.http.put("/_emulator/config", json={"OtherClosedOnDeliverySites": ["XXX"]})
    assert refused.status_code == 400
    emptied = await control(world, "PUT", "/config", {"OtherClosedOnDeliverySites": []})
    assert emptied["OtherClosedOnDeliverySites"] == []


async def test_forced_caps_win_and_are_counted(world: World) -> None:
    seller = await world.seller("MLA")
    key = (await world.order(seller))["Key"]
    forced = await control(world, "PUT", f"/packs/{key}/caps", {"OTHER": 0, "REQUEST_BILLING_INFO": 2})
    assert forced["CapOverrides"] == {"OTHER": 0, "REQUEST_BILLING_INFO": 2}
    assert await caps_of(world, seller, key) == {"REQUEST_VARIANTS": 1, "REQUEST_BILLING_INFO": 2, "OTHER": 0}
    assert_guide_error(
        await world.option(seller, key, other()),
        403,
        "bad_request",
        "You are not allowed to execute the option OTHER again",
    )
    assert (await world.option(seller, key, VARIANTS)).status_code == 200
    # The guide is used: only the forced cap is left, and each send takes one.
    assert await caps_of(world, seller, key) == {"REQUEST_VARIANTS": 0, "REQUEST_BILLING_INFO": 2, "OTHER": 0}
    assert (await world.option(seller, key, BILLING)).status_code == 200
    assert (await caps_of(world, seller, key))["REQUEST_BILLING_INFO"] == 1

    await control(world, "DELETE", f"/packs/{key}/caps")
    assert set((await caps_of(world, seller, key)).values()) == {0}


@pytest.mark.parametrize(
    "body",
    [{"NOPE": 0}, {"OTHER": -1}, {"DELIVERY_PROMISE": 1}, {}, {"OTHER": "x"}],
)
async def test_forced_caps_refuse_bad_input(world: World, body: dict[str, Any]) -> None:
    seller = await world.seller("MLA")
    key = (await world.order(seller, logistic_type="drop_off"))["Key"]
    assert (await world.http.put(f"/_emulator/packs/{key}/caps", json=body)).status_code == 400


async def test_excepted_case_closes_the_guide_and_opens_messages(world: World) -> None:
    seller = await world.seller("MLA")
    key = (await world.order(seller))["Key"]
    assert (await control(world, "PUT", f"/packs/{key}/excepted"))["Excepted"] is True
    for answer in (
        await world.guide(seller, key),
        await world.http.get(
            f"/messages/action_guide/packs/{key}/caps_available", params=POST_SALE, headers=seller.headers
        ),
        await world.option(seller, key, other()),
    ):
        assert answer.status_code == 400, answer.text
        assert answer.json() == EXCEPTED_BODY
    first = await world.send(seller, key, "Hola, tu pedido se fabrica en 5 días.")
    assert first.status_code == 201, first.text
    assert (await world.send(seller, key, "Te aviso cuando salga.")).status_code == 201

    await control(world, "DELETE", f"/packs/{key}/excepted")
    assert (await world.guide(seller, key)).status_code == 200
    assert (await world.send(seller, key, "Otro")).status_code == 403


DOCUMENTED_BLOCKS = [
    "blocked_by_buyer",
    "blocked_by_time",
    "blocked_by_mediation",
    "blocked_by_claim_change_open",
    "blocked_by_claim_change_closed",
    "blocked_by_payment",
    "blocked_by_restrictions",
    "blocked_by_refund",
    "blocked_by_ai_assistant_expired",
]


@pytest.mark.parametrize("reason", DOCUMENTED_BLOCKS)
async def test_forced_block_closes_both_routes_with_its_cause(world: World, reason: str) -> None:
    seller = await world.seller("MLA")
    key = (await world.order(seller))["Key"]
    assert (await control(world, "PUT", f"/packs/{key}/block", {"Reason": reason}))["Block"] == reason
    assert await status_of(world, seller, key) == ("blocked", reason)
    assert set((await caps_of(world, seller, key)).values()) == {0}
    refused = await world.option(seller, key, other())
    assert_guide_error(refused, 403, "forbidden", "The conversation is blocked")
    assert refused.json()["cause"] == reason

    await world.buyer_writes(key)
    sent = await world.send(seller, key, "Hola")
    assert sent.status_code == 403
    assert sent.json() == {
        "status_code": 403,
        "code": "forbidden",
        "message": "blocked_conversation_send_message_forbidden",
        "cause": reason,
    }

    assert (await control(world, "DELETE", f"/packs/{key}/block"))["Block"] is None
    assert await status_of(world, seller, key) == ("active", None)
    assert (await world.send(seller, key, "Hola")).status_code == 201


async def test_deactivated_account_is_451_on_both_routes(world: World) -> None:
    seller = await world.seller("MLA")
    created = await world.order(seller, pack=False)
    key = created["OrderId"]
    await control(world, "PUT", f"/packs/{key}/block", {"Reason": "blocked_by_deactivated_account"})
    refused = await world.option(seller, key, other())
    assert refused.status_code == 451
    assert refused.json() == {
        "cause": "blocked_by_deactivated_account",
        "error": "Unavailable",
        "message": "Unavailable",
        "status_code": 451,
    }
    await world.buyer_writes(key)
    sent = await world.send(seller, key, "Hola")
    assert sent.status_code == 451
    assert sent.json()["cause"] == "blocked_by_deactivated_account"
    assert await status_of(world, seller, key) == ("blocked", "blocked_by_deactivated_account")


async def test_block_refuses_unknown_reasons_and_conversations(world: World) -> None:
    seller = await world.seller("MLA")
    key = (await world.order(seller))["Key"]
    for reason in ("blocked_by_nothing", "", "BLOCKED_BY_BUYER"):
        answer = await world.http.put(f"/_emulator/packs/{key}/block", json={"Reason": reason})
        assert answer.status_code == 400, reason
    missing = await world.http.put("/_emulator/packs/1/block", json={"Reason": "blocked_by_buyer"})
    assert missing.status_code == 404


async def test_thirty_quiet_days_block_by_time_until_the_buyer_writes(world: World) -> None:
    seller = await world.seller("MLA")
    key = (await world.order(seller))["Key"]
    await world.buyer_writes(key)
    assert (await world.send(seller, key, "¡Gracias!")).status_code == 201
    await control(world, "PUT", f"/packs/{key}/age", {"Days": 29})
    assert await status_of(world, seller, key) == ("active", None)
    aged = await control(world, "PUT", f"/packs/{key}/age", {"Days": 2})
    assert aged["LastMessageDate"] is not None
    assert await status_of(world, seller, key) == ("blocked", "blocked_by_time")
    sent = await world.send(seller, key, "¿Seguís ahí?")
    assert sent.status_code == 403
    assert sent.json()["cause"] == "blocked_by_time"
    assert_guide_error(
        await world.option(seller, key, other()), 403, "forbidden", "The conversation is blocked"
    )

    await world.buyer_writes(key, "Hola de nuevo")
    assert await status_of(world, seller, key) == ("active", None)
    assert (await world.send(seller, key, "¡Hola!")).status_code == 201


async def test_age_refuses_bad_days(world: World) -> None:
    seller = await world.seller("MLA")
    key = (await world.order(seller))["Key"]
    for days in (0, -3, "x"):
        assert (await world.http.put(f"/_emulator/packs/{key}/age", json={"Days": days})).status_code == 400


async def test_payment_pending_blocks_until_the_order_is_paid(world: World) -> None:
    seller = await world.seller("MLA")
    created = await world.order(seller, status="payment_in_process")
    key = created["Key"]
    assert await status_of(world, seller, key) == ("blocked", "blocked_by_payment")
    refused = await world.option(seller, key, other())
    assert (refused.status_code, refused.json()["cause"]) == (403, "blocked_by_payment")
    await world.http.put(f"/_emulator/orders/{created['OrderId']}", json={"Status": "paid"})
    assert await status_of(world, seller, key) == ("active", None)
    assert (await world.option(seller, key, other())).status_code == 200


async def test_forced_block_wins_over_the_computed_one(world: World) -> None:
    seller = await world.seller("MLA")
    key = (await world.order(seller, status="payment_required"))["Key"]
    await control(world, "PUT", f"/packs/{key}/block", {"Reason": "blocked_by_mediation"})
    assert await status_of(world, seller, key) == ("blocked", "blocked_by_mediation")
    await control(world, "DELETE", f"/packs/{key}/block")
    assert await status_of(world, seller, key) == ("blocked", "blocked_by_payment")
