"""The action guide: options and caps, the first-contact lifecycle, template texts, every error."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from postventa.emulator import texts
from postventa.emulator.sites import site_today
from tests.emulator.world import SellerSession, World

VARIANTS = {"option_id": "REQUEST_VARIANTS", "template_id": "TEMPLATE___REQUEST_VARIANTS___1"}
BILLING = {"option_id": "REQUEST_BILLING_INFO", "template_id": "TEMPLATE___REQUEST_BILLING_INFO___1"}
USE_MESSAGES = "This package has the conversation blocked, please check blocked messages"
FULL_NOT_DELIVERED = (
    "You can not send the message because the purchase is Mercado Envíos Full and has not been yet delivered"
)


def promise(init: object = 12, limit: object = 23) -> dict[str, Any]:
    template = "TEMPLATE___DELIVERY_PROMISE___1"
    return {
        "option_id": "DELIVERY_PROMISE",
        "template_id": template,
        "vars": [
            {"id": f"{template}___VAR___INIT", "value": init},
            {"id": f"{template}___VAR___LIMIT", "value": limit},
        ],
    }


def other(text: str = "Hola, ¿te llegó bien?") -> dict[str, Any]:
    return {"option_id": "OTHER", "text": text}


def assert_guide_error(answer: Any, status: int, error: str, message: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"cause", "error", "message", "status_code"}
    assert (body["status_code"], body["error"], body["message"]) == (status, error, message)


async def options_of(world: World, seller: SellerSession, key: int) -> dict[str, int]:
    answer = await world.guide(seller, key)
    assert answer.status_code == 200, answer.text
    return {option["id"]: option["cap_available"] for option in answer.json()["options"]}


async def test_lifecycle(world: World) -> None:
    seller = await world.seller("MLA")
    key = (await world.order(seller, logistic_type="drop_off"))["Key"]
    assert await options_of(world, seller, key) == {
        "REQUEST_VARIANTS": 1,
        "REQUEST_BILLING_INFO": 1,
        "OTHER": 1,
    }
    caps = await world.http.get(
        f"/messages/action_guide/packs/{key}/caps_available",
        params={"tag": "post_sale"},
        headers=seller.headers,
    )
    assert caps.json() == [
        {"option_id": "REQUEST_VARIANTS", "cap_available": 1},
        {"option_id": "REQUEST_BILLING_INFO", "cap_available": 1},
        {"option_id": "OTHER", "cap_available": 1},
    ]
    before = await world.send(seller, key, "Hola")
    assert before.status_code == 403
    assert before.json() == {
        "status_code": 403,
        "code": "forbidden",
        "message": "blocked_conversation_send_message_forbidden",
    }

    sent = await world.option(seller, key, VARIANTS)
    assert sent.status_code == 200, sent.text
    message = sent.json()
    assert message["status"] == "available"
    assert message["text"] == texts.REQUEST_VARIANTS_ES
    assert message["message_moderation"]["status"] == "clean"
    assert message["to"]["user_id"] == world.buyers[key]
    assert set(message["message_date"]) == {"received", "available", "notified", "created", "read"}
    assert set((await options_of(world, seller, key)).values()) == {0}
    assert_guide_error(
        await world.option(seller, key, other()),
        403,
        "bad_request",
        "You are not allowed to execute the option OTHER again",
    )

    await world.buyer_writes(key)
    assert_guide_error(await world.option(seller, key, other()), 403, "forbidden", USE_MESSAGES)
    for text in ("Gracias por escribir", "Sale mañana"):
        assert (await world.send(seller, key, text)).status_code == 201
    conversation = await world.conversation(seller, key)
    assert [m["text"] for m in conversation["messages"]][:2] == ["Sale mañana", "Gracias por escribir"]
    assert conversation["paging"]["total"] == 4


async def test_buyer_first_means_messages_not_guide(world: World) -> None:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    await world.buyer_writes(key)
    assert_guide_error(await world.option(seller, key, VARIANTS), 403, "forbidden", USE_MESSAGES)
    assert (await world.send(seller, key, "¡Hola! Ya sale.")).status_code == 201


async def test_other_sends_the_sellers_text(world: World) -> None:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    sent = await world.option(seller, key, other("Hola María, ¿qué color preferís?"))
    assert sent.json()["text"] == "Hola María, ¿qué color preferís?"


@pytest.mark.parametrize(
    ("site", "logistic_type", "expected"),
    [
        ("MLA", "cross_docking", ["REQUEST_VARIANTS", "REQUEST_BILLING_INFO", "OTHER"]),
        ("MLA", "xd_drop_off", ["REQUEST_VARIANTS", "REQUEST_BILLING_INFO", "OTHER"]),
        ("MLA", "self_service", ["REQUEST_BILLING_INFO", "DELIVERY_PROMISE", "OTHER"]),
        ("MLA", "default", ["REQUEST_BILLING_INFO", "OTHER"]),
        ("MLB", "drop_off", ["REQUEST_VARIANTS", "OTHER"]),
        ("MLC", "self_service", ["DELIVERY_PROMISE", "OTHER"]),
        ("MLM", "drop_off", ["REQUEST_VARIANTS", "REQUEST_BILLING_INFO", "SEND_INVOICE_LINK", "OTHER"]),
        ("MLM", "self_service", ["REQUEST_BILLING_INFO", "SEND_INVOICE_LINK", "OTHER"]),
    ],
)
async def test_options_by_site_and_logistic_type(
    world: World, site: str, logistic_type: str, expected: list[str]
) -> None:
    seller = await world.seller(site)
    key = (await world.order(seller, logistic_type=logistic_type))["Key"]
    assert list(await options_of(world, seller, key)) == expected


async def test_option_shapes(world: World) -> None:
    seller = await world.seller("MLM")
    key = (await world.order(seller, logistic_type="drop_off"))["Key"]
    options = {option["id"]: option for option in (await world.guide(seller, key)).json()["options"]}
    assert options["OTHER"]["type"] == "free_text"
    assert options["OTHER"]["char_limit"] == 350
    assert options["OTHER"]["templates"] is None
    assert options["REQUEST_VARIANTS"]["type"] == "template"
    assert options["REQUEST_VARIANTS"]["templates"] == [
        {"id": "TEMPLATE___REQUEST_VARIANTS___1", "vars": None}
    ]
    flex_seller = await world.seller("MLA")
    flex_key = (await world.order(flex_seller, logistic_type="self_service"))["Key"]
    flex = {option["id"]: option for option in (await world.guide(flex_seller, flex_key)).json()["options"]}
    template = flex["DELIVERY_PROMISE"]["templates"][0]
    assert set(template["texts"]) == {"mla", "mlb", "mlc", "mco", "mlu"}
    assert [var["id"] for var in template["vars"]] == [
        "TEMPLATE___DELIVERY_PROMISE___1___VAR___INIT",
        "TEMPLATE___DELIVERY_PROMISE___1___VAR___LIMIT",
    ]


@pytest.mark.parametrize(
    ("site", "body", "expected"),
    [
        ("MLB", VARIANTS, texts.REQUEST_VARIANTS_PT),
        ("MLU", VARIANTS, texts.REQUEST_VARIANTS_ES),
        ("MCO", BILLING, texts.billing_info_text("MCO")),
        ("MLM", BILLING, texts.billing_info_text("MLM")),
    ],
)
async def test_template_text_per_site(world: World, site: str, body: dict[str, Any], expected: str) -> None:
    seller = await world.seller(site)
    key = (await world.order(seller, logistic_type="drop_off"))["Key"]
    sent = await world.option(seller, key, body)
    assert sent.status_code == 200, sent.text
    assert sent.json()["text"] == expected


def test_billing_text_lists_the_sites_fields() -> None:
    text = texts.billing_info_text("MCO") or ""
    assert text.startswith("Para adjuntarte la factura de tu compra necesito los siguientes datos:")
    assert "Código de departamento" in text
    assert texts.billing_info_text("MLB") is None
    assert texts.billing_info_text("MLC") is None


@pytest.mark.parametrize(
    ("site", "days", "expected"),
    [
        ("MLA", 0, "Hola,Entregaremos tu compra hoy entre las 12 y las 23 hs."),
        ("MLA", 1, "Hola,Entregaremos tu compra mañana entre las 12 y las 23 hs."),
        ("MLB", 1, "Olá,Entregaremos sua compra amanhã entre 12 e 23 h."),
    ],
)
async def test_delivery_promise_text(world: World, site: str, days: int, expected: str) -> None:
    seller = await world.seller(site)
    day = site_today(site) + dt.timedelta(days=days)
    window = {"Date": day.isoformat(), "FromHour": 12, "ToHour": 23}
    key = (await world.order(seller, logistic_type="self_service", DeliveryWindow=window))["Key"]
    sent = await world.option(seller, key, promise())
    assert sent.status_code == 200, sent.text
    assert sent.json()["text"] == expected


async def test_delivery_promise_before_today(world: World) -> None:
    seller = await world.seller("MLA")
    yesterday = site_today("MLA") - dt.timedelta(days=1)
    window = {"Date": yesterday.isoformat(), "FromHour": 9, "ToHour": 18}
    key = (await world.order(seller, logistic_type="self_service", DeliveryWindow=window))["Key"]
    assert_guide_error(
        await world.option(seller, key, promise()),
        400,
        "bad_request",
        "The promise of delivery of the shipping contained in the pack is from a date before today",
    )


@pytest.mark.parametrize("hours", [(23, 12), (None, 12), (12, 25), ("x", 3)])
async def test_delivery_promise_bad_vars(world: World, hours: tuple[object, object]) -> None:
    seller = await world.seller("MLA")
    key = (await world.order(seller, logistic_type="self_service"))["Key"]
    assert_guide_error(
        await world.option(seller, key, promise(*hours)),
        400,
        "bad_request",
        "The template TEMPLATE___DELIVERY_PROMISE___1 is invalid",
    )


@pytest.mark.parametrize(
    ("site", "logistic_type", "body"),
    [
        ("MLA", "self_service", VARIANTS),
        ("MLA", "drop_off", promise()),
        ("MLA", "drop_off", {"option_id": "SEND_INVOICE_LINK", "text": "https://factura.example/1"}),
        ("MLB", "drop_off", BILLING),
        ("MLA", "drop_off", {"option_id": "NOPE"}),
        ("MLA", "drop_off", {"text": "sin opción"}),
    ],
)
async def test_unavailable_option_is_404(
    world: World, site: str, logistic_type: str, body: dict[str, Any]
) -> None:
    seller = await world.seller(site)
    key = (await world.order(seller, logistic_type=logistic_type))["Key"]
    assert_guide_error(
        await world.option(seller, key, body), 404, "not_found", "The option selected is not valid"
    )


async def test_option_without_body_is_400(world: World) -> None:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    refused = await world.http.post(
        f"/messages/action_guide/packs/{key}/option", params={"tag": "post_sale"}, headers=seller.headers
    )
    assert_guide_error(refused, 400, "bad_request", "A JSON body is required")


async def test_wrong_template_is_400(world: World) -> None:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    body = {"option_id": "REQUEST_VARIANTS", "template_id": "TEMPLATE___OTHER___9"}
    assert_guide_error(
        await world.option(seller, key, body),
        400,
        "bad_request",
        "The template TEMPLATE___OTHER___9 is invalid",
    )


@pytest.mark.parametrize("text", ["x" * 351, "", None])
async def test_free_text_invalid_is_limit_exceeded(world: World, text: str | None) -> None:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    assert_guide_error(
        await world.option(seller, key, {"option_id": "OTHER", "text": text}),
        400,
        "limit_exceeded",
        "The text is invalid",
    )


async def test_free_text_of_350_is_accepted(world: World) -> None:
    seller = await world.seller("MLM")
    key = (await world.order(seller))["Key"]
    sent = await world.option(seller, key, {"option_id": "SEND_INVOICE_LINK", "text": "y" * 350})
    assert sent.status_code == 200


async def test_another_sellers_pack_is_403(world: World) -> None:
    seller, other_seller = await world.seller(), await world.seller()
    key = (await world.order(seller))["Key"]
    assert_guide_error(
        await world.option(other_seller, key, other()),
        403,
        "forbidden",
        f"You are not allowed to access the information of the pack {key}",
    )


async def test_cancelled_order_blocks_both_routes(world: World) -> None:
    seller = await world.seller()
    key = (await world.order(seller, status="cancelled"))["Key"]
    assert set((await options_of(world, seller, key)).values()) == {0}
    refused = await world.option(seller, key, other())
    assert_guide_error(refused, 403, "forbidden", "The conversation is blocked")
    assert refused.json()["cause"] == "blocked_by_cancelled_order"
    await world.buyer_writes(key)
    sent = await world.send(seller, key, "Hola")
    assert sent.status_code == 403
    assert sent.json()["message"] == "blocked_conversation_send_message_forbidden"
    status = (await world.conversation(seller, key))["conversation_status"]
    assert (status["status"], status["substatus"]) == ("blocked", "blocked_by_cancelled_order")


async def test_fulfillment_blocks_until_delivered(world: World) -> None:
    seller = await world.seller()
    created = await world.order(seller, logistic_type="fulfillment")
    key = created["Key"]
    assert_guide_error(await world.option(seller, key, other()), 403, "forbidden", FULL_NOT_DELIVERED)
    status = (await world.conversation(seller, key))["conversation_status"]
    assert status["substatus"] == "blocked_by_fulfillment"
    await world.buyer_writes(key)
    refused = await world.send(seller, key, "Hola")
    assert refused.status_code == 403
    assert refused.json()["message"] == FULL_NOT_DELIVERED

    await world.http.put(f"/_emulator/orders/{created['OrderId']}", json={"ShipmentStatus": "delivered"})
    assert (await world.send(seller, key, "¿Llegó bien?")).status_code == 201
    assert (await world.conversation(seller, key))["conversation_status"]["status"] == "active"


async def test_fulfillment_delivered_opens_the_guide(world: World) -> None:
    seller = await world.seller()
    key = (await world.order(seller, logistic_type="fulfillment", ShipmentStatus="delivered"))["Key"]
    assert (await world.option(seller, key, other())).status_code == 200


async def test_order_without_pack_uses_order_id(world: World) -> None:
    seller = await world.seller()
    created = await world.order(seller, pack=False)
    assert (await world.option(seller, created["OrderId"], other())).status_code == 200


async def test_order_id_of_packed_order_is_not_a_conversation(world: World) -> None:
    seller = await world.seller()
    created = await world.order(seller)
    refused = await world.option(seller, created["OrderId"], other())
    assert refused.status_code == 404
    assert str(created["PackId"]) in refused.json()["message"]
