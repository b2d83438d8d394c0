"""Moderation of seller texts: personal data and short links (research §2.4), judged at once or
late (research §2.10), and the verdicts a test gives after the fact.

Mercado Libre stores a rejected message with status `moderated`; the reason says why. Moderation's
own status is `clean`, `rejected` or `pending` (research §2.4).
"""

from __future__ import annotations

import datetime as dt
import re

from postventa.emulator.models import Message

PERSONAL_DATA = "PERSONAL_DATA"
LINK_SHORT_URL = "LINK_SHORT_URL"
# The reasons research §2.4 lists, as `POST /_emulator/messages/{id}/moderate` accepts them.
MODERATION_REASONS = frozenset(
    {
        "OUT_OF_PLACE_LANGUAGE",
        "SOCIAL_NETWORK_LINK",
        LINK_SHORT_URL,
        "AUTOMATIC_MESSAGE",
        PERSONAL_DATA,
        "LINK_MERCADOPAGO",
        "ML_LINKS_PAYPAL",
        "EVASION_CLAIM_SELLER",
    }
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Eight or more digits, possibly split by spaces, dots, dashes or parentheses: a phone number.
_PHONE = re.compile(r"\d(?:[\s.()\-]*\d){7,}")
# Dates are not phone numbers: 2026-06-10, 10.06.2026, 10-06-26.
_DATE = re.compile(r"\b(?:\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})\b")
# Bitly, Bl.ink, Polr, Rebrandly, T2M, TinyURL, URL Shortener by Zapier, Yourls.
_SHORT_LINK = re.compile(
    r"(?<![\w.-])(?:https?://)?(?:www\.)?"
    r"(?:bit\.ly|bitly\.is|tinyurl\.com|t2m\.io|rebrand\.ly|bl\.ink|zpr\.io"
    r"|(?:[\w-]+\.)*(?:polr|yourls)(?:\.[\w-]+)+)"
    r"(?![\w-])",
    re.IGNORECASE,
)


def moderation_reason(text: str) -> str | None:
    """Why moderation rejects this text, or None when it is clean.

    Short links are looked for first, so a link with a long number in it is reported as a link.
    """
    if _SHORT_LINK.search(text):
        return LINK_SHORT_URL
    if _EMAIL.search(text) or _PHONE.search(_DATE.sub(" ", text)):
        return PERSONAL_DATA
    return None


def moderation_status(message: Message, now: dt.datetime) -> str:
    """`pending` until the verdict's time, then `clean` or `rejected`."""
    if message.is_pending(now):
        return "pending"
    return "clean" if message.moderation_reason is None else "rejected"


def reject_later(message: Message, reason: str, now: dt.datetime) -> None:
    """Moderation rejects a seller message after the fact (a pending one, or one already clean)."""
    message.moderation_reason = reason
    message.judged_at = now
