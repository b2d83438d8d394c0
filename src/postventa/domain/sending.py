"""The sending decision: order preconditions (check 8) then conversation state (check 9).

The send endpoint and the options endpoint both call `send_refusal`, so what the options predict
is what a send answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from postventa.domain.conversation import PastMessage, conversation_refusal
from postventa.domain.errors import Refusal, RefusalKind
from postventa.domain.guide import GuideCaps, cap_refusal, closed_after_delivery, opens_conversation
from postventa.domain.orders import DELIVERED, LogisticType, OrderFacts, StatusType, status_type_of
from postventa.domain.reasons import Reason, TextMode
from postventa.domain.sites import Site
from postventa.domain.templates import render_template


def precondition_refusal(order: OrderFacts, reason: Reason, now: dt.datetime) -> Refusal | None:
    """Why this order cannot take this reason at all (412), in the contract's order, or None."""
    rule = reason.rule
    if not order.is_mercadolibre:
        return _precondition(
            "not_mercadolibre_order",
            f"The order is from {order.marketplace}; only Mercado Libre orders can be messaged.",
        )
    if order.site is None or order.site not in rule.sites:
        where = order.site.country_name if order.site else "an unknown country"
        return _precondition(
            "reason_not_available_in_country",
            f"The reason {reason.name} is not available in {where}.",
        )
    if rule.logistic_types is not None and order.logistic_type not in rule.logistic_types:
        allowed = ", ".join(sorted(kind.label for kind in rule.logistic_types))
        current = order.logistic_type.label if order.logistic_type else "unknown"
        return _precondition(
            "reason_not_allowed_for_logistic_type",
            f"The reason {reason.name} needs logistic type {allowed}; the order's is {current}.",
        )
    if status_type_of(order.status) is StatusType.CANCELLED:
        return _precondition("order_cancelled", "The order is cancelled; its conversation is closed.")
    if order.logistic_type is LogisticType.FULFILLMENT and order.status != DELIVERED:
        return _precondition(
            "fulfillment_not_delivered",
            "The order is shipped by fulfillment and not delivered yet; messaging opens on delivery.",
        )
    if order.payment_pending:
        return _precondition(
            "order_payment_pending",
            "The order's payment is pending; Mercado Libre opens its conversation once it is paid.",
        )
    if rule.needs_delivery_window:
        return _delivery_window_refusal(order, order.site, now)
    return None


def send_refusal(
    order: OrderFacts,
    history: Sequence[PastMessage],
    reason: Reason,
    *,
    has_attachment: bool,
    now: dt.datetime,
    caps: GuideCaps | None = None,
) -> Refusal | None:
    """Check 8 then check 9: the first refusal, or None when the message may be sent now.

    A message that would open the conversation also meets the action guide's rules (409, after the
    conversation rules, which explain a closed option better when the seller wrote last): OTHER
    closed once delivered, and Mercado Libre's own caps (`caps`: None when it could not be asked,
    and then the local rules alone decide).
    """
    refusal = precondition_refusal(order, reason, now) or conversation_refusal(
        history, reason, has_attachment=has_attachment
    )
    if refusal is not None or not opens_conversation(history, has_attachment=has_attachment):
        return refusal
    return closed_after_delivery(order, reason) or cap_refusal(caps, reason)


def site_today(site: Site, now: dt.datetime) -> dt.date:
    """The date on the buyer's calendar."""
    return now.astimezone(ZoneInfo(site.time_zone)).date()


def text_to_send(order: OrderFacts, reason: Reason, free_text: str | None, now: dt.datetime) -> str:
    """The text that goes to the buyer: the seller's (free-text reasons) or the rendered template."""
    if reason.rule.text_mode is TextMode.FREE_TEXT:
        if free_text is None:
            raise ValueError("a free-text reason needs its text")
        return free_text
    if order.site is None:
        raise ValueError("a template needs the order's site")
    # Only the delivery promise says which day it is on the buyer's calendar.
    today = site_today(order.site, now) if reason is Reason.DELIVERY_PROMISE else None
    return render_template(reason, order.site, order.delivery_window, today)


def _delivery_window_refusal(order: OrderFacts, site: Site, now: dt.datetime) -> Refusal | None:
    window = order.delivery_window
    if window is None:
        return _precondition(
            "delivery_window_missing", "The order has no delivery window to promise to the buyer."
        )
    end = dt.datetime.combine(window.date, dt.time(), tzinfo=ZoneInfo(site.time_zone)) + dt.timedelta(
        hours=window.to_hour
    )
    if end <= now:
        return _precondition(
            "delivery_window_past",
            f"The order's delivery window ({window.date.isoformat()}, until {window.to_hour} h) is past.",
        )
    return None


def _precondition(code: str, message: str) -> Refusal:
    return Refusal(RefusalKind.PRECONDITION, code, message)
