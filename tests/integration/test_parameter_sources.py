"""Contract §3.1 over HTTP: the same send from the query string, a JSON body, a urlencoded or multipart form,
the X-API-Key header and mixes of them; names in any case; one name twice; and never a 500."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.factories import make_order, make_tenant
from tests.integration.http_helpers import (
    assert_accepted,
    assert_refused,
    conversation,
    messages_url,
)


def multipart(fields: dict[str, Any]) -> dict[str, tuple[None, str]]:
    """Plain (non-file) multipart/form-data fields, as httpx2 builds them from `files`."""
    return {name: (None, str(value)) for name, value in fields.items()}


def form(fields: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in fields.items()}


async def post_by(client, order_id, how: str, fields: dict[str, Any], *, headers=None, params=None):
    """POST the fields as one source: query, json, form (urlencoded) or multipart."""
    url = messages_url(order_id)
    if how == "query":
        return await client.post(url, params={**(params or {}), **fields}, headers=headers)
    if how == "json":
        return await client.post(url, json=fields, headers=headers, params=params)
    if how == "form":
        return await client.post(url, data=form(fields), headers=headers, params=params)
    if how == "multipart":
        return await client.post(url, files=multipart(fields), headers=headers, params=params)
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["query", "json", "form", "multipart"])
async def test_every_parameter_from_one_source(client, database, how):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await post_by(
        client, order_id, how, tenant.credentials(messageOptions=4, message=f"Por {how}")
    )

    assert_accepted(response)
    assert [m["Text"] for m in await conversation(client, tenant, order_id)] == [f"Por {how}"]


@pytest.mark.parametrize("how", ["query", "json", "form", "multipart"])
async def test_key_in_query_and_the_rest_in_the_body(client, database, how):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    rest = {"accountId": tenant.account_id, "messageOptions": 4, "message": "Mezcla"}

    response = await post_by(client, order_id, how, rest, params={"API_KEY": tenant.api_key})

    assert_accepted(response)


@pytest.mark.parametrize("how", ["query", "json", "form", "multipart"])
async def test_key_in_the_x_api_key_header(client, database, how):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    rest = {"accountId": tenant.account_id, "messageOptions": "OTHER", "message": "Con cabecera"}

    response = await post_by(client, order_id, how, rest, headers={"X-API-Key": tenant.api_key})

    assert_accepted(response)


async def test_header_query_and_form_combined(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await client.post(
        messages_url(order_id),
        params={"accountId": tenant.account_id, "messageOptions": 4},
        data={"message": "Texto del form"},
        headers={"x-api-key": tenant.api_key},
    )

    assert_accepted(response)
    assert [m["Text"] for m in await conversation(client, tenant, order_id)] == ["Texto del form"]


@pytest.mark.parametrize(
    ("key_name", "account_name", "reason_name", "message_name"),
    [
        ("API_KEY", "accountId", "messageOptions", "message"),
        ("api_key", "accountID", "MESSAGEOPTIONS", "Message"),
        ("Api_Key", "ACCOUNTID", "messageoptions", "MESSAGE"),
        ("aPI_kEY", "AccountId", "MessageOptions", "mEsSaGe"),
    ],
)
@pytest.mark.parametrize("how", ["query", "json", "form", "multipart"])
async def test_names_match_in_any_case(
    client, database, how, key_name, account_name, reason_name, message_name
):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    fields = {key_name: tenant.api_key, account_name: tenant.account_id, reason_name: 4, message_name: "Hola"}

    assert_accepted(await post_by(client, order_id, how, fields))


@pytest.mark.parametrize("reason", [4, "4", " 4 ", "other", "OTHER", "Other", "oThEr"])
@pytest.mark.parametrize("how", ["query", "json", "multipart"])
async def test_message_options_as_number_or_name(client, database, how, reason):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await post_by(client, order_id, how, tenant.credentials(messageOptions=reason, message="Hola"))

    assert_accepted(response)
    assert (await conversation(client, tenant, order_id))[0]["Reason"] == {"Key": 4, "Value": "OTHER"}


async def test_same_value_twice_is_fine(client, database):
    tenant = await make_tenant(database)
    orders = [await make_order(database, tenant) for _ in range(5)]
    url = messages_url
    same = [
        # key in query and header
        client.post(
            url(orders[0]),
            params=tenant.credentials(messageOptions=4, message="a"),
            headers={"X-API-Key": tenant.api_key},
        ),
        # accountId as text in the query and as a number in JSON; messageOptions likewise
        client.post(
            url(orders[1]),
            params={"accountId": str(tenant.account_id), "messageOptions": "4"},
            json=tenant.credentials(messageOptions=4, message="b"),
        ),
        # one name twice in the query, in two spellings
        client.post(
            url(orders[2]) + f"?accountId={tenant.account_id}&ACCOUNTID={tenant.account_id}"
            f"&API_KEY={tenant.api_key}&messageOptions=4&message=c"
        ),
        # one name twice in a form
        client.post(
            url(orders[3]),
            content=(
                f"API_KEY={tenant.api_key}&accountId={tenant.account_id}&messageOptions=4&message=d&Message=d"
            ).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        # one name twice in a JSON object
        client.post(
            url(orders[4]),
            content=(
                f'{{"API_KEY": "{tenant.api_key}", "accountId": {tenant.account_id}, "messageOptions": 4,'
                f' "message": "e", "message": "e"}}'
            ).encode(),
            headers={"content-type": "application/json"},
        ),
    ]
    for request in same:
        assert_accepted(await request)


async def test_different_values_are_400_conflicting_parameter(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    url = messages_url(order_id)
    conflicts = [
        client.post(
            url, params=tenant.credentials(messageOptions=4, message="a"), headers={"X-API-Key": "other"}
        ),
        client.post(
            url,
            params={"accountId": tenant.account_id + 1},
            json=tenant.credentials(messageOptions=4, message="a"),
        ),
        client.post(url + f"?message=a&MESSAGE=b&messageOptions=4&{urlencode(tenant.credentials())}"),
        client.post(url, params=tenant.credentials(messageOptions=4, message="a"), data={"message": "b"}),
        client.post(
            url, params=tenant.credentials(messageOptions=4, message="a"), files=multipart({"message": "b"})
        ),
        client.post(
            url, params=tenant.credentials(message="a"), json={"messageOptions": 2, "MessageOptions": 4}
        ),
        client.post(
            url,
            content=(
                f'{{"API_KEY": "{tenant.api_key}", "accountId": {tenant.account_id}, "messageOptions": 4,'
                ' "message": "a", "message": "b"}'
            ).encode(),
            headers={"content-type": "application/json"},
        ),
        client.post(
            url,
            params={"orderId": order_id, **tenant.credentials(messageOptions=4, message="a")},
            json={"orderId": order_id + 1},
        ),
    ]
    for request in conflicts:
        body = assert_refused(await request, 400, "conflicting_parameter")
        assert "'" in body["Message"]  # names the parameter
    assert await conversation(client, tenant, order_id) == []


async def test_conflict_is_refused_before_the_key_is_checked(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await client.post(messages_url(order_id) + "?accountId=1&accountId=2")

    assert_refused(response, 400, "conflicting_parameter")


async def test_unreadable_requests_are_refused_before_any_check(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    url = messages_url(order_id)
    json_type = {"content-type": "application/json"}

    assert_refused(await client.post(url, content=b'{"API_KEY": ', headers=json_type), 400, "malformed_json")
    assert_refused(await client.post(url, content=b"[1, 2]", headers=json_type), 400, "malformed_json")
    assert_refused(await client.post(url + "?message=%FF"), 400, "invalid_encoding")
    assert_refused(
        await client.post(
            url, content=b"message=%C3%28", headers={"content-type": "application/x-www-form-urlencoded"}
        ),
        400,
        "invalid_encoding",
    )
    assert_refused(
        await client.post(
            url, params=tenant.credentials(), content=b"hola", headers={"content-type": "text/plain"}
        ),
        415,
        "unsupported_media_type",
    )


async def test_reads_take_the_key_from_the_header_and_names_in_any_case(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    header = {"X-API-Key": tenant.api_key}

    for url in (
        f"/v2/orders/{order_id}",
        "/v2/orders",
        messages_url(order_id),
        f"{messages_url(order_id)}/options",
    ):
        assert (
            await client.get(url, params={"ACCOUNTID": tenant.account_id}, headers=header)
        ).status_code == 200
        lower = {"api_key": tenant.api_key, "accountid": tenant.account_id}
        assert (await client.get(url, params=lower)).status_code == 200
        conflicting = await client.get(url, params=tenant.credentials(), headers={"x-api-key": "other"})
        assert_refused(conflicting, 400, "conflicting_parameter")


async def test_empty_body_with_a_json_type_reads_the_query(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await client.post(
        messages_url(order_id),
        params=tenant.credentials(messageOptions=4, message="Hola"),
        headers={"content-type": "application/json"},
    )

    assert_accepted(response)


async def test_json_types_are_read_as_their_text(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await client.post(
        messages_url(order_id),
        json={
            "API_KEY": tenant.api_key,
            "accountId": str(tenant.account_id),
            "orderId": str(order_id),
            "messageOptions": "4",
            "message": 12345,
            "unknownField": {"ignored": True},
        },
    )

    assert_accepted(response)
    assert (await conversation(client, tenant, order_id))[0]["Text"] == "12345"


WEIRD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    4.0,
    1e308,
    2**70,
    -(2**70),
    "",
    " ",
    "null",
    "\u00e9",
    "\U0001f600",
    [],
    [1, 2],
    {},
    {"a": {"b": [1]}},
    "A" * 2000,
    "\\x00",
    "%00",
]
NAMES = [
    "API_KEY",
    "accountId",
    "orderId",
    "messageOptions",
    "message",
    "file",
    "fileBase64",
    "documentName",
    "documentExtension",
]


@pytest.mark.parametrize("name", NAMES)
async def test_odd_json_values_never_500(client, database, name):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    for value in WEIRD_VALUES:
        body = {**tenant.credentials(messageOptions=4, message="Hola"), name: value}
        if name == "API_KEY":
            body.pop("API_KEY")
            body["api_key"] = value
        response = await client.post(messages_url(order_id), json=body)
        assert response.status_code < 500, (name, value, response.text)
        if response.status_code == 200:
            order_id = await make_order(database, tenant)
        else:
            assert set(response.json()) == {"Status", "Message", "Code"}, (name, value, response.text)


@pytest.mark.parametrize("how", ["query", "form", "multipart"])
async def test_odd_text_values_never_500(client, database, how):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    texts = [
        "",
        " ",
        "0",
        "-0",
        "+4",
        "4 4",
        "0x4",
        "٤",
        "²",
        "①",
        "𝟒",
        "４",
        "\u00a0",
        "a\x00b",
        "%",
        "null",
        "[]",
        "{}",
        "1" * 40,
        "é" * 400,
    ]

    for name in NAMES:
        for text in texts:
            fields = {**tenant.credentials(messageOptions=4, message="Hola"), name: text}
            if name == "API_KEY":
                fields["API_KEY"] = text
            response = await post_by(client, order_id, how, fields)
            assert response.status_code < 500, (how, name, text, response.text)
            if response.status_code == 200:
                order_id = await make_order(database, tenant)
            else:
                assert set(response.json()) == {"Status", "Message", "Code"}, (how, name, text, response.text)


async def test_json_nested_deeply_is_not_a_500(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    deep = '{"message": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = await client.post(
        messages_url(order_id), content=deep.encode(), headers={"content-type": "application/json"}
    )

    assert 400 <= response.status_code < 500, response.text
    assert json.loads(response.text)["Status"] == response.status_code
