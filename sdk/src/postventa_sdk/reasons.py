"""The five reasons to write to a buyer (`messageOptions`), as the server numbers them.

A copy of the server's `postventa.domain.reasons.Reason` values, so the SDK installs on its own; a
test in the server's repository keeps the two equal.
"""

from __future__ import annotations

import enum


class Reason(enum.IntEnum):
    """A reason to write to the buyer; the value is the `messageOptions` number."""

    REQUEST_VARIANTS = 1
    REQUEST_BILLING_INFO = 2
    SEND_INVOICE_LINK = 3
    OTHER = 4
    DELIVERY_PROMISE = 5

    @classmethod
    def parse(cls, value: str | int) -> Reason:
        """The reason for 1..5, "4" or a name in any case ("other"); ValueError otherwise."""
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(value)
        text = str(value).strip()
        if text.isascii() and text.isdigit():
            return cls(int(text))
        try:
            return cls[text.upper()]
        except KeyError:
            names = ", ".join(reason.name for reason in cls)
            raise ValueError(f"unknown reason {value!r}: one of {names} or 1-5") from None
