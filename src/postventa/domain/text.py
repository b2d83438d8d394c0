"""Free text: normalisation and the 350-character limit (contract §3.3)."""

from __future__ import annotations

import unicodedata

from postventa.domain.errors import invalid

MAX_TEXT_CHARACTERS = 350
_ALLOWED_CONTROLS = frozenset("\n\t")


def normalize_free_text(raw: str, *, parameter: str = "message") -> str:
    """NFC, Windows line ends folded to "\\n", trimmed; refuses empty, too long or unprintable text.

    The limit counts code points after normalisation, as Mercado Libre counts characters.
    """
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n")).strip()
    if not text:
        raise invalid("message_missing", f"'{parameter}' is required for this reason and must not be blank.")
    refuse_unprintable(text, parameter=parameter, allowed=_ALLOWED_CONTROLS)
    if len(text) > MAX_TEXT_CHARACTERS:
        raise invalid(
            "message_too_long",
            f"'{parameter}' has {len(text)} characters; at most {MAX_TEXT_CHARACTERS} are allowed.",
        )
    return text


def refuse_unprintable(text: str, *, parameter: str, allowed: frozenset[str] = frozenset()) -> None:
    """Refuse control characters (but those allowed) and lone surrogates, which no store can keep."""
    for position, character in enumerate(text):
        category = unicodedata.category(character)
        if (category == "Cc" and character not in allowed) or category == "Cs":
            raise invalid(
                "invalid_characters",
                f"'{parameter}' contains the control character U+{ord(character):04X} "
                f"at position {position + 1}.",
            )
