"""Orders as Alephee writes them (issue 17), over HTTP on SQLite and PostgreSQL: every order validates
against the JSON Schema of Alephee's order kept in tests/contract, timestamps are whole seconds with a
Z, `sort=dateCreated` pages exactly through orders that share one second, and `dateCreatedFrom` takes
what clients send (`yyyy-mm-dd HH:mm` as the tap encodes it, and ISO 8601), inclusively."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema_rs
from sqlalchemy import update

from postventa.services import admin
from postventa.store.tables import accounts
from tests.factories import Tenant, make_order, make_tenant, now, window

SCHEMAS = Path(__file__).parents[1] / "contract" / "alephee_schemas"
ORDER_SCHEMA = jsonschema_rs.validator_for(json.loads((SCHEMAS / "orders.schema.json").read_text()))
ENVELOPE_SCHEMA = jsonschema_rs.validator_for(json.loads((SCHEMAS / "envelope.schema.json").read_text()))
ALEPHEE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def assert_alephee_order(order: dict[str, Any]) -> None:
    errors = [str(error) for error in ORDER_SCHEMA.iter_errors(order)]
    assert errors == [], errors
    times = [order["DateCreated"], order["DateClosed"], order["LastUpdated"]]
    times.append(order["Shipping"]["EstimatedDeliveryDate"])
    for written in times:
        assert written is None or ALEPHEE_TIME.match(written), written


async def page_of(client, tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = await client.get("/v2/orders", params=tenant.credentials(**params))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert [str(error) for error in ENVELOPE_SCHEMA.iter_errors(body)] == []
    return body


async def import_orders(database, tenant: Tenant, orders: list[dict[str, Any]]) -> list[int]:
    async with database.transaction(write=True) as connection:
        imported = await admin.import_orders(connection, tenant.account_id, {"Orders": orders}, now())
    return [order.id for order in imported]


async def test_every_order_reads_as_alephees(client, database):
    tenant = await make_tenant(database, name="Tienda Norte")
    async with database.transaction(write=True) as connection:
        await connection.execute(
            update(accounts).where(accounts.c.id == tenant.account_id).values(business_name="Norte S.A.")
        )
    full = await make_order(
        database,
        tenant,
        PackId=2_000_000_123,
        SiteId="MLA",
        Status=90,
        LogisticType="self_service",
        EstimatedDelivery=window(1),
        ExternalShippingId=43_000_000_777,
        Buyer={"Code": "98765", "Nickname": "COMPRADOR", "Name": "Ana"},
        DateCreated="2024-05-01T12:00:00.999Z",
        DateClosed="2024-05-01T12:05:00.5Z",
    )
    bare = await make_order(database, tenant, Marketplace="Dafiti", SiteId=None, Buyer={"Code": "X-1"})

    page = await page_of(client, tenant)
    one = (await client.get(f"/v2/orders/{full}", params=tenant.credentials())).json()

    assert [order["Id"] for order in page["Results"]] == [full, bare]
    for order in [*page["Results"], one]:
        assert_alephee_order(order)
        assert order["SellerAccount"] == {
            "Id": tenant.account_id,
            "OwnCode": None,
            "Name": "Tienda Norte",
            "BusinessName": "Norte S.A.",
        }
    assert (one["PackId"], one["Buyer"]["Code"], one["IsCancelled"]) == ("2000000123", 98765, True)
    assert (one["DateCreated"], one["DateClosed"]) == ("2024-05-01T12:00:00Z", "2024-05-01T12:05:00Z")
    assert one["Shipping"]["ExternalShippingId"] == 43_000_000_777
    assert one["MarketPlace"] == {"Key": 1, "Value": "MercadoLibre", "Channel": None}
    assert page["Paging"] == {"Limit": 100, "Offset": 0, "Total": 2}


async def test_orders_sharing_one_second_page_exactly_by_date_then_id(client, database):
    tenant = await make_tenant(database)
    other = await make_tenant(database)
    second = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
    # 250 orders in one second: five instants, each shared by 50 orders, given in reverse time order
    # (later instants get smaller ids), so only sorting by time and then by Id gives one order.
    instants = [second + dt.timedelta(milliseconds=100 * (4 - index % 5)) for index in range(250)]
    created = await import_orders(
        database,
        tenant,
        [
            {"ExternalOrderId": f"TIE-{i}", "SiteId": "MLA", "DateCreated": t.isoformat()}
            for i, t in enumerate(instants)
        ],
    )
    await import_orders(
        database, other, [{"ExternalOrderId": "NOT-MINE", "SiteId": "MLA", "DateCreated": second.isoformat()}]
    )
    expected = [order_id for _, order_id in sorted(zip(instants, created, strict=True))]

    seen: list[int] = []
    offset = 0
    while True:  # as the tap pages: no limit, no offset at first, then its own counter plus 100
        params = {"sort": "dateCreated", **({"offset": offset} if offset else {})}
        page = await page_of(client, tenant, **params)
        assert page["Paging"] == {"Limit": 100, "Offset": offset, "Total": 250}
        for order in page["Results"]:
            assert order["DateCreated"] == "2024-05-01T12:00:00Z"
        seen += [order["Id"] for order in page["Results"]]
        if page["Paging"]["Offset"] + page["Paging"]["Limit"] >= page["Paging"]["Total"]:
            break
        offset += 100

    assert seen == expected
    assert len(set(seen)) == 250
    beyond = await page_of(client, tenant, sort="dateCreated", offset=1000)
    assert (beyond["Paging"], beyond["Results"]) == ({"Limit": 100, "Offset": 1000, "Total": 250}, [])
    small = [await page_of(client, tenant, sort="dateCreated", limit=7, offset=o) for o in range(0, 250, 7)]
    assert [order["Id"] for page in small for order in page["Results"]] == expected


async def test_date_created_from_as_clients_send_it_is_utc_and_inclusive(client, database):
    tenant = await make_tenant(database)
    times = [
        "2024-05-01T11:59:59.999Z",
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.500Z",
        "2024-05-01T12:00:59Z",
        "2024-05-02T00:00:00Z",
    ]
    before, at, half, end_of_minute, next_day = await import_orders(
        database,
        tenant,
        [{"ExternalOrderId": f"FROM-{i}", "SiteId": "MLA", "DateCreated": t} for i, t in enumerate(times)],
    )

    # Byte for byte what the tap sends: the space as +, the colon as %3A, after its own parameters.
    query = urlencode(
        {"accountId": tenant.account_id, "sort": "dateCreated", "dateCreatedFrom": "2024-05-01 12:00"}
    )
    assert "dateCreatedFrom=2024-05-01+12%3A00" in query
    response = await client.get(f"/v2/orders?{query}&{urlencode({'API_KEY': tenant.api_key})}")
    assert response.status_code == 200, response.text
    assert [order["Id"] for order in response.json()["Results"]] == [at, half, end_of_minute, next_day]

    expectations = {
        "2024-05-01 12:00": [at, half, end_of_minute, next_day],
        "2024-05-01 11:59": [before, at, half, end_of_minute, next_day],
        "2024-05-01 12:01": [next_day],
        "2024-05-01T12:00:00Z": [at, half, end_of_minute, next_day],
        "2024-05-01T12:00:00.5Z": [half, end_of_minute, next_day],
        "2024-05-01T09:00:00-03:00": [at, half, end_of_minute, next_day],
        "2024-05-01T12:00:00": [at, half, end_of_minute, next_day],
        "2024-05-02": [next_day],
    }
    for sent, expected in expectations.items():
        page = await page_of(client, tenant, sort="dateCreated", dateCreatedFrom=sent)
        assert [order["Id"] for order in page["Results"]] == expected, sent
        assert page["Paging"]["Total"] == len(expected)

    # The incremental pass: the last DateCreated, parsed and written back as the tap does.
    last = (await page_of(client, tenant, sort="dateCreated"))["Results"][-2]["DateCreated"]
    bookmark = dt.datetime.strptime(last, "%Y-%m-%dT%H:%M:%SZ").strftime("%Y-%m-%d %H:%M")
    again = await page_of(client, tenant, sort="dateCreated", dateCreatedFrom=bookmark)
    assert [order["Id"] for order in again["Results"]] == [at, half, end_of_minute, next_day]
