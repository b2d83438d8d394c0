"""What Mercado Libre shows of a conversation, as pure decisions: who wrote a message (seller, buyer,
or Mercado Libre's AI agent), what a moderation verdict read after the fact does to a message's
status, whether a seller message written outside postventa may be recorded now, and whether an
order's site may be imported under a seller's link.

The inbound processor (delivery/inbound.py) only does the reads and writes these decide on.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from postventa.domain.delivery import MessageStatus

# The Agent ID of each site (research §2.8: "MLU (Otros)" stands for the sites without their own).
AGENT_IDS_BY_SITE: dict[str, int] = {
    "MLC": 3020819166,
    "MCO": 3037204123,
    "MLM": 3037204279,
    "MLA": 3037674934,
    "MLB": 3037675074,
    "MLU": 3037204685,
}
AGENT_IDS = frozenset(AGENT_IDS_BY_SITE.values())
# In an agent thread `conversation_status.path` is /packs/{pack}/sellers/{seller}/conversations/agent.
AGENT_PATH_SUFFIX = "/conversations/agent"

# The reasons research §2.4 documents, kept as Mercado Libre writes them (upper case).
MODERATION_REASONS = frozenset(
    {
        "OUT_OF_PLACE_LANGUAGE",
        "SOCIAL_NETWORK_LINK",
        "LINK_SHORT_URL",
        "AUTOMATIC_MESSAGE",
        "PERSONAL_DATA",
        "LINK_MERCADOPAGO",
        "ML_LINKS_PAYPAL",
        "EVASION_CLAIM_SELLER",
    }
)

# A verdict can come minutes after the send (research §2.10); a day covers it with room to spare,
# and keeps the poll to the conversations written to lately.
LATE_MODERATION_WINDOW = dt.timedelta(hours=24)

# The statuses of a postventa message that may already be on Mercado Libre without its id recorded:
# while one is in the conversation, an unknown seller message there may be it.
IN_FLIGHT_STATUSES = frozenset({MessageStatus.QUEUED, MessageStatus.SENDING})


class Author(enum.StrEnum):
    """Who wrote a message."""

    SELLER = "seller"
    BUYER = "buyer"
    AGENT = "agent"  # Mercado Libre's AI assistant, answering for the buyer (research §2.8)


class Source(enum.StrEnum):
    """Where a message was written."""

    POSTVENTA = "postventa"  # sent through postventa
    MARKETPLACE = "marketplace"  # written on Mercado Libre: the buyer's, the agent's, the seller center's


@dataclass(frozen=True)
class Moderation:
    """Mercado Libre's moderation of a message as read now."""

    pending: bool  # moderation has not decided
    rejected: bool  # kept from the recipient
    reason: str | None


@dataclass(frozen=True)
class StatusChange:
    """A message's new status, and the moderation reason to record with it."""

    status: MessageStatus
    moderation_reason: str | None = None


def normalized_reason(reason: str | None) -> str | None:
    """Mercado Libre's reason as it documents it, upper case (its examples also show lower case)."""
    if reason is None or not reason.strip():
        return None
    return reason.strip().upper()


def moderation_change(current: str, moderation: Moderation) -> StatusChange | None:
    """What a verdict read later does to a seller message: a rejection makes a `pending_moderation`
    or `sent` message `moderated` (with the reason); a clean verdict makes a `pending_moderation`
    message `sent`. None when nothing changes (still pending, already moderated, not delivered)."""
    if current not in (MessageStatus.PENDING_MODERATION, MessageStatus.SENT):
        return None
    if moderation.rejected:
        return StatusChange(MessageStatus.MODERATED, normalized_reason(moderation.reason))
    if moderation.pending or current == MessageStatus.SENT:
        return None
    return StatusChange(MessageStatus.SENT)


def is_agent_path(path: str | None) -> bool:
    """Whether a conversation's status path says it is with Mercado Libre's AI agent."""
    if not path:
        return False
    return path.rstrip("/").lower().endswith(AGENT_PATH_SUFFIX)


def author_of(
    from_user_id: int | None, *, seller_id: int, buyer_id: int | None, agent_thread: bool
) -> Author:
    """Who wrote a message of the seller's conversation: the seller; a site's agent (by its published
    id, or any user who is neither the seller nor the order's buyer, or anyone but the seller in a
    thread Mercado Libre says is with the agent); else the buyer."""
    if from_user_id == seller_id:
        return Author.SELLER
    if from_user_id in AGENT_IDS or agent_thread:
        return Author.AGENT
    if buyer_id is not None and from_user_id is not None and from_user_id != buyer_id:
        return Author.AGENT
    return Author.BUYER


def thread_agent(from_user_ids: list[int | None], *, seller_id: int, site_id: str | None) -> int | None:
    """The agent of a thread Mercado Libre says is with one: whoever but the seller wrote in it, else
    the site's published Agent ID (research §2.8); None when neither is known."""
    for user_id in from_user_ids:
        if user_id is not None and user_id != seller_id:
            return user_id
    return AGENT_IDS_BY_SITE.get((site_id or "").upper())


def may_record_foreign_seller_message(*, in_flight_statuses: frozenset[str] | set[str]) -> bool:
    """Whether a seller message Mercado Libre has and postventa does not may be recorded as written
    outside postventa now. Not while a postventa message of the conversation is queued or sending:
    it may be that message, delivered but not yet recorded, and recording it as another's would keep
    the worker's reconciliation from recognising it (and so send it twice)."""
    return not (set(in_flight_statuses) & IN_FLIGHT_STATUSES)


def shown_source(direction: str, source: str | None) -> Source:
    """The source a read shows: an inbound message was always written on Mercado Libre."""
    if direction == "inbound":
        return Source.MARKETPLACE
    return Source(source) if source in tuple(Source) else Source.POSTVENTA


def shown_author(direction: str, author: str | None) -> Author:
    """The author a read shows (messages recorded before authors were kept: by direction)."""
    if author in tuple(Author):
        return Author(author)
    return Author.SELLER if direction == "outbound" else Author.BUYER


class SiteProblem(enum.StrEnum):
    """Why an order may not be imported under a link."""

    UNKNOWN = "order_site_unknown"
    MISMATCH = "order_site_mismatch"


def order_site_problem(
    order_site: str | None, *, known_sites: frozenset[str], link_site: str
) -> SiteProblem | None:
    """An order is imported under its own site only: one whose site is missing or not one we know is
    refused, and so is one of another site than the seller's link (never filed under the wrong one)."""
    site = (order_site or "").strip().upper()
    if site not in known_sites:
        return SiteProblem.UNKNOWN
    if site != link_site.upper():
        return SiteProblem.MISMATCH
    return None
