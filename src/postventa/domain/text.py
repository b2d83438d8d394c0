"""Free text: normalisation and the 350-character limit (contract §3.3)."""

from __future__ import annotations

import functools
import re
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
    found = _unprintable(allowed).search(text)
    if found is not None:
        raise invalid(
            "invalid_characters",
            f"'{parameter}' contains the control character U+{ord(found.group()):04X} "
            f"at position {found.start() + 1}.",
        )


@functools.cache
def _unprintable(allowed: frozenset[str]) -> re.Pattern[str]:
    """One character class of Unicode's Cc (C0, DEL, C1) but `allowed`, and Cs (surrogates).

    A regular expression scans the text in C; `unicodedata.category` per character was 4% of a
    send's CPU (docs/performance.md). tests/unit/test_text.py checks the class against Unicode's."""
    controls = "".join(
        character for character in map(chr, (*range(0x20), *range(0x7F, 0xA0))) if character not in allowed
    )
    return re.compile(f"[{re.escape(controls)}\ud800-\udfff]")
