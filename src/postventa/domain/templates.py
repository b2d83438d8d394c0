"""Fixed texts of the template reasons, per country (the original page's tables, contract §3.2)."""

from __future__ import annotations

import datetime as dt
import functools

from postventa.domain.orders import DeliveryWindow
from postventa.domain.reasons import Reason
from postventa.domain.sites import Language, Site

_VARIANTS_ES = (
    "Hola, por favor confirma las características que quieres del producto que compraste, "
    "así podemos concretar el envío."
)
_VARIANTS_PT = (
    "Olá! Por favor, confirme as características que quer para o produto que você comprou, "
    "assim, podemos fazer o envio."
)

_BILLING_INTRO = "Para adjuntarte la factura de tu compra necesito los siguientes datos:"
_BILLING_FIELDS: dict[Site, tuple[str, ...]] = {
    Site.MLA: ("Nombre y apellido", "DNI", "Domicilio", "Código postal"),
    Site.MCO: (
        "Nombre y apellido",
        "Tipo y número de documento",
        "Email",
        "Domicilio",
        "Código postal",
        "Código de municipio",
        "Código de departamento",
    ),
    Site.MLM: ("Nombre y apellido", "RFC", "Domicilio", "Código postal"),
    Site.MLU: ("Nombre y apellido", "Cédula"),
}

_PROMISE = {
    Language.SPANISH: "Hola, entregaremos tu compra {day} entre las {start} y las {end} hs.",
    Language.PORTUGUESE: "Olá, entregaremos sua compra {day} entre {start} e {end} h.",
}
_TODAY = {Language.SPANISH: "hoy", Language.PORTUGUESE: "hoje"}
_TOMORROW = {Language.SPANISH: "mañana", Language.PORTUGUESE: "amanhã"}
_ON_DATE = {Language.SPANISH: "el {date}", Language.PORTUGUESE: "em {date}"}


def request_variants_text(site: Site) -> str:
    """REQUEST_VARIANTS in the site's language."""
    return _VARIANTS_PT if site.language is Language.PORTUGUESE else _VARIANTS_ES


@functools.cache  # one text per site
def billing_info_text(site: Site) -> str:
    """REQUEST_BILLING_INFO with the fields the site's tax rules ask for, one "· " line each."""
    fields = "\n".join(f"· {field}" for field in _BILLING_FIELDS[site])
    return f"{_BILLING_INTRO}\n\n{fields}"


def delivery_promise_text(site: Site, window: DeliveryWindow, today: dt.date) -> str:
    """DELIVERY_PROMISE for a window, saying "today", "tomorrow" or the date as the buyer reads it."""
    language = site.language
    if window.date == today:
        day = _TODAY[language]
    elif window.date == today + dt.timedelta(days=1):
        day = _TOMORROW[language]
    else:
        day = _ON_DATE[language].format(date=window.date.strftime("%d/%m/%Y"))
    return _PROMISE[language].format(day=day, start=window.from_hour, end=window.to_hour)


def render_template(reason: Reason, site: Site, window: DeliveryWindow | None, today: dt.date | None) -> str:
    """The text a template reason sends on a site; the caller has checked the reason applies.
    `today` is the buyer's date, which only the delivery promise needs."""
    if reason is Reason.REQUEST_VARIANTS:
        return request_variants_text(site)
    if reason is Reason.REQUEST_BILLING_INFO:
        return billing_info_text(site)
    if reason is Reason.DELIVERY_PROMISE and window is not None and today is not None:
        return delivery_promise_text(site, window, today)
    raise ValueError(f"{reason.name} has no template for {site.value}")
