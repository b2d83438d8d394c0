"""Contract §3.5 over HTTP: every check of POST /v2/orders/{orderId}/messages in order, each with its
status and Code, the first failing check winning, and the rate-limit headers once the key is known."""

from __future__ import annotations

import pytest

from tests.conftest import admin_headers
from tests.factories import buyer_replies, make_order, make_tenant, window
from tests.integration.http_helpers import (
    assert_accepted,
    assert_rate_limit_headers,
    assert_refused,
    conversation,
    messages_url,
    send,
)

TEXT = {"messageOptions": 4, "message": "Hola"}


# --- check 1: the API key -------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, ""])
async def test_1_api_key_missing_is_401(client, database, key):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    params = {"accountId": tenant.account_id, **TEXT}
    if key is not None:
        params["API_KEY"] = key

    response = await client.post(messages_url(order_id), params=params)

    assert_refused(response, 401, "api_key_missing")
    assert await conversation(client, tenant, order_id) == []


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: "nope",
        lambda key: "pv_000000000000_" + "A" * 43,
        lambda key: key[:-1] + ("B" if key[-1] != "B" else "C"),
        lambda key: key + "x",
        lambda key: key.upper(),
        lambda key: " " + key + "/",
    ],
    ids=["garbage", "unknown-prefix", "wrong-secret", "longer", "upper-case", "odd-characters"],
)
async def test_1_unknown_api_key_is_401(client, database, mangle):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await client.post(
        messages_url(order_id),
        params={"API_KEY": mangle(tenant.api_key), "accountId": tenant.account_id, **TEXT},
    )

    assert_refused(response, 401, "api_key_invalid")
    assert await conversation(client, tenant, order_id) == []


async def test_1_revoked_api_key_is_401(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    assert_accepted(await send(client, tenant, order_id, **TEXT))

    revoked = await client.delete(f"/admin/api-keys/{tenant.key_id}", headers=admin_headers())
    assert revoked.status_code == 204

    await buyer_replies(database, order_id)
    assert_refused(await send(client, tenant, order_id, **TEXT), 401, "api_key_invalid")
    assert_refused(
        await client.get(messages_url(order_id), params=tenant.credentials()), 401, "api_key_invalid"
    )


# --- checks 2 and 3: the account ------------------------------------------------------------------


async def test_2_account_id_missing_is_400(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await client.post(messages_url(order_id), params={"API_KEY": tenant.api_key, **TEXT})

    assert_refused(response, 400, "account_id_missing")


@pytest.mark.parametrize("account_id", ["abc", "0", "-1", "1.5", "1e3", "12abc", "99999999999999999999"])
async def test_2_account_id_not_a_positive_integer_is_400(client, database, account_id):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await client.post(
        messages_url(order_id), params={"API_KEY": tenant.api_key, "accountId": account_id, **TEXT}
    )

    assert_refused(response, 400, "account_id_invalid")


async def test_3_account_not_associated_with_the_key_is_403(client, database):
    tenant = await make_tenant(database)
    other = await make_tenant(database, name="Other seller")
    order_id = await make_order(database, other)

    for account_id in (other.account_id, 2**62):
        response = await client.post(
            messages_url(order_id), params={"API_KEY": tenant.api_key, "accountId": account_id, **TEXT}
        )
        assert_refused(response, 403, "account_not_allowed")
    assert await conversation(client, other, order_id) == []


# --- check 5: the order id ------------------------------------------------------------------------


@pytest.mark.parametrize("path_id", ["abc", "0", "-1", "1.0", "1e2", "99999999999999999999"])
async def test_5_path_order_id_not_a_positive_integer_is_400(client, database, path_id):
    tenant = await make_tenant(database)

    assert_refused(await send(client, tenant, path_id, **TEXT), 400, "order_id_invalid")


@pytest.mark.parametrize("where", ["query", "json", "form"])
async def test_5_order_id_differing_from_the_path_is_400(client, database, where):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    other_order = await make_order(database, tenant)
    body = {**tenant.credentials(**TEXT), "orderId": other_order}

    if where == "query":
        response = await client.post(messages_url(order_id), params=body)
    elif where == "json":
        response = await client.post(messages_url(order_id), json=body)
    else:
        response = await client.post(messages_url(order_id), data={k: str(v) for k, v in body.items()})

    assert_refused(response, 400, "order_id_mismatch")
    assert await conversation(client, tenant, order_id) == []
    assert await conversation(client, tenant, other_order) == []


@pytest.mark.parametrize("given", ["abc", "0", "-1"])
async def test_5_malformed_order_id_parameter_is_400(client, database, given):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await send(client, tenant, order_id, orderId=given, **TEXT)

    assert response.status_code == 400
    assert response.json()["Code"] in {"order_id_mismatch", "order_id_invalid"}


async def test_5_order_id_equal_to_the_path_is_accepted(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    assert_accepted(
        await client.post(messages_url(order_id), json=tenant.credentials(orderId=order_id, **TEXT))
    )


# --- check 6: the order ---------------------------------------------------------------------------


async def test_6_unknown_order_is_404(client, database):
    tenant = await make_tenant(database)

    assert_refused(await send(client, tenant, 2**62, **TEXT), 404, "order_not_found")


async def test_6_order_of_another_account_is_404(client, database):
    tenant = await make_tenant(database)
    other = await make_tenant(database)
    foreign = await make_order(database, other)

    assert_refused(await send(client, tenant, foreign, **TEXT), 404, "order_not_found")
    assert await conversation(client, other, foreign) == []


# --- check 7: the parameters ----------------------------------------------------------------------

CONTROL = "Hola\x01"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"message": "Hola"}, "reason_missing"),
        ({"messageOptions": "", "message": "Hola"}, "reason_missing"),
        ({"messageOptions": 0, "message": "Hola"}, "reason_invalid"),
        ({"messageOptions": 6, "message": "Hola"}, "reason_invalid"),
        ({"messageOptions": -4, "message": "Hola"}, "reason_invalid"),
        ({"messageOptions": "FOO", "message": "Hola"}, "reason_invalid"),
        ({"messageOptions": "4.0", "message": "Hola"}, "reason_invalid"),
        ({"messageOptions": 4}, "message_missing"),
        ({"messageOptions": 4, "message": "   \n\t "}, "message_missing"),
        ({"messageOptions": 4, "message": "x" * 351}, "message_too_long"),
        ({"messageOptions": 4, "message": " " + "ñ" * 351 + " "}, "message_too_long"),
        ({"messageOptions": 4, "message": CONTROL}, "invalid_characters"),
        ({"messageOptions": 4, "message": "Hola\x00"}, "invalid_characters"),
        ({"messageOptions": 4, "message": "Ho\x1bla"}, "invalid_characters"),
        ({"messageOptions": 4, "message": "Hola", "documentName": "factura"}, "attachment_base64_missing"),
        ({"messageOptions": 4, "message": "Hola", "file": "not-a-file"}, "attachment_not_a_file"),
    ],
)
async def test_7_invalid_parameters_are_400(client, database, params, code):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    assert_refused(await send(client, tenant, order_id, **params), 400, code)
    assert await conversation(client, tenant, order_id) == []


@pytest.mark.parametrize(
    ("message", "stored"),
    [
        ("x" * 350, "x" * 350),
        ("  " + "y" * 350 + "\n ", "y" * 350),
        ("e\u0301" * 350, "é" * 350),  # 700 code points, 350 after NFC
        ("Línea 1\nLínea 2\tfin", "Línea 1\nLínea 2\tfin"),
        ("a\r\nb", "a\nb"),
    ],
    ids=["350", "trimmed", "nfc", "newline-tab", "crlf"],
)
async def test_7_free_text_normalised_and_at_most_350(client, database, message, stored):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    assert_accepted(
        await client.post(messages_url(order_id), json=tenant.credentials(messageOptions=4, message=message))
    )
    assert [m["Text"] for m in await conversation(client, tenant, order_id)] == [stored]


# --- check 8: order preconditions -----------------------------------------------------------------


def reason(number: int) -> dict[str, object]:
    """messageOptions with a valid text for the free-text reasons."""
    return {"messageOptions": number, **({"message": "https://f.test/1"} if number in (3, 4) else {})}


FLEX = {"LogisticType": "self_service"}
COUNTRY, LOGISTIC = "reason_not_available_in_country", "reason_not_allowed_for_logistic_type"
PRECONDITIONS = [  # (order fields, reason, code), in the order of the checks
    ({"Marketplace": "Amazon"}, 4, "not_mercadolibre_order"),
    ({"Marketplace": "Amazon", "SiteId": None}, 2, "not_mercadolibre_order"),
    ({"SiteId": "MLA"}, 3, COUNTRY),
    ({"SiteId": "MPE"}, 2, COUNTRY),
    ({"SiteId": "MEC"}, 1, COUNTRY),
    ({"SiteId": "MLM", **FLEX, "EstimatedDelivery": window(2)}, 5, COUNTRY),
    (FLEX, 1, LOGISTIC),
    ({"LogisticType": "fulfillment", "Status": 80}, 1, LOGISTIC),
    ({"LogisticType": "cross_docking", "EstimatedDelivery": window(2)}, 5, LOGISTIC),
    ({"Status": 90}, 4, "order_cancelled"),
    ({"Status": 11}, 4, "order_cancelled"),
    ({"Status": 93}, 2, "order_cancelled"),
    ({"LogisticType": "fulfillment", "Status": 10}, 4, "fulfillment_not_delivered"),
    ({"LogisticType": "fulfillment", "Status": 20}, 4, "fulfillment_not_delivered"),
    (FLEX, 5, "delivery_window_missing"),
    ({**FLEX, "EstimatedDelivery": window(-1)}, 5, "delivery_window_past"),
    ({"LogisticType": 15, "EstimatedDelivery": window(-3)}, 5, "delivery_window_past"),
]


@pytest.mark.parametrize(("order", "number", "code"), PRECONDITIONS)
async def test_8_order_preconditions_are_412(client, database, order, number, code):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, **order)

    assert_refused(await send(client, tenant, order_id, **reason(number)), 412, code)
    assert await conversation(client, tenant, order_id) == []


@pytest.mark.parametrize(
    ("order", "number"),
    [
        ({"LogisticType": "fulfillment", "Status": 80}, 4),
        ({"Status": 91}, 4),
        ({"Status": 0}, 4),
        ({"SiteId": "MLM"}, 3),
        ({"LogisticType": "drop_off"}, 1),
        ({"LogisticType": "xd_drop_off"}, 1),
        ({**FLEX, "EstimatedDelivery": window(1)}, 5),
        ({"LogisticType": 15, "EstimatedDelivery": window(3)}, 5),
    ],
)
async def test_8_orders_meeting_the_preconditions_are_accepted(client, database, order, number):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, **order)

    assert_accepted(await send(client, tenant, order_id, **reason(number)))


# --- checks 9 and 10 ------------------------------------------------------------------------------


async def test_9_second_message_before_the_reply_is_409(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    assert_accepted(await send(client, tenant, order_id, **TEXT))

    assert_refused(await send(client, tenant, order_id, **TEXT), 409, "awaiting_buyer_reply")
    assert_refused(await send(client, tenant, order_id, messageOptions=2), 409, "awaiting_buyer_reply")
    assert len(await conversation(client, tenant, order_id)) == 1


async def test_10_accepted_send_answers_the_message_id_and_its_location(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await send(client, tenant, order_id, **TEXT)

    message_id = assert_accepted(response)
    assert response.headers["location"] == f"/v2/orders/{order_id}/messages/{message_id}"
    assert "x-message-ignored" not in response.headers
    assert_rate_limit_headers(response)
    stored = (await client.get(response.headers["location"], params=tenant.credentials())).json()
    assert (stored["Id"], stored["Status"], stored["Text"], stored["Direction"]) == (
        message_id,
        "queued",
        "Hola",
        "outbound",
    )
    assert stored["Reason"] == {"Key": 4, "Value": "OTHER"}


# --- the first failing check wins -----------------------------------------------------------------


async def test_first_failing_check_wins(client, database):
    tenant = await make_tenant(database)
    other = await make_tenant(database)
    live = await make_order(database, tenant)
    cancelled = await make_order(database, tenant, Status=90)
    foreign = await make_order(database, other)
    unknown = 2**62
    bad_key = {"API_KEY": "nope", "accountId": tenant.account_id}

    cases = [
        (await client.post(messages_url(unknown), params={**bad_key, **TEXT}), 401, "api_key_invalid"),
        (await client.post(messages_url("abc"), params={"accountId": "x"}), 401, "api_key_missing"),
        (
            await client.post(messages_url("abc"), params={"API_KEY": tenant.api_key}),
            400,
            "account_id_missing",
        ),
        (await send(client, tenant, "abc", accountId="x"), 400, "account_id_invalid"),
        (await send(client, tenant, unknown, accountId=other.account_id), 403, "account_not_allowed"),
        (await send(client, tenant, "abc", messageOptions=9), 400, "order_id_invalid"),
        (await send(client, tenant, unknown, orderId=live, **TEXT), 400, "order_id_mismatch"),
        (await send(client, tenant, unknown, messageOptions=9), 404, "order_not_found"),
        (await send(client, tenant, foreign, messageOptions=4, message="x" * 400), 404, "order_not_found"),
        (await send(client, tenant, cancelled, messageOptions=9), 400, "reason_invalid"),
        (await send(client, tenant, cancelled, messageOptions=4), 400, "message_missing"),
    ]
    for response, status, code in cases:
        assert_refused(response, status, code)
    assert await conversation(client, tenant, live) == []
    assert await conversation(client, tenant, cancelled) == []
    assert await conversation(client, other, foreign) == []


async def test_precondition_wins_over_conversation_state(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, ExternalOrderId="CANCEL-LATER-1")
    # Brazil: OTHER still opens a delivered order's conversation there (reason_closed_after_delivery).
    full = await make_order(database, tenant, SiteId="MLB", LogisticType="fulfillment", Status=80)
    assert_accepted(await send(client, tenant, order_id, **TEXT))
    assert_accepted(await send(client, tenant, full, **TEXT))
    await make_order(database, tenant, ExternalOrderId="CANCEL-LATER-1", Status=90)  # re-import: cancelled

    assert_refused(await send(client, tenant, order_id, **TEXT), 412, "order_cancelled")
    assert_refused(
        await send(client, tenant, order_id, messageOptions=3, message="x"),
        412,
        "reason_not_available_in_country",
    )
    assert_refused(
        await send(client, tenant, full, messageOptions=1), 412, "reason_not_allowed_for_logistic_type"
    )
    assert_refused(await send(client, tenant, full, **TEXT), 409, "awaiting_buyer_reply")
