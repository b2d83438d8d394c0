"""Mercado Libre's fixed template texts per site (research §1.4), which the seller cannot change.

The POST of a template option answers with this text, rendered for the pack's site.
"""

from __future__ import annotations

from postventa.emulator.sites import is_portuguese

REQUEST_VARIANTS_ES = (
    "Hola, por favor confirma las características que quieres del producto que compraste, "
    "así podemos concretar el envío."
)
REQUEST_VARIANTS_PT = (
    "Olá! Por favor, confirme as características que quer para o produto que você comprou, "
    "assim, podemos fazer o envio."
)

BILLING_INTRO = "Para adjuntarte la factura de tu compra necesito los siguientes datos:"
# No REQUEST_BILLING_INFO text is published for MLB or MLC.
BILLING_FIELDS: dict[str, tuple[str, ...]] = {
    "MLA": ("Nombre y apellido", "DNI", "Domicilio", "Código postal"),
    "MLM": ("Nombre y apellido", "RFC", "Domicilio", "Código postal"),
    "MCO": (
        "Nombre y apellido",
        "Tipo y número de documento",
        "Email",
        "Domicilio",
        "Código postal",
        "Código de municipio",
        "Código de departamento",
    ),
    "MLU": ("Nombre y apellido", "Cédula"),
    "MPE": ("Nombre y apellido", "DNI", "Domicilio", "Código postal"),
    "MEC": ("Nombre y apellido", "Tipo y número de documento", "Domicilio", "Código postal"),
}

_PROMISE_ES = "Hola,Entregaremos tu compra %s entre las %d y las %d hs."
_PROMISE_PT = "Olá,Entregaremos sua compra %s entre %d e %d h."
# `templates[].texts` of DELIVERY_PROMISE, verbatim: only these five sites have a text.
DELIVERY_PROMISE_TEXTS: dict[str, str] = {
    "mla": _PROMISE_ES,
    "mlb": _PROMISE_PT,
    "mlc": _PROMISE_ES,
    "mco": _PROMISE_ES,
    "mlu": _PROMISE_ES,
}
# "hoy / mañana / el próximo día hábil" (research §1.4), by days from today.
_DAY_WORDS_ES = ("hoy", "mañana", "el próximo día hábil")
_DAY_WORDS_PT = ("hoje", "amanhã", "no próximo dia útil")


def request_variants_text(site_id: str) -> str:
    """REQUEST_VARIANTS in the site's language."""
    return REQUEST_VARIANTS_PT if is_portuguese(site_id) else REQUEST_VARIANTS_ES


def billing_info_text(site_id: str) -> str | None:
    """REQUEST_BILLING_INFO with the fields the site asks for, or None where it does not exist."""
    fields = BILLING_FIELDS.get(site_id)
    if fields is None:
        return None
    return BILLING_INTRO + "\n\n" + "\n".join(f"· {name}" for name in fields)


def has_delivery_promise_text(site_id: str) -> bool:
    """Whether DELIVERY_PROMISE has a published text on this site."""
    return site_id.lower() in DELIVERY_PROMISE_TEXTS


def delivery_promise_text(site_id: str, days_from_today: int, init_hour: int, limit_hour: int) -> str:
    """DELIVERY_PROMISE rendered: the day word, then the hour range."""
    words = _DAY_WORDS_PT if is_portuguese(site_id) else _DAY_WORDS_ES
    day = words[min(max(days_from_today, 0), 2)]
    return DELIVERY_PROMISE_TEXTS[site_id.lower()] % (day, init_hour, limit_hour)
