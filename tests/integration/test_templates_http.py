"""Contract §3.2 over HTTP: the template text stored for reasons 1, 2 and 5 in every country (the seed
page's texts), `X-Message-Ignored: true` when a message comes with a template reason, and
SEND_INVOICE_LINK only in Mexico."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.factories import make_order, make_tenant, now, window
from tests.integration.http_helpers import (
    assert_accepted,
    assert_refused,
    conversation,
    messages_url,
    send,
)

ZONES = {
    "MLA": "America/Argentina/Buenos_Aires",
    "MLB": "America/Sao_Paulo",
    "MLM": "America/Mexico_City",
    "MCO": "America/Bogota",
    "MLC": "America/Santiago",
    "MLU": "America/Montevideo",
    "MPE": "America/Lima",
    "MEC": "America/Guayaquil",
}
SITES = list(ZONES)

# Seed page, option 1 (REQUEST_VARIANTS): AR CL CO MX UY in Spanish, BR in Portuguese.
VARIANTS_ES = (
    "Hola, por favor confirma las características que quieres del producto que compraste, "
    "así podemos concretar el envío."
)
VARIANTS_PT = (
    "Olá! Por favor, confirme as características que quer para o produto que você comprou, "
    "assim, podemos fazer o envio."
)
VARIANTS = {
    "MLA": VARIANTS_ES,
    "MLC": VARIANTS_ES,
    "MCO": VARIANTS_ES,
    "MLM": VARIANTS_ES,
    "MLU": VARIANTS_ES,
    "MLB": VARIANTS_PT,
}

# Seed page, option 2 (REQUEST_BILLING_INFO): the intro, a blank line, then one "· " line per field.
BILLING_INTRO = "Para adjuntarte la factura de tu compra necesito los siguientes datos:\n\n"
BILLING = {
    "MLA": BILLING_INTRO + "· Nombre y apellido\n· DNI\n· Domicilio\n· Código postal",
    "MCO": BILLING_INTRO + "· Nombre y apellido\n· Tipo y número de documento\n· Email\n· Domicilio\n"
    "· Código postal\n· Código de municipio\n· Código de departamento",
    "MLM": BILLING_INTRO + "· Nombre y apellido\n· RFC\n· Domicilio\n· Código postal",
    "MLU": BILLING_INTRO + "· Nombre y apellido\n· Cédula",
}

# Contract §3.2, option 5 (DELIVERY_PROMISE): AR BR CL CO UY.
PROMISE_SITES = {"MLA", "MLB", "MLC", "MCO", "MLU"}


def promise_text(site: str, day_offset: int, from_hour: int, to_hour: int) -> str:
    today = now().astimezone(ZoneInfo(ZONES[site])).date()
    date = today + dt.timedelta(days=day_offset)
    if site == "MLB":
        day = {0: "hoje", 1: "amanhã"}.get(day_offset, f"em {date:%d/%m/%Y}")
        return f"Olá, entregaremos sua compra {day} entre {from_hour} e {to_hour} h."
    day = {0: "hoy", 1: "mañana"}.get(day_offset, f"el {date:%d/%m/%Y}")
    return f"Hola, entregaremos tu compra {day} entre las {from_hour} y las {to_hour} hs."


async def stored_text(client, tenant, order_id) -> str:
    messages = await conversation(client, tenant, order_id)
    assert len(messages) == 1
    return str(messages[0]["Text"])


@pytest.mark.parametrize("site", SITES)
async def test_request_variants_text_per_country(client, database, site):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, SiteId=site, LogisticType="cross_docking")

    response = await send(client, tenant, order_id, messageOptions=1)

    if site not in VARIANTS:
        assert_refused(response, 412, "reason_not_available_in_country")
        return
    assert_accepted(response)
    assert await stored_text(client, tenant, order_id) == VARIANTS[site]
    assert (await conversation(client, tenant, order_id))[0]["Reason"] == {
        "Key": 1,
        "Value": "REQUEST_VARIANTS",
    }


@pytest.mark.parametrize("site", SITES)
async def test_request_billing_info_text_per_country(client, database, site):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, SiteId=site, LogisticType="self_service")

    response = await send(client, tenant, order_id, messageOptions="request_billing_info")

    if site not in BILLING:
        assert_refused(response, 412, "reason_not_available_in_country")
        return
    assert_accepted(response)
    assert await stored_text(client, tenant, order_id) == BILLING[site]


@pytest.mark.parametrize(
    ("day_offset", "from_hour", "to_hour"),
    [(0, 20, 24), (1, 9, 18), (4, 14, 20)],
    ids=["today", "tomorrow", "date"],
)
@pytest.mark.parametrize("site", SITES)
async def test_delivery_promise_text_per_country(client, database, site, day_offset, from_hour, to_hour):
    tenant = await make_tenant(database)
    delivery = window(day_offset, from_hour=from_hour, to_hour=to_hour, site_zone=ZONES[site])
    order_id = await make_order(
        database, tenant, SiteId=site, LogisticType="self_service", EstimatedDelivery=delivery
    )

    response = await send(client, tenant, order_id, messageOptions=5)

    if site not in PROMISE_SITES:
        assert_refused(response, 412, "reason_not_available_in_country")
        return
    assert_accepted(response)
    assert await stored_text(client, tenant, order_id) == promise_text(site, day_offset, from_hour, to_hour)


@pytest.mark.parametrize("site", ["MLA", "MLB"])
async def test_options_preview_is_the_text_a_send_stores(client, database, site):
    tenant = await make_tenant(database)
    fields = {
        "SiteId": site,
        "LogisticType": "flex-turbo",
        "EstimatedDelivery": window(2, site_zone=ZONES[site]),
    }
    preview_order = await make_order(database, tenant, **fields)
    options = (await client.get(f"{messages_url(preview_order)}/options", params=tenant.credentials())).json()
    preview = {option["Reason"]["Key"]: option["Template"] for option in options["Results"]}

    order_id = await make_order(database, tenant, **fields)
    assert_accepted(await send(client, tenant, order_id, messageOptions=5))

    assert preview[5] == await stored_text(client, tenant, order_id) == promise_text(site, 2, 9, 18)
    assert preview[4] is None


# --- X-Message-Ignored ----------------------------------------------------------------------------

TEMPLATE_ORDERS = {
    1: {"LogisticType": "drop_off"},
    2: {"LogisticType": "cross_docking"},
    5: {"LogisticType": "self_service", "EstimatedDelivery": window(3)},
}


@pytest.mark.parametrize(
    "message",
    ["Un texto que no se envía", "x" * 1000, "   ", "con\x01control"],
    ids=["text", "long", "blank", "ctl"],
)
@pytest.mark.parametrize("reason", [1, 2, 5])
async def test_message_with_a_template_reason_is_ignored_and_said_so(client, database, reason, message):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, **TEMPLATE_ORDERS[reason])
    bare = await make_order(database, tenant, **TEMPLATE_ORDERS[reason])

    response = await client.post(
        messages_url(order_id), json=tenant.credentials(messageOptions=reason, message=message)
    )
    without = await send(client, tenant, bare, messageOptions=reason)

    assert_accepted(response)
    assert response.headers["x-message-ignored"] == "true"
    assert_accepted(without)
    assert "x-message-ignored" not in without.headers
    assert await stored_text(client, tenant, order_id) == await stored_text(client, tenant, bare)
    assert message not in await stored_text(client, tenant, order_id)


@pytest.mark.parametrize("reason", [3, 4])
async def test_free_text_reasons_send_the_message_without_the_header(client, database, reason):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, SiteId="MLM")

    response = await send(
        client, tenant, order_id, messageOptions=reason, message="  https://facturas.test/F-1  "
    )

    assert_accepted(response)
    assert "x-message-ignored" not in response.headers
    assert await stored_text(client, tenant, order_id) == "https://facturas.test/F-1"


async def test_empty_message_with_a_template_reason_is_no_message(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    response = await send(client, tenant, order_id, messageOptions=2, message="")

    assert_accepted(response)
    assert "x-message-ignored" not in response.headers


async def test_ignored_header_is_only_on_success(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, SiteId="MPE")

    response = await send(client, tenant, order_id, messageOptions=2, message="hola")

    assert_refused(response, 412, "reason_not_available_in_country")
    assert "x-message-ignored" not in response.headers


# --- SEND_INVOICE_LINK only in Mexico -------------------------------------------------------------


@pytest.mark.parametrize("site", SITES)
async def test_send_invoice_link_only_in_mexico(client, database, site):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, SiteId=site, LogisticType="fulfillment", Status=80)

    response = await send(
        client, tenant, order_id, messageOptions="SEND_INVOICE_LINK", message="https://f.test/1"
    )

    if site == "MLM":
        assert_accepted(response)
        message = (await conversation(client, tenant, order_id))[0]
        assert (message["Text"], message["Reason"]) == (
            "https://f.test/1",
            {"Key": 3, "Value": "SEND_INVOICE_LINK"},
        )
    else:
        body = assert_refused(response, 412, "reason_not_available_in_country")
        assert "SEND_INVOICE_LINK" in body["Message"]
        assert await conversation(client, tenant, order_id) == []


async def test_send_invoice_link_needs_its_text(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, SiteId="MLM")

    assert_refused(await send(client, tenant, order_id, messageOptions=3), 400, "message_missing")
    assert_refused(
        await send(client, tenant, order_id, messageOptions=3, message="u" * 351), 400, "message_too_long"
    )
