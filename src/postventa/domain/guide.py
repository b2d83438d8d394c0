"""Mercado Libre's action guide as the sending rules see it: what Mercado Libre says a pack's options
still allow (`caps_available`), and the rules it applies that postventa knows of itself.

The guide is the seller's first contact only (research §1.1): these rules apply to a message that
would open the conversation, never to one sent after the buyer wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from postventa.domain.conversation import Direction, PastMessage
from postventa.domain.errors import Refusal, RefusalKind
from postventa.domain.orders import DELIVERED, OrderFacts
from postventa.domain.reasons import Reason
from postventa.domain.sites import Site

# "A partir del 20 de enero de 2025 … Los mensajes con la opción OTHER no estarán disponibles cuando
# el estado del envío sea 'Entregado'" on these sites; MLB and MLA follow on a date not published
# (research §1.1), where Mercado Libre's caps say so.
OTHER_CLOSED_ON_DELIVERY = frozenset({Site.MEC, Site.MPE, Site.MLU, Site.MCO, Site.MLM, Site.MLC})


@dataclass(frozen=True)
class GuideCaps:
    """Mercado Libre's answer for one pack: each option's cap, or that the pack is an excepted case
    (the guide is closed to it and /messages open, research §1.1)."""

    caps: Mapping[str, int]
    excepted: bool = False

    def cap(self, reason: Reason) -> int | None:
        """How many messages this reason's option still allows; None when Mercado Libre did not say."""
        return self.caps.get(reason.name)


def opens_conversation(history: Sequence[PastMessage], *, has_attachment: bool) -> bool:
    """Whether this message would be the seller's first contact, through the action guide: no buyer
    (or assistant) message yet, and no attachment (those only go by /messages)."""
    if has_attachment:
        return False
    return not any(message.direction is Direction.INBOUND for message in history)


def closed_after_delivery(order: OrderFacts, reason: Reason) -> Refusal | None:
    """OTHER opens no conversation once the shipment is delivered, on the sites where Mercado Libre
    applies that rule (409: once the buyer writes, the conversation is open to it again)."""
    if reason is Reason.OTHER and order.status == DELIVERED and order.site in OTHER_CLOSED_ON_DELIVERY:
        return Refusal(
            RefusalKind.CONFLICT,
            "reason_closed_after_delivery",
            "The reason OTHER cannot open a conversation once the shipment is delivered on this site; "
            "the buyer must write first.",
        )
    return None


def cap_refusal(caps: GuideCaps | None, reason: Reason) -> Refusal | None:
    """Mercado Libre's cap for this option is 0: it would refuse the message whatever the local rules
    say (research §1.2). None when Mercado Libre allows it, could not be asked, or the pack is an
    excepted case (the message then goes by /messages)."""
    if caps is None or caps.excepted:
        return None
    if caps.cap(reason) == 0:
        return Refusal(
            RefusalKind.CONFLICT,
            "marketplace_cap_exhausted",
            f"Mercado Libre allows no more messages with the reason {reason.name} on this order now "
            "(its cap is 0); wait for the buyer to write.",
        )
    return None
