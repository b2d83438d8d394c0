"""Characters that hide or reorder text (docs/decisions.md, "Invisible characters"): a message refuses
Unicode's bidirectional controls and keeps what emoji are made of; a file name refuses every format
character; a download's name shows any stored one as "_"."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postventa.domain.attachments import build_attachment, download_file_name
from postventa.domain.errors import PostventaError
from postventa.domain.text import BIDI_CONTROLS, normalize_free_text, refuse_invisible

PDF = b"%PDF-1.4 factura"
LIMIT = 1024
RIGHT_TO_LEFT_OVERRIDE = "\u202e"
ZERO_WIDTH_JOINER = "\u200d"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # man ZWJ woman ZWJ girl: one emoji
RED_HEART = "\u2764\ufe0f"  # heart and variation selector 16 (emoji presentation)
FLAG_OF_ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"  # tags (Cf)
# Unicode 14's Bidi_Control property (PropList.txt), which the rule names.
UNICODE_BIDI_CONTROLS = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def message_refusal(raw: str) -> str:
    with pytest.raises(PostventaError) as caught:
        normalize_free_text(raw)
    return caught.value.refusal.code


def name_refusal(name: str) -> PostventaError:
    with pytest.raises(PostventaError) as caught:
        build_attachment(name, "pdf", PDF, max_bytes=LIMIT)
    return caught.value


def test_the_bidi_controls_are_unicodes():
    assert {ord(character) for character in BIDI_CONTROLS} == UNICODE_BIDI_CONTROLS
    assert all(unicodedata.category(character) == "Cf" for character in BIDI_CONTROLS)


@pytest.mark.parametrize("control", sorted(BIDI_CONTROLS))
def test_a_bidi_control_in_a_message_is_refused(control):
    assert message_refusal(f"Tu factura: {control}fdp.exe") == "invalid_characters"


def test_the_refusal_names_the_character_and_where_it_is():
    with pytest.raises(PostventaError) as caught:
        normalize_free_text(f"abc{RIGHT_TO_LEFT_OVERRIDE}fdp")

    message = caught.value.refusal.message
    assert "'message'" in message
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in message
    assert "position 4" in message


@pytest.mark.parametrize("emoji", [FAMILY, RED_HEART, FLAG_OF_ENGLAND, "\U0001f44d\U0001f3fd"])
def test_emoji_sequences_are_kept_in_a_message(emoji):
    text = f"¡Gracias por tu compra! {emoji}"

    assert normalize_free_text(text) == text


def test_other_format_characters_are_kept_in_a_message():
    text = "super\u00adcalifragilístico\u2060ya, zero\u200bwidth"  # soft hyphen, word joiner, ZWSP

    assert normalize_free_text(text) == text


@pytest.mark.parametrize(
    "name",
    [
        f"{RIGHT_TO_LEFT_OVERRIDE}exe",
        f"factura{ZERO_WIDTH_JOINER}",
        "fac\u200btura",  # zero width space
        "fac\u00adtura",  # soft hyphen
        "\ufefffactura",  # byte order mark
        "fac\u2028tura",  # line separator
        "fac\u2029tura",  # paragraph separator
        "factura\U000e0041",  # a tag
        "factura\u2066",  # left-to-right isolate
    ],
)
def test_a_format_character_in_a_file_name_is_refused(name):
    refused = name_refusal(name)

    assert refused.refusal.code == "invalid_characters"
    assert "'documentName'" in refused.refusal.message


def test_a_file_name_with_an_override_says_it_is_a_bidi_control():
    assert (
        "bidirectional control character U+202E"
        in name_refusal(f"{RIGHT_TO_LEFT_OVERRIDE}exe").refusal.message
    )


def test_names_in_any_script_are_accepted():
    for name in ["factura", "Fatura nº 12 — março", "請求書", "חשבונית", "فاتورة", "счёт"]:
        assert build_attachment(name, "pdf", PDF, max_bytes=LIMIT).name == name


def test_every_code_point_is_refused_in_a_name_exactly_when_unicode_calls_it_format_or_a_separator():
    refused = []
    for code_point in range(0x110000):
        try:
            refuse_invisible(chr(code_point), parameter="documentName")
        except PostventaError:
            refused.append(code_point)
    expected = [
        code_point
        for code_point in range(0x110000)
        if unicodedata.category(chr(code_point)) in {"Cf", "Zl", "Zp"}
    ]
    assert refused == expected


def test_a_stored_name_with_an_override_downloads_as_it_reads():
    assert download_file_name(f"{RIGHT_TO_LEFT_OVERRIDE}exe", "pdf") == "_exe.pdf"
    assert download_file_name("Fatura março", "pdf") == "Fatura março.pdf"


_ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
_NAMES = st.one_of(
    st.text(_ANY_CHARACTER, max_size=40),
    st.lists(
        st.sampled_from(["a", "ñ", " ", RIGHT_TO_LEFT_OVERRIDE, ZERO_WIDTH_JOINER, "\u2028"]), max_size=20
    ).map("".join),
)


@settings(max_examples=300, database=None, deadline=None)
@given(_NAMES)
def test_an_accepted_name_holds_no_invisible_character_and_downloads_unchanged(name):
    try:
        attachment = build_attachment(name, "pdf", PDF, max_bytes=LIMIT)
    except PostventaError:
        return
    assert not any(
        unicodedata.category(character) in {"Cc", "Cs", "Cf", "Zl", "Zp"} for character in attachment.name
    )
    assert download_file_name(attachment.name, attachment.extension) == attachment.file_name


@settings(max_examples=300, database=None, deadline=None)
@given(st.text(_ANY_CHARACTER, max_size=40))
def test_a_download_name_never_holds_an_invisible_character(name):
    shown = download_file_name(name, "pdf")

    assert len(shown) == len(name) + 4
    assert not any(unicodedata.category(character) in {"Cc", "Cs", "Cf", "Zl", "Zp"} for character in shown)
