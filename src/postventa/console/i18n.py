"""The console's languages (issue 19, item 7): Spanish (the default), Portuguese and English.

A request's language is the one its `pv_lang` cookie remembers (the switch in the page's header),
else the first of its `Accept-Language` the console speaks, else Spanish. The texts are written in
English in the templates and the code, and translated by gettext catalogs kept as `.po` files in
`locale/` and compiled with Babel when this module is imported (no build step; docs/decisions.md).
Times are shown in the time zone of the order's site, formatted for the language by Babel.
"""

from __future__ import annotations

import datetime as dt
import io
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_skeleton, format_time, get_datetime_format
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from postventa.domain.sites import Site

ENGLISH, SPANISH, PORTUGUESE = "en", "es", "pt"
LANGUAGES = (SPANISH, PORTUGUESE, ENGLISH)
DEFAULT_LANGUAGE = SPANISH
LANGUAGE_COOKIE = "pv_lang"
LANGUAGE_COOKIE_MAX_AGE_SECONDS = 365 * 24 * 3600
LANGUAGE_NAMES = {SPANISH: "Español", PORTUGUESE: "Português", ENGLISH: "English"}
LOCALE_DIRECTORY = Path(__file__).parent / "locale"
CATALOG_DOMAIN = "console"
MAX_ACCEPT_LANGUAGE_ENTRIES = 20  # a header is read this far; a browser sends a handful


def N_(message: str) -> str:
    """Mark a text for the catalogs without translating it here (it is translated when shown)."""
    return message


def request_language(cookie: str | None, accept_language: str | None) -> str:
    """The language of a request: the remembered choice, else the browser's, else Spanish."""
    if cookie in LANGUAGES:
        return cookie
    for tag in accepted_languages(accept_language or ""):
        primary = tag.split("-", 1)[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


def accepted_languages(header: str) -> list[str]:
    """The language tags of an `Accept-Language` header, most wanted first (RFC 9110 §12.5.4);
    tags with q=0 are left out."""
    weighted: list[tuple[float, int, str]] = []
    for position, entry in enumerate(header.split(",")[:MAX_ACCEPT_LANGUAGE_ENTRIES]):
        tag, _, parameters = entry.strip().partition(";")
        weight = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value.strip())
            except ValueError:
                weight = 0.0
        if tag and weight > 0:
            weighted.append((-weight, position, tag.strip().lower()))
    return [tag for _, _, tag in sorted(weighted)]


@cache
def translations(language: str) -> NullTranslations:
    """The language's catalog, compiled from its `.po` file (English is the texts themselves)."""
    if language == ENGLISH:
        return NullTranslations()
    path = LOCALE_DIRECTORY / language / "LC_MESSAGES" / f"{CATALOG_DOMAIN}.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=language, domain=CATALOG_DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=CATALOG_DOMAIN)


def site_zone(site_id: str | None) -> ZoneInfo | dt.timezone:
    """The time zone of an order's site (UTC when the site is unknown)."""
    site = Site.parse(site_id or "")
    return ZoneInfo(site.time_zone) if site is not None else dt.UTC


def local_time(moment: dt.datetime | None, site_id: str | None, language: str) -> str:
    """A time as the account's site reads it, formatted for the language ("5 ene 2025, 15:04")."""
    if moment is None:
        return ""
    zone = site_zone(site_id)
    locale = Locale.parse(language)
    day = format_skeleton("yMMMd", moment, tzinfo=zone, locale=locale)
    hour = format_time(moment, "short", tzinfo=zone, locale=locale)
    return str(get_datetime_format("medium", locale=locale)).replace("'", "").format(hour, day)
