"""The console's languages (issue 19, item 7): which language a request gets, times in the site's
zone formatted for the language, refusals in the operator's language, and catalogs that translate
every text the templates and the code mark."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from postventa.console.i18n import (
    LOCALE_DIRECTORY,
    accepted_languages,
    local_time,
    request_language,
    translations,
)
from postventa.console.labels import REFUSAL_TEXTS, refusal_text
from postventa.domain.errors import Refusal, RefusalKind

CONSOLE_DIRECTORY = Path(LOCALE_DIRECTORY).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@pytest.mark.parametrize(
    ("cookie", "header", "language"),
    [
        (None, None, "es"),
        (None, "pt-BR,pt;q=0.9,en;q=0.8", "pt"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "fr-FR, en;q=0.5, es;q=0.9", "es"),  # by weight, not by position
        (None, "de, fr;q=0.8", "es"),  # none spoken: the default
        (None, "en;q=0, pt", "pt"),  # q=0 means "not this one"
        (None, "en;q=nonsense, pt;q=0.1", "pt"),
        ("en", "pt-BR", "en"),  # the remembered switch wins
        ("xx", "pt-BR", "pt"),  # a cookie naming no language is ignored
    ],
)
def test_a_requests_language(cookie, header, language):
    assert request_language(cookie, header) == language


def test_an_endless_accept_language_is_read_only_so_far():
    assert len(accepted_languages(",".join(["de"] * 10_000))) == 20


def test_times_are_shown_in_the_sites_zone_for_the_language():
    moment = dt.datetime(2025, 1, 5, 18, 4, tzinfo=dt.UTC)
    assert local_time(moment, "MLA", "es") == "5 ene 2025, 15:04"
    assert local_time(moment, "MLM", "es") == "5 ene 2025, 12:04"
    assert local_time(moment, "MLB", "pt") == "5 de jan. de 2025 15:04"
    assert local_time(moment, "MLA", "en") == "Jan 5, 2025, 3:04\u202fPM"
    assert local_time(moment, None, "en") == "Jan 5, 2025, 6:04\u202fPM"  # no site: UTC
    assert local_time(None, "MLA", "es") == ""


def test_refusals_are_the_domains_words_in_english_and_their_codes_translation_otherwise():
    refusal = Refusal(RefusalKind.CONFLICT, "awaiting_buyer_reply", "The buyer has not replied (detail).")
    unknown = Refusal(RefusalKind.CONFLICT, "something_new", "Something new happened.")
    too_long = Refusal(RefusalKind.INVALID, "message_too_long", "'message' has 400 characters.")

    assert refusal_text(refusal, "en", translations("en")) == "The buyer has not replied (detail)."
    assert refusal_text(refusal, "es", translations("es")).startswith("El comprador no respondió")
    assert refusal_text(refusal, "pt", translations("pt")).startswith("O comprador não respondeu")
    assert refusal_text(unknown, "es", translations("es")) == "Something new happened."
    assert "350" in refusal_text(too_long, "pt", translations("pt"))


def _marked_texts() -> set[str]:
    method_map = [("templates/**.html", "jinja2.ext:babel_extract"), ("*.py", "python")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = extract_from_dir(
        str(CONSOLE_DIRECTORY), method_map, options_map=options, keywords={"_": None, "N_": None}
    )
    return {message for _, _, message, _, _ in found}


@pytest.mark.parametrize("language", ["es", "pt"])
def test_every_marked_text_is_translated_with_its_placeholders(language):
    with (LOCALE_DIRECTORY / language / "LC_MESSAGES" / "console.po").open("rb") as source:
        catalog = read_po(source, locale=language)
    entries = {message.id: message for message in catalog if message.id}
    marked = _marked_texts()

    assert marked - set(entries) == set()  # nothing shown untranslated
    assert set(entries) - marked == set()  # nothing kept that is no longer shown
    for text in marked:
        entry = entries[text]
        assert entry.string, text
        assert not entry.fuzzy, text
        assert set(PLACEHOLDER.findall(entry.string)) == set(PLACEHOLDER.findall(text)), text
    assert set(REFUSAL_TEXTS.values()) <= marked
