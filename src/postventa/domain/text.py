"""Free text: normalisation and the 350-character limit (contract §3.3), and the characters refused
in a text or a file name (docs/decisions.md, "Invisible characters")."""

from __future__ import annotations

import functools
import re
import unicodedata

from postventa.domain.errors import PostventaError, invalid

MAX_TEXT_CHARACTERS = 350
_ALLOWED_CONTROLS = frozenset("\n\t")
# Unicode's Bidi_Control property: the marks, embeddings, overrides and isolates that make text show
# in another order than it is written (U+202E before "exe.pdf" shows it as "fdp.exe"). Refused in a message;
# a file name refuses them with every other format character.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Where Unicode's format characters (Cf) and line and paragraph separators (Zl, Zp) lie: the Basic and
# Supplementary Multilingual Planes and the tags of plane 14 (tests/unit check the whole range).
_INVISIBLE_PLANES = (range(0x20000), range(0xE0000, 0xE1000))
_BIDI_CONTROL_PATTERN = re.compile(f"[{re.escape(''.join(sorted(BIDI_CONTROLS)))}]")


def normalize_free_text(raw: str, *, parameter: str = "message") -> str:
    """NFC, Windows line ends folded to "\\n", trimmed; refuses empty, too long or unprintable text.

    The limit counts code points after normalisation, as Mercado Libre counts characters.
    """
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n")).strip()
    if not text:
        raise invalid("message_missing", f"'{parameter}' is required for this reason and must not be blank.")
    refuse_unprintable(text, parameter=parameter, allowed=_ALLOWED_CONTROLS)
    refuse_bidi_controls(text, parameter=parameter)
    if len(text) > MAX_TEXT_CHARACTERS:
        raise invalid(
            "message_too_long",
            f"'{parameter}' has {len(text)} characters; at most {MAX_TEXT_CHARACTERS} are allowed.",
        )
    return text


def refuse_unprintable(text: str, *, parameter: str, allowed: frozenset[str] = frozenset()) -> None:
    """Refuse control characters (but those allowed) and lone surrogates, which no store can keep."""
    found = _unprintable(allowed).search(text)
    if found is not None:
        raise invalid(
            "invalid_characters",
            f"'{parameter}' contains the control character U+{ord(found.group()):04X} "
            f"at position {found.start() + 1}.",
        )


def refuse_bidi_controls(text: str, *, parameter: str) -> None:
    """Refuse the characters that reorder how text is shown (Unicode's Bidi_Control); zero-width
    joiners and variation selectors, which emoji are made of, are kept."""
    found = _BIDI_CONTROL_PATTERN.search(text)
    if found is not None:
        raise _invisible_refusal(found, parameter, "bidirectional control")


def refuse_invisible(text: str, *, parameter: str) -> None:
    """Refuse every format character (Unicode's Cf: bidirectional controls, zero-width characters,
    tags...) and line or paragraph separators: what a file name must not hide or reorder."""
    found = _invisible_pattern().search(text)
    if found is not None:
        kind = "bidirectional control" if found.group() in BIDI_CONTROLS else "invisible formatting"
        raise _invisible_refusal(found, parameter, kind)


def is_invisible(character: str) -> bool:
    """Whether `refuse_invisible` refuses this character (Cf, Zl or Zp)."""
    return unicodedata.category(character) in {"Cf", "Zl", "Zp"}


def _invisible_refusal(found: re.Match[str], parameter: str, kind: str) -> PostventaError:
    character = found.group()
    name = unicodedata.name(character, "unnamed")
    return invalid(
        "invalid_characters",
        f"'{parameter}' contains the {kind} character U+{ord(character):04X} ({name}) "
        f"at position {found.start() + 1}; such characters change how the text is shown.",
    )


@functools.cache
def _invisible_pattern() -> re.Pattern[str]:
    """One character class of Cf, Zl and Zp, built once from this Python's Unicode database."""
    characters = (chr(code_point) for plane in _INVISIBLE_PLANES for code_point in plane)
    return re.compile(f"[{re.escape(''.join(filter(is_invisible, characters)))}]")


@functools.cache
def _unprintable(allowed: frozenset[str]) -> re.Pattern[str]:
    """One character class of Unicode's Cc (C0, DEL, C1) but `allowed`, and Cs (surrogates).

    A regular expression scans the text in C, where `unicodedata.category` would be called in Python
    for every character of every send. tests/unit/test_text.py checks the class against Unicode's."""
    controls = "".join(
        character for character in map(chr, (*range(0x20), *range(0x7F, 0xA0))) if character not in allowed
    )
    return re.compile(f"[{re.escape(controls)}\ud800-\udfff]")
