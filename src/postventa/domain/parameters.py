"""Parameters of the send endpoint from any source, by case-insensitive name (contract §3.1).

The HTTP edge hands over (name, value) pairs from the query string, a JSON object or a form; this
module merges them, refuses a name given twice with different values, and reads typed values.
Unknown names are ignored, as an integrator may send extra fields. An empty value counts as absent.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

from postventa.domain.errors import invalid

API_KEY = "API_KEY"
ACCOUNT_ID = "accountId"
ORDER_ID = "orderId"
MESSAGE = "message"
MESSAGE_OPTIONS = "messageOptions"
FILE = "file"
FILE_BASE64 = "fileBase64"
DOCUMENT_NAME = "documentName"
DOCUMENT_EXTENSION = "documentExtension"

SEND_PARAMETERS = (
    API_KEY,
    ACCOUNT_ID,
    ORDER_ID,
    MESSAGE,
    MESSAGE_OPTIONS,
    FILE,
    FILE_BASE64,
    DOCUMENT_NAME,
    DOCUMENT_EXTENSION,
)
READ_PARAMETERS = (API_KEY, ACCOUNT_ID)

MAX_ID = 2**63 - 1


@dataclass
class Parameters:
    """The merged parameters: canonical name → value (a str, a number, a bool or an uploaded file)."""

    values: dict[str, object] = field(default_factory=dict)

    @classmethod
    def collect(
        cls, sources: Iterable[Iterable[tuple[str, object]]], known: Iterable[str] = SEND_PARAMETERS
    ) -> Parameters:
        """Merge the sources; the same name twice with different values is refused."""
        canonical = _canonical_names(tuple(known))
        merged = cls()
        for source in sources:
            for raw_name, value in source:
                name = canonical.get(raw_name.lower())
                if name is None or _is_absent(value):
                    continue
                if name in merged.values and not _same(merged.values[name], value):
                    raise invalid(
                        "conflicting_parameter",
                        f"'{name}' is given more than once with different values.",
                    )
                merged.values.setdefault(name, value)
        return merged

    def has(self, name: str) -> bool:
        """Whether the parameter was given (and not empty)."""
        return name in self.values

    def raw(self, name: str) -> object | None:
        """The value as received."""
        return self.values.get(name)

    def text(self, name: str) -> str | None:
        """A text parameter; numbers are taken as their decimal text."""
        value = self.values.get(name)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise invalid("invalid_parameter_type", f"'{name}' must be a text value.")

    def identifier(self, name: str, *, code: str) -> int | None:
        """A positive integer id (`accountId`, `orderId`); None when absent, refused when malformed."""
        value = self.values.get(name)
        if value is None:
            return None
        number = parse_identifier(value)
        if number is None:
            raise invalid(code, f"'{name}' must be a positive integer.")
        return number


@functools.cache
def _canonical_names(known: tuple[str, ...]) -> dict[str, str]:
    """Lower-case name → the parameter's name (the endpoints pass a handful of constant tuples)."""
    return {name.lower(): name for name in known}


def parse_identifier(value: object) -> int | None:
    """A positive 64-bit integer from 42 or "42"; None for anything else (4.0, "4a", true, -1)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _is_short_ascii_number(value.strip()):
        number = int(value.strip())
    else:
        return None
    return number if 0 < number <= MAX_ID else None


def _is_short_ascii_number(text: str) -> bool:
    # Longer digit strings cannot be 64-bit ids, and int() refuses very long ones outright.
    return text.isascii() and text.isdigit() and len(text) <= len(str(MAX_ID))


def _is_absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def _same(first: object, second: object) -> bool:
    return _comparable(first) == _comparable(second)


def _comparable(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value
    return id(value)  # files and nested JSON: never equal to another value
