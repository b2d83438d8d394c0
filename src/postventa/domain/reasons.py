"""The five reasons (`messageOptions`) and what each allows (contract §3.2)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from postventa.domain.orders import LogisticType
from postventa.domain.sites import Site


class Reason(enum.IntEnum):
    """A reason to write to the buyer; the value is the `messageOptions` number."""

    REQUEST_VARIANTS = 1
    REQUEST_BILLING_INFO = 2
    SEND_INVOICE_LINK = 3
    OTHER = 4
    DELIVERY_PROMISE = 5

    @classmethod
    def parse(cls, value: object) -> Reason | None:
        """The reason for 1..5, "4", or a name in any case ("other"); None otherwise."""
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return cls._value2member_map_.get(value)  # type: ignore[return-value]
        if isinstance(value, str):
            text = value.strip()
            if text.isascii() and text.isdigit() and len(text) <= 2:
                return cls._value2member_map_.get(int(text))  # type: ignore[return-value]
            return None if text.isdigit() else cls.__members__.get(text.upper())
        return None

    @property
    def rule(self) -> ReasonRule:
        """What this reason allows."""
        return REASON_RULES[self]


class TextMode(enum.Enum):
    """Whether the seller writes the text or Mercado Libre sends a fixed template."""

    FREE_TEXT = "free_text"
    TEMPLATE = "template"


@dataclass(frozen=True)
class ReasonRule:
    """One row of the reasons table."""

    text_mode: TextMode
    sites: frozenset[Site]
    logistic_types: frozenset[LogisticType] | None  # None: any logistic type
    needs_delivery_window: bool = False


_ALL_SITES = frozenset(Site)

REASON_RULES: dict[Reason, ReasonRule] = {
    Reason.REQUEST_VARIANTS: ReasonRule(
        TextMode.TEMPLATE,
        frozenset({Site.MLA, Site.MLC, Site.MCO, Site.MLM, Site.MLU, Site.MLB}),
        frozenset({LogisticType.CROSS_DOCKING, LogisticType.ME2}),
    ),
    Reason.REQUEST_BILLING_INFO: ReasonRule(
        TextMode.TEMPLATE,
        frozenset({Site.MLA, Site.MCO, Site.MLM, Site.MLU}),
        None,
    ),
    Reason.SEND_INVOICE_LINK: ReasonRule(TextMode.FREE_TEXT, frozenset({Site.MLM}), None),
    Reason.OTHER: ReasonRule(TextMode.FREE_TEXT, _ALL_SITES, None),
    Reason.DELIVERY_PROMISE: ReasonRule(
        TextMode.TEMPLATE,
        frozenset({Site.MLA, Site.MLB, Site.MLC, Site.MCO, Site.MLU}),
        frozenset({LogisticType.FLEX, LogisticType.FLEX_TURBO}),
        needs_delivery_window=True,
    ),
}
