"""Contract §4 over HTTP: GET /v2/orders (paging envelope and filters), one order, one message, and the
send options, which must predict exactly what a send of each reason answers."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.factories import buyer_replies, make_order, make_tenant, window
from tests.integration.http_helpers import (
    PDF,
    answered_order,
    assert_accepted,
    assert_rate_limit_headers,
    assert_refused,
    messages_url,
    send,
)


async def orders(client, tenant, **params) -> dict[str, Any]:
    response = await client.get("/v2/orders", params=tenant.credentials(**params))
    assert response.status_code == 200, response.text
    assert_rate_limit_headers(response)
    body: dict[str, Any] = response.json()
    return body


def ids(page: dict[str, Any]) -> list[int]:
    return [order["Id"] for order in page["Results"]]


# --- GET /v2/orders -------------------------------------------------------------------------------


async def test_paging_over_several_pages(client, database):
    tenant = await make_tenant(database)
    created = [await make_order(database, tenant) for _ in range(7)]

    pages = [await orders(client, tenant, limit=3, offset=offset) for offset in (0, 3, 6, 9)]

    for page, offset, size in zip(pages, (0, 3, 6, 9), (3, 3, 1, 0), strict=True):
        assert page["Paging"] == {"Limit": 3, "Offset": offset, "Total": 7}
        assert page["Total"] == 7
        assert len(page["Results"]) == size
    assert [i for page in pages for i in ids(page)] == sorted(created)


async def test_defaults_and_bounds_of_limit_and_offset(client, database):
    tenant = await make_tenant(database)
    created = [await make_order(database, tenant) for _ in range(3)]

    default = await orders(client, tenant)
    assert default["Paging"] == {"Limit": 100, "Offset": 0, "Total": 3}
    assert ids(default) == created
    assert (await orders(client, tenant, limit=1))["Paging"]["Limit"] == 1
    assert ids(await orders(client, tenant, limit=1000)) == created

    for limit in ("0", "1001", "-1", "abc", "1.5", "10000000000000000000000"):
        response = await client.get("/v2/orders", params=tenant.credentials(limit=limit))
        assert_refused(response, 400, "limit_invalid")
    assert_refused(
        await client.get("/v2/orders", params=tenant.credentials(offset=-1)), 400, "offset_invalid"
    )


async def test_empty_account_lists_nothing(client, database):
    tenant = await make_tenant(database)

    page = await orders(client, tenant)

    assert page["Paging"] == {"Limit": 100, "Offset": 0, "Total": 0}
    assert (page["Total"], page["Results"]) == (0, [])


async def test_status_type_filter(client, database):
    tenant = await make_tenant(database)
    by_status = {
        status: await make_order(database, tenant, Status=status) for status in (0, 10, 20, 80, 90, 11, 93)
    }
    expected = {
        "0": [0],
        "1": [10, 20],
        "2": [80],
        "99": [90, 11, 93],
        "new": [0],
        "Pending": [10, 20],
        "CLOSED": [80],
        "cancelled": [90, 11, 93],
    }

    for status_type, statuses in expected.items():
        page = await orders(client, tenant, statusType=status_type)
        assert ids(page) == sorted(by_status[s] for s in statuses), status_type
        assert page["Total"] == page["Paging"]["Total"] == len(statuses)
        keys = {order["StatusType"]["Key"] for order in page["Results"]}
        assert len(keys) == 1
        if status_type.isdigit():
            assert keys == {int(status_type)}

    for bad in ("3", "-1", "closedish"):
        response = await client.get("/v2/orders", params=tenant.credentials(statusType=bad))
        assert_refused(response, 400, "status_type_invalid")


async def test_date_created_from_filter(client, database):
    tenant = await make_tenant(database)
    january = await make_order(database, tenant, DateCreated="2024-01-10T10:00:00Z")
    march = await make_order(database, tenant, DateCreated="2024-03-15T12:30:00Z")
    june = await make_order(database, tenant, DateCreated="2024-06-01T00:00:00Z")

    assert ids(await orders(client, tenant, dateCreatedFrom="2024-01-01 00:00")) == [january, march, june]
    assert ids(await orders(client, tenant, dateCreatedFrom="2024-03-15 12:30")) == [march, june]
    assert ids(await orders(client, tenant, dateCreatedFrom="2024-03-15 12:31")) == [june]
    assert ids(await orders(client, tenant, dateCreatedFrom="2024-06-02 00:00")) == []
    page = await orders(client, tenant, dateCreatedFrom="2024-02-01 00:00", limit=1)
    assert (page["Total"], ids(page)) == (2, [march])

    for bad in ("15/03/2024", "2024-13-01 00:00", "yesterday"):
        response = await client.get("/v2/orders", params=tenant.credentials(dateCreatedFrom=bad))
        assert_refused(response, 400, "dateCreatedFrom_invalid")


async def test_id_from_and_id_to_filters(client, database):
    tenant = await make_tenant(database)
    created = [await make_order(database, tenant) for _ in range(5)]

    assert ids(await orders(client, tenant, idFrom=created[1], idTo=created[3])) == created[1:4]
    assert ids(await orders(client, tenant, idFrom=created[3])) == created[3:]
    assert ids(await orders(client, tenant, idTo=created[0])) == created[:1]
    page = await orders(client, tenant, idFrom=created[1], limit=2, offset=2)
    assert (page["Total"], ids(page)) == (4, created[3:5])

    for name in ("idFrom", "idTo"):
        for bad in ("abc", "0", "-3"):
            response = await client.get("/v2/orders", params=tenant.credentials(**{name: bad}))
            assert_refused(response, 400, f"{name}_invalid")


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"offset": 2**62}, 200),
        ({"idFrom": 2**63 - 1}, 200),
        ({"idTo": 2**63 - 1}, 200),
        ({"dateCreatedFrom": "0001-01-01 00:00"}, 200),
        ({"dateCreatedFrom": "9999-12-31 23:59"}, 200),
        ({"offset": 2**64}, 400),
        ({"idFrom": 2**63}, 400),
        ({"limit": "０"}, 400),
    ],
)
async def test_extreme_filter_values_are_200_or_400(client, database, params, status):
    tenant = await make_tenant(database)
    await make_order(database, tenant)

    response = await client.get("/v2/orders", params=tenant.credentials(**params))

    assert response.status_code == status, response.text


# --- GET /v2/orders/{orderId} ---------------------------------------------------------------------


async def test_one_order_has_every_field(client, database):
    tenant = await make_tenant(database, name="Tienda Norte")
    pack = 5_000_000_000_000 + tenant.account_id
    delivery = window(2, site_zone="America/Sao_Paulo")
    order_id = await make_order(
        database,
        tenant,
        ExternalOrderId=f"2000001234-{tenant.account_id}",
        PackId=pack,
        SiteId="mlb",
        Status=20,
        LogisticType="self_service",
        EstimatedDelivery=delivery,
        ExternalShippingId=44_000_000_001,
        Buyer={"Code": 123456, "Nickname": "COMPRADOR1", "Name": "João Silva"},
        DateCreated="2024-05-01T13:45:00.250Z",
        DateClosed="2024-05-01T10:46:07.9-03:00",
    )

    response = await client.get(f"/v2/orders/{order_id}", params=tenant.credentials())

    assert response.status_code == 200
    assert_rate_limit_headers(response)
    order = response.json()
    last_updated = order.pop("LastUpdated")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", last_updated)
    marketplace = {"Key": 1, "Value": "MercadoLibre", "Channel": None}
    day_start = dt.datetime.combine(
        dt.date.fromisoformat(delivery["Date"]), dt.time(), tzinfo=ZoneInfo("America/Sao_Paulo")
    )
    assert order == {
        "Id": order_id,
        "ExternalOrderId": f"2000001234-{tenant.account_id}",
        "PackId": str(pack),
        "SellerAccount": {
            "Id": tenant.account_id,
            "OwnCode": None,
            "Name": "Tienda Norte",
            "BusinessName": None,
        },
        "MarketPlace": marketplace,
        "Marketplace": marketplace,
        "SiteId": "MLB",
        "Status": {"Key": 20, "Value": "Shipped"},
        "StatusType": {"Key": 1, "Value": "Pending"},
        "IsCancelled": False,
        "Shipping": {
            "ExternalShippingId": 44_000_000_001,
            "LogisticType": {"Key": 6, "Value": "flex"},
            "EstimatedDeliveryDate": day_start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "EstimatedDelivery": delivery,
        },
        "Buyer": {"Code": 123456, "Owncode": None, "Nickname": "COMPRADOR1", "Name": "João Silva"},
        "DateCreated": "2024-05-01T13:45:00Z",
        "DateClosed": "2024-05-01T13:46:07Z",
    }
    listed = (await orders(client, tenant))["Results"]
    assert listed == [response.json()]


LOGISTIC = [
    ("drop_off", 3, "me2"),
    ("xd_drop_off", 3, "me2"),
    ("fulfillment", 5, "fulfillment"),
    (15, 15, "flex-turbo"),
    ("not_specified", 1, "to_be_agreed"),
    ("default", 2, "me1"),
    ("self_service", 6, "flex"),
    (7, 7, "pickup"),
    ("custom", 4, "custom"),
    ("cross_docking", 8, "cross_docking"),
    ("14", 14, "courier"),
]


@pytest.mark.parametrize(("given", "key", "value"), LOGISTIC)
async def test_logistic_type_as_key_and_value(client, database, given, key, value):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, LogisticType=given)

    order = (await client.get(f"/v2/orders/{order_id}", params=tenant.credentials())).json()

    assert order["Shipping"]["LogisticType"] == {"Key": key, "Value": value}


async def test_status_types_marketplace_and_defaults(client, database):
    tenant = await make_tenant(database)
    expected_types = {
        0: (0, "New"),
        10: (1, "Pending"),
        80: (2, "Closed"),
        90: (99, "Cancelled"),
        93: (99, "Cancelled"),
    }
    for status, (key, value) in expected_types.items():
        order_id = await make_order(database, tenant, Status=status)
        order = (await client.get(f"/v2/orders/{order_id}", params=tenant.credentials())).json()
        assert (order["Status"]["Key"], order["StatusType"]) == (status, {"Key": key, "Value": value})
        assert order["IsCancelled"] is (key == 99)

    amazon = await make_order(
        database,
        tenant,
        Marketplace="Amazon",
        SiteId=None,
        Buyer={"Code": "AMZ-77"},
        EstimatedDelivery=window(1),
    )
    order = (await client.get(f"/v2/orders/{amazon}", params=tenant.credentials())).json()
    amazon_marketplace = {"Key": 0, "Value": "Amazon", "Channel": None}
    assert (order["MarketPlace"], order["Marketplace"], order["SiteId"]) == (
        amazon_marketplace,
        amazon_marketplace,
        None,
    )
    assert order["Buyer"]["Code"] is None  # not a numeric marketplace id: Alephee's Code is an integer
    assert order["Shipping"]["EstimatedDeliveryDate"] is None  # a local day, and no site to place it
    plain = await make_order(database, tenant)
    order = (await client.get(f"/v2/orders/{plain}", params=tenant.credentials())).json()
    assert (order["PackId"], order["Shipping"]["EstimatedDelivery"]) == (None, None)
    assert order["Buyer"] == {"Code": None, "Owncode": None, "Nickname": None, "Name": None}
    assert (order["DateClosed"], order["Shipping"]["ExternalShippingId"]) == (None, None)
    assert order["DateCreated"].endswith("Z")


async def test_one_order_refusals(client, database):
    tenant = await make_tenant(database)
    other = await make_tenant(database)
    foreign = await make_order(database, other)

    assert_refused(
        await client.get(f"/v2/orders/{foreign}", params=tenant.credentials()), 404, "order_not_found"
    )
    assert_refused(
        await client.get(f"/v2/orders/{2**62}", params=tenant.credentials()), 404, "order_not_found"
    )
    assert_refused(await client.get("/v2/orders/abc", params=tenant.credentials()), 400, "order_id_invalid")
    assert_refused(await client.get(f"/v2/orders/{foreign}"), 401, "api_key_missing")


# --- GET one message ------------------------------------------------------------------------------


async def test_one_message_and_message_not_found(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    neighbour = await make_order(database, tenant)
    message_id = assert_accepted(await send(client, tenant, order_id, messageOptions=4, message="Hola"))
    reply_id = await buyer_replies(database, order_id, "Gracias")
    url = messages_url(order_id)

    sent = (await client.get(f"{url}/{message_id}", params=tenant.credentials())).json()
    reply = (await client.get(f"{url}/{reply_id}", params=tenant.credentials())).json()

    assert {k: sent[k] for k in ("Id", "OrderId", "Direction", "Reason", "Text", "Attachment", "Status")} == {
        "Id": message_id,
        "OrderId": order_id,
        "Direction": "outbound",
        "Reason": {"Key": 4, "Value": "OTHER"},
        "Text": "Hola",
        "Attachment": None,
        "Status": "queued",
    }
    assert sent["DateCreated"].endswith("Z")
    assert sent["DateStatus"].endswith("Z")
    assert (sent["DateSent"], sent["DateFailed"], sent["ErrorCode"], sent["ErrorMessage"]) == (None,) * 4
    assert (reply["Direction"], reply["Reason"], reply["Text"], reply["Status"]) == (
        "inbound",
        None,
        "Gracias",
        "received",
    )
    for missing in (2**62, reply_id + 1000):
        assert_refused(
            await client.get(f"{url}/{missing}", params=tenant.credentials()), 404, "message_not_found"
        )
    assert_refused(
        await client.get(f"{messages_url(neighbour)}/{message_id}", params=tenant.credentials()),
        404,
        "message_not_found",
    )
    assert_refused(await client.get(f"{url}/abc", params=tenant.credentials()), 400, "message_id_invalid")


# --- GET …/messages/options predicts every send ---------------------------------------------------


SCENARIOS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "mla-cross-docking": ({"SiteId": "MLA", "LogisticType": "cross_docking"}, []),
    "mla-flex-window": (
        {"SiteId": "MLA", "LogisticType": "self_service", "EstimatedDelivery": window(1)},
        [],
    ),
    "mla-flex-no-window": ({"SiteId": "MLA", "LogisticType": "self_service"}, []),
    "mlb-flex-past": ({"SiteId": "MLB", "LogisticType": "self_service", "EstimatedDelivery": window(-2)}, []),
    "mco-flex-turbo": ({"SiteId": "MCO", "LogisticType": 15, "EstimatedDelivery": window(3)}, []),
    "mlu-drop-off": ({"SiteId": "MLU", "LogisticType": "drop_off"}, []),
    "mlm-fulfillment-pending": ({"SiteId": "MLM", "LogisticType": "fulfillment", "Status": 10}, []),
    "mlm-fulfillment-delivered": ({"SiteId": "MLM", "LogisticType": "fulfillment", "Status": 80}, []),
    "mlc-me1": ({"SiteId": "MLC", "LogisticType": "default"}, []),
    "mpe": ({"SiteId": "MPE"}, []),
    "cancelled": ({"Status": 90}, []),
    "deleted": ({"Status": 70}, []),
    "amazon": ({"Marketplace": "Amazon", "SiteId": None}, []),
    "awaiting-reply": ({"SiteId": "MLM"}, ["send"]),
    "answered": ({"SiteId": "MLM"}, ["send", "reply"]),
    "locked-by-attachment": ({"SiteId": "MLM"}, ["send", "reply", "attach", "reply"]),
    "cancelled-after-send": ({"Status": 90}, ["send"]),
}


_later_cancelled = itertools.count(1)


async def build(client, database, tenant, fields: dict[str, Any], steps: list[str]) -> int:
    """An order in a scenario's state: its fields, then sends and replies on its conversation."""
    if any(step == "send" for step in steps) and fields.get("Status") == 90:
        live = {**fields, "Status": 10, "ExternalOrderId": f"LATER-CANCELLED-{next(_later_cancelled)}"}
        order_id = await make_order(database, tenant, **live)
        assert_accepted(await send(client, tenant, order_id, messageOptions=4, message="Primero"))
        await make_order(database, tenant, **{**live, "Status": 90})
        return order_id
    order_id = await make_order(database, tenant, **fields)
    for step in steps:
        if step == "send":
            assert_accepted(await send(client, tenant, order_id, messageOptions=4, message="Primero"))
        elif step == "reply":
            await buyer_replies(database, order_id)
        elif step == "attach":
            assert_accepted(
                await client.post(
                    messages_url(order_id),
                    params=tenant.credentials(messageOptions=4, message="Adjunto"),
                    files={"file": ("f.pdf", PDF, "application/pdf")},
                )
            )
    return order_id


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_options_predict_what_each_send_answers(client, database, scenario):
    tenant = await make_tenant(database)
    fields, steps = SCENARIOS[scenario]
    order_id = await build(client, database, tenant, fields, steps)

    response = await client.get(f"{messages_url(order_id)}/options", params=tenant.credentials())

    assert response.status_code == 200, response.text
    assert_rate_limit_headers(response)
    body = response.json()
    assert body["OrderId"] == order_id
    options = {option["Reason"]["Key"]: option for option in body["Results"]}
    assert sorted(options) == [1, 2, 3, 4, 5]
    for reason, option in options.items():
        fresh = await build(client, database, tenant, fields, steps)
        text = {"message": "Texto válido"} if reason in (3, 4) else {}
        sent = await send(client, tenant, fresh, messageOptions=reason, **text)
        assert option["Status"] == sent.status_code, (scenario, reason, option, sent.text)
        assert option["Available"] is (sent.status_code == 200)
        assert (
            option["Reason"]["Value"]
            == ["REQUEST_VARIANTS", "REQUEST_BILLING_INFO", "SEND_INVOICE_LINK", "OTHER", "DELIVERY_PROMISE"][
                reason - 1
            ]
        )
        assert (option["TextMode"], option["CharLimit"]) == (
            ("free_text", 350) if reason in (3, 4) else ("template", None)
        )
        if sent.status_code == 200:
            assert (option["Code"], option["Message"]) == (None, None)
        else:
            refusal = sent.json()
            assert (option["Code"], option["Message"]) == (refusal["Code"], refusal["Message"]), (
                scenario,
                reason,
            )


async def test_options_refusals(client, database):
    tenant = await make_tenant(database)
    other = await make_tenant(database)
    foreign = await make_order(database, other)

    assert_refused(
        await client.get(f"{messages_url(foreign)}/options", params=tenant.credentials()),
        404,
        "order_not_found",
    )
    assert_refused(
        await client.get(f"{messages_url('x')}/options", params=tenant.credentials()), 400, "order_id_invalid"
    )
    assert_refused(await client.get(f"{messages_url(foreign)}/options"), 401, "api_key_missing")


async def test_options_follow_the_pack(client, database):
    tenant = await make_tenant(database)
    pack = 6_000_000_000_000 + tenant.account_id
    first = await answered_order(client, database, tenant, PackId=pack)
    second = await make_order(database, tenant, PackId=pack)
    assert_accepted(await send(client, tenant, first, messageOptions=4, message="Otra vez"))

    options = (await client.get(f"{messages_url(second)}/options", params=tenant.credentials())).json()

    assert {o["Reason"]["Key"]: o["Code"] for o in options["Results"]}[4] == "awaiting_buyer_reply"
