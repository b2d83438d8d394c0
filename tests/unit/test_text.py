"""Free text (contract §3.3): NFC, trimmed, at most 350 code points, no control characters."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postventa.domain.errors import PostventaError, RefusalKind
from postventa.domain.text import BIDI_CONTROLS, MAX_TEXT_CHARACTERS, normalize_free_text, refuse_unprintable

DECOMPOSED_E_ACUTE = "e\u0301"
COMPOSED_E_ACUTE = "\u00e9"


def refusal_code(raw: str) -> str:
    with pytest.raises(PostventaError) as caught:
        normalize_free_text(raw)
    assert caught.value.refusal.kind is RefusalKind.INVALID
    return caught.value.refusal.code


def test_the_limit_is_350():
    assert MAX_TEXT_CHARACTERS == 350


def test_text_is_normalised_to_nfc():
    assert normalize_free_text(f"Caf{DECOMPOSED_E_ACUTE}") == f"Caf{COMPOSED_E_ACUTE}"


def test_text_is_trimmed():
    assert normalize_free_text("  \n\tHola, tu pedido sale hoy.\t \n ") == "Hola, tu pedido sale hoy."


def test_inner_whitespace_is_kept():
    assert normalize_free_text("Hola\n\n\tchau  ahí") == "Hola\n\n\tchau  ahí"


def test_windows_line_ends_become_newlines():
    assert normalize_free_text("Hola\r\nchau\r\n\r\nsaludos") == "Hola\nchau\n\nsaludos"


def test_exactly_350_characters_are_accepted():
    text = "a" * 350

    assert normalize_free_text(text) == text


def test_351_characters_are_refused():
    assert refusal_code("a" * 351) == "message_too_long"


def test_the_limit_counts_after_trimming():
    assert normalize_free_text("   " + "a" * 350 + "\n\n") == "a" * 350


def test_a_decomposed_accent_counts_as_one_character():
    text = DECOMPOSED_E_ACUTE * 350  # 700 code points before NFC, 350 after

    assert normalize_free_text(text) == COMPOSED_E_ACUTE * 350
    assert refusal_code(DECOMPOSED_E_ACUTE * 351) == "message_too_long"


def test_the_limit_counts_code_points_after_normalisation_even_when_nfc_lengthens():
    qa = "\u0958"  # DEVANAGARI LETTER QA: NFC turns it into two code points (U+0915 U+093C)

    assert normalize_free_text(qa * 175) == "\u0915\u093c" * 175
    assert refusal_code(qa * 176) == "message_too_long"


def test_crlf_counts_as_one_character():
    text = "a\r\n" * 174 + "ab"  # 524 code points as sent, 350 once folded

    assert len(normalize_free_text(text)) == 350


def test_emoji_are_counted_as_code_points():
    assert normalize_free_text("😀" * 350) == "😀" * 350
    assert refusal_code("😀" * 351) == "message_too_long"
    # A skin-tone emoji is two code points: 175 of them fill the limit, 176 go over.
    assert len(normalize_free_text("👍🏽" * 175)) == 350
    assert refusal_code("👍🏽" * 176) == "message_too_long"


def test_too_long_message_names_the_parameter_and_counts():
    with pytest.raises(PostventaError) as caught:
        normalize_free_text("a" * 400, parameter="message")

    assert "'message'" in caught.value.refusal.message
    assert "400" in caught.value.refusal.message
    assert "350" in caught.value.refusal.message


@pytest.mark.parametrize("raw", ["", " ", "   \n\t  ", "\r\n", "\u3000"])
def test_blank_text_is_missing(raw):
    assert refusal_code(raw) == "message_missing"


@pytest.mark.parametrize(
    "control",
    ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\r", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f"],
)
def test_control_characters_inside_the_text_are_refused(control):
    assert refusal_code(f"Hola{control}chau") == "invalid_characters"


def test_invalid_character_message_names_the_code_point_and_position():
    with pytest.raises(PostventaError) as caught:
        normalize_free_text("ab\x07c")

    assert "U+0007" in caught.value.refusal.message
    assert "position 3" in caught.value.refusal.message


@pytest.mark.parametrize("allowed", ["\n", "\t"])
def test_newline_and_tab_are_allowed(allowed):
    assert normalize_free_text(f"Hola{allowed}chau") == f"Hola{allowed}chau"


@pytest.mark.parametrize("surrogate", [chr(0xD800), chr(0xDBFF), chr(0xDC00), chr(0xDFFF)])
def test_lone_surrogates_are_refused(surrogate):
    assert refusal_code(f"Hola {surrogate} chau") == "invalid_characters"


def test_control_character_is_refused_even_when_too_long():
    assert refusal_code("a" * 400 + "\x00" + "b") == "invalid_characters"


def test_non_latin_text_is_accepted():
    text = "Olá! 日本語 • Привет — שלום ✓"

    assert normalize_free_text(text) == text


# Every character including surrogates and controls; long texts to reach the limit.
_ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
_TEXTS = st.one_of(
    st.text(_ANY_CHARACTER),
    st.text(_ANY_CHARACTER, min_size=330, max_size=380),
    st.lists(
        st.sampled_from(
            ["a", " ", "\n", "\r\n", "\r", "\t", DECOMPOSED_E_ACUTE, "😀", "\u0958", "\u202e", "\u200d"]
        ),
        max_size=400,
    ).map("".join),
)


@settings(max_examples=300, database=None, deadline=None)
@given(_TEXTS)
def test_any_text_is_refused_or_normalised_within_the_limit(raw):
    try:
        text = normalize_free_text(raw)
    except PostventaError as error:
        code = error.refusal.code
    else:
        code = None
    assert code in {None, "message_missing", "message_too_long", "invalid_characters"}
    if code is not None:
        return
    assert 0 < len(text) <= 350
    assert unicodedata.is_normalized("NFC", text)
    assert text == text.strip()
    assert all(ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cs"} for ch in text)
    assert not BIDI_CONTROLS & set(text)


@settings(max_examples=300, database=None, deadline=None)
@given(_TEXTS)
def test_text_is_accepted_exactly_when_its_normal_form_is_valid(raw):
    expected = unicodedata.normalize("NFC", raw.replace("\r\n", "\n")).strip()
    valid = (
        0 < len(expected) <= 350
        and all(ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cs"} for ch in expected)
        and not BIDI_CONTROLS & set(expected)
    )

    if valid:
        assert normalize_free_text(raw) == expected
    else:
        with pytest.raises(PostventaError):
            normalize_free_text(raw)


@pytest.mark.parametrize("allowed", [frozenset(), frozenset("\n\t"), frozenset("\n\t\r")])
def test_every_code_point_is_refused_exactly_when_unicode_calls_it_a_control_or_a_surrogate(allowed):
    # refuse_unprintable scans with one character class; this is the definition it stands for.
    refused = []
    for code_point in range(0x110000):
        character = chr(code_point)
        try:
            refuse_unprintable(character, parameter="message", allowed=allowed)
        except PostventaError:
            refused.append(character)
    expected = [
        chr(code_point)
        for code_point in range(0x110000)
        if unicodedata.category(chr(code_point)) in {"Cc", "Cs"} and chr(code_point) not in allowed
    ]
    assert refused == expected


def test_the_first_refused_character_is_the_one_named():
    with pytest.raises(PostventaError) as caught:
        refuse_unprintable("ok\tthen\x01and\x02", parameter="Text", allowed=frozenset("\t"))

    assert "'Text' contains the control character U+0001 at position 8" in caught.value.refusal.message
