"""Template texts (contract §3.2 and the original page's tables), typed here literally."""

from __future__ import annotations

import datetime as dt

import pytest

from postventa.domain.orders import DeliveryWindow
from postventa.domain.reasons import Reason
from postventa.domain.sites import Language, Site
from postventa.domain.templates import (
    billing_info_text,
    delivery_promise_text,
    render_template,
    request_variants_text,
)

TODAY = dt.date(2025, 3, 15)

VARIANTS_ES = (
    "Hola, por favor confirma las características que quieres del producto que compraste, "
    "así podemos concretar el envío."
)
VARIANTS_PT = (
    "Olá! Por favor, confirme as características que quer para o produto que você comprou, "
    "assim, podemos fazer o envio."
)


@pytest.mark.parametrize("site", [Site.MLA, Site.MLC, Site.MCO, Site.MLM, Site.MLU])
def test_request_variants_in_spanish(site):
    assert request_variants_text(site) == VARIANTS_ES
    assert render_template(Reason.REQUEST_VARIANTS, site, None, TODAY) == VARIANTS_ES


def test_request_variants_in_portuguese_for_brazil():
    assert request_variants_text(Site.MLB) == VARIANTS_PT
    assert render_template(Reason.REQUEST_VARIANTS, Site.MLB, None, TODAY) == VARIANTS_PT


@pytest.mark.parametrize(
    ("site", "expected"),
    [
        pytest.param(
            Site.MLA,
            "Para adjuntarte la factura de tu compra necesito los siguientes datos:\n"
            "\n"
            "· Nombre y apellido\n"
            "· DNI\n"
            "· Domicilio\n"
            "· Código postal",
            id="AR",
        ),
        pytest.param(
            Site.MCO,
            "Para adjuntarte la factura de tu compra necesito los siguientes datos:\n"
            "\n"
            "· Nombre y apellido\n"
            "· Tipo y número de documento\n"
            "· Email\n"
            "· Domicilio\n"
            "· Código postal\n"
            "· Código de municipio\n"
            "· Código de departamento",
            id="CO",
        ),
        pytest.param(
            Site.MLM,
            "Para adjuntarte la factura de tu compra necesito los siguientes datos:\n"
            "\n"
            "· Nombre y apellido\n"
            "· RFC\n"
            "· Domicilio\n"
            "· Código postal",
            id="MX",
        ),
        pytest.param(
            Site.MLU,
            "Para adjuntarte la factura de tu compra necesito los siguientes datos:\n"
            "\n"
            "· Nombre y apellido\n"
            "· Cédula",
            id="UY",
        ),
    ],
)
def test_request_billing_info_per_country(site, expected):
    assert billing_info_text(site) == expected
    assert render_template(Reason.REQUEST_BILLING_INFO, site, None, TODAY) == expected


def test_billing_field_lines_start_with_a_middle_dot_and_a_space():
    lines = billing_info_text(Site.MCO).split("\n")

    assert lines[1] == ""
    assert all(line.startswith("\u00b7 ") for line in lines[2:])


@pytest.mark.parametrize(
    ("window_date", "day"),
    [
        (TODAY, "hoy"),
        (dt.date(2025, 3, 16), "mañana"),
        (dt.date(2025, 3, 17), "el 17/03/2025"),
        (dt.date(2025, 4, 1), "el 01/04/2025"),
        (dt.date(2026, 1, 2), "el 02/01/2026"),
    ],
)
@pytest.mark.parametrize("site", [Site.MLA, Site.MLC, Site.MCO, Site.MLU])
def test_delivery_promise_in_spanish(site, window_date, day):
    window = DeliveryWindow(window_date, 9, 18)

    expected = f"Hola, entregaremos tu compra {day} entre las 9 y las 18 hs."
    assert delivery_promise_text(site, window, TODAY) == expected
    assert render_template(Reason.DELIVERY_PROMISE, site, window, TODAY) == expected


@pytest.mark.parametrize(
    ("window_date", "expected"),
    [
        (TODAY, "Olá, entregaremos sua compra hoje entre 14 e 20 h."),
        (dt.date(2025, 3, 16), "Olá, entregaremos sua compra amanhã entre 14 e 20 h."),
        (dt.date(2025, 3, 20), "Olá, entregaremos sua compra em 20/03/2025 entre 14 e 20 h."),
    ],
)
def test_delivery_promise_in_portuguese(window_date, expected):
    window = DeliveryWindow(window_date, 14, 20)

    assert delivery_promise_text(Site.MLB, window, TODAY) == expected
    assert render_template(Reason.DELIVERY_PROMISE, Site.MLB, window, TODAY) == expected


def test_tomorrow_across_a_month_and_year_end():
    window = DeliveryWindow(dt.date(2026, 1, 1), 8, 12)

    assert delivery_promise_text(Site.MLA, window, dt.date(2025, 12, 31)) == (
        "Hola, entregaremos tu compra mañana entre las 8 y las 12 hs."
    )


def test_delivery_promise_without_a_window_has_no_template():
    with pytest.raises(ValueError, match="DELIVERY_PROMISE"):
        render_template(Reason.DELIVERY_PROMISE, Site.MLA, None, TODAY)


@pytest.mark.parametrize("reason", [Reason.SEND_INVOICE_LINK, Reason.OTHER])
def test_free_text_reasons_have_no_template(reason):
    with pytest.raises(ValueError, match=reason.name):
        render_template(reason, Site.MLM, None, TODAY)


def test_site_languages_and_countries():
    assert {site.value: site.language for site in Site} == {
        "MLA": Language.SPANISH,
        "MLB": Language.PORTUGUESE,
        "MLM": Language.SPANISH,
        "MCO": Language.SPANISH,
        "MLC": Language.SPANISH,
        "MLU": Language.SPANISH,
        "MPE": Language.SPANISH,
        "MEC": Language.SPANISH,
    }
    assert {site.value: site.country for site in Site} == {
        "MLA": "AR",
        "MLB": "BR",
        "MLM": "MX",
        "MCO": "CO",
        "MLC": "CL",
        "MLU": "UY",
        "MPE": "PE",
        "MEC": "EC",
    }


@pytest.mark.parametrize(
    ("raw", "expected"), [("mla", Site.MLA), (" MLB ", Site.MLB), ("XXX", None), ("", None)]
)
def test_site_parse(raw, expected):
    assert Site.parse(raw) is expected
