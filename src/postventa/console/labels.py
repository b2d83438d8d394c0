"""What the console calls things, in English, marked for the catalogs: the reasons, the statuses,
the roles, and the refusals of the send and of `/messages/options` by their stable code.

The domain's refusal messages are English sentences with the specifics (counts, names). In English
the console shows them as they are; in Spanish and Portuguese it shows the translation of the
refusal's code below, and the domain's own message when a code has none (docs/decisions.md).
"""

from __future__ import annotations

from gettext import NullTranslations

from postventa.console.i18n import ENGLISH, N_
from postventa.domain.errors import Refusal
from postventa.domain.reasons import Reason
from postventa.domain.text import MAX_TEXT_CHARACTERS

REASON_LABELS = {
    Reason.REQUEST_VARIANTS: N_("Ask for the product's variants"),
    Reason.REQUEST_BILLING_INFO: N_("Ask for billing details"),
    Reason.SEND_INVOICE_LINK: N_("Send the invoice link"),
    Reason.OTHER: N_("Other"),
    Reason.DELIVERY_PROMISE: N_("Delivery promise"),
}

STATUS_LABELS = {
    "queued": N_("queued"),
    "sending": N_("sending"),
    "pending_moderation": N_("pending moderation"),
    "sent": N_("sent"),
    "moderated": N_("moderated"),
    "failed": N_("failed"),
    "received": N_("received"),
}

ROLE_LABELS = {"operator": N_("operator"), "admin": N_("administrator")}

REFUSAL_TEXTS = {
    # check 7: what was written
    "reason_missing": N_("Choose a reason."),
    "reason_invalid": N_("Choose one of the reasons offered."),
    "message_missing": N_("Write the message: this reason sends your text."),
    "message_too_long": N_("The message is too long: at most %(max)s characters."),
    "invalid_characters": N_("The message has characters that cannot be sent (control or invisible ones)."),
    "attachment_extension_missing": N_("The file has no extension: attach a pdf, jpg, jpeg, png or txt."),
    "attachment_extension_not_allowed": N_(
        "Files of this type cannot be sent: use pdf, jpg, jpeg, png or txt."
    ),
    "attachment_name_missing": N_("The file needs a name."),
    "attachment_name_invalid": N_("The file's name must not contain / or \\."),
    "attachment_name_too_long": N_("The file's name is too long."),
    "attachment_empty": N_("The attached file is empty."),
    "attachment_too_large": N_("The attached file is too large."),
    "attachment_content_mismatch": N_("The file's content is not of the type its name says."),
    # check 8: the order
    "not_mercadolibre_order": N_("Only Mercado Libre orders can be messaged."),
    "reason_not_available_in_country": N_("This reason is not available in the order's country."),
    "reason_not_allowed_for_logistic_type": N_("This reason is not available for the order's logistic type."),
    "order_cancelled": N_("The order is cancelled: its conversation is closed."),
    "fulfillment_not_delivered": N_(
        "The order is shipped by fulfillment and not delivered yet: messaging opens on delivery."
    ),
    "order_payment_pending": N_("The order's payment is pending: the conversation opens once it is paid."),
    "delivery_window_missing": N_("The order has no delivery window to promise."),
    "delivery_window_past": N_("The order's delivery window is past."),
    # check 9: the conversation
    "awaiting_buyer_reply": N_(
        "The buyer has not replied to the last seller message: wait for the reply before writing again."
    ),
    "attachment_requires_answered_message": N_(
        "An attachment can be sent only after the buyer answered a first message without attachment."
    ),
    "reason_locked_by_attachment": N_(
        "After a message with an attachment, the next messages must use that message's reason."
    ),
    "reason_closed_after_delivery": N_(
        "Other cannot open a conversation once the shipment is delivered on this site: "
        "the buyer must write first."
    ),
    "marketplace_cap_exhausted": N_(
        "Mercado Libre allows no more messages with this reason on this order now: "
        "wait for the buyer to write."
    ),
    "conversation_busy": N_("Another message was being written on this conversation: try again."),
}


def refusal_text(refusal: Refusal, language: str, catalog: NullTranslations) -> str:
    """A refusal as the operator reads it: the domain's message in English, else its code's text."""
    text = REFUSAL_TEXTS.get(refusal.code)
    if language == ENGLISH or text is None:
        return refusal.message
    return catalog.gettext(text) % {"max": MAX_TEXT_CHARACTERS}
