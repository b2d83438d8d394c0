"""The emulator's records: applications, sellers, buyers, orders, packs, shipments, conversations,
messages and attachments. Plain mutable dataclasses, owned by `state.EmulatorState`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# Mercado Libre `logistic.type` → `logistic.mode` (research §4).
LOGISTIC_MODES = {
    "drop_off": "me2",
    "xd_drop_off": "me2",
    "cross_docking": "me2",
    "self_service": "me2",
    "fulfillment": "me2",
    "default": "me1",
    "custom": "custom",
    "not_specified": "not_specified",
}
ORDER_STATUSES = frozenset(
    {
        "confirmed",
        "payment_required",
        "payment_in_process",
        "partially_paid",
        "paid",
        "partially_refunded",
        "pending_cancel",
        "cancelled",
        "invalid",
    }
)
# A sale closes when it is paid; later statuses keep the date it closed (`date_closed`).
CLOSING_STATUSES = frozenset({"paid", "partially_refunded"})
PAYMENT_PENDING_STATUSES = frozenset({"payment_required", "payment_in_process", "partially_paid"})
SHIPMENT_STATUSES = frozenset(
    {"pending", "handling", "ready_to_ship", "shipped", "delivered", "not_delivered", "cancelled"}
)


@dataclass
class Application:
    """A Mercado Libre application: its id and secret."""

    client_id: str
    client_secret: str


@dataclass
class Seller:
    """A seller account, authorised for one application."""

    id: int
    nickname: str
    site_id: str
    client_id: str


@dataclass(frozen=True)
class Buyer:
    """A buyer account."""

    id: int
    nickname: str


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and the monotonic instant it stops working."""

    token: str
    seller_id: int
    expires_at: float


@dataclass(frozen=True)
class DeliveryWindow:
    """When a Flex shipment is promised: a date and an hour range."""

    date: dt.date
    from_hour: int
    to_hour: int


@dataclass
class Shipment:
    """A shipment; its logistic type decides which action-guide options apply."""

    id: int
    seller_id: int
    site_id: str
    logistic_type: str
    status: str
    window: DeliveryWindow | None
    date_created: dt.datetime

    @property
    def mode(self) -> str:
        """`logistic.mode` for the type."""
        return LOGISTIC_MODES[self.logistic_type]


@dataclass
class Order:
    """An order; its conversation is its pack's, or its own when it has no pack."""

    id: int
    seller_id: int
    buyer: Buyer
    site_id: str
    pack_id: int | None
    shipment_id: int
    status: str
    date_created: dt.datetime
    last_updated: dt.datetime
    date_closed: dt.datetime | None = None  # when it was first paid (Mercado Libre's `date_closed`)

    def record_status(self, status: str, now: dt.datetime) -> None:
        """The order's new status; the first time it is paid, the sale closes then."""
        self.status = status
        if status in CLOSING_STATUSES and self.date_closed is None:
            self.date_closed = now

    @property
    def conversation_key(self) -> int:
        """The id the conversation routes take for this order."""
        return self.pack_id if self.pack_id is not None else self.id


@dataclass
class Pack:
    """Orders of one buyer bought together, sharing a shipment and a conversation."""

    id: int
    seller_id: int
    buyer: Buyer
    site_id: str
    shipment_id: int
    order_ids: list[int]
    date_created: dt.datetime


@dataclass
class Attachment:
    """An uploaded file."""

    id: str
    seller_id: int
    site_id: str
    original_filename: str
    content_type: str
    data: bytes
    created: dt.datetime

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


@dataclass
class Message:
    """One message of a conversation, from the seller or from the buyer."""

    id: str
    conversation_key: int
    seller_id: int
    site_id: str
    client_id: str | None
    from_user: int
    to_user: int
    text: str
    moderation_reason: str | None
    created: dt.datetime
    first: bool
    option_id: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    notified: dt.datetime | None = None
    read: dt.datetime | None = None
    # When moderation's verdict (`moderation_reason`) is given: `created`, or later when moderation
    # is pending (research §2.10); until then the message is `pending`.
    judged_at: dt.datetime | None = None

    def is_pending(self, now: dt.datetime) -> bool:
        """Whether moderation has not judged the message yet at `now`."""
        return self.judged_at is not None and now < self.judged_at

    @property
    def moderated_at(self) -> dt.datetime:
        """When moderation gave (or will give) its verdict."""
        return self.judged_at or self.created

    @property
    def status(self) -> str:
        """The message's status now."""
        return self.status_at(dt.datetime.now(dt.UTC))

    def status_at(self, now: dt.datetime) -> str:
        """`pending` until moderation judges it, then `available`, or `moderated` when rejected."""
        if self.is_pending(now):
            return "pending"
        return "available" if self.moderation_reason is None else "moderated"


@dataclass
class Conversation:
    """The messages of a pack (or of an order without pack) and where the action guide stands."""

    key: int
    seller_id: int
    buyer: Buyer
    site_id: str
    shipment_id: int
    order_ids: list[int]
    messages: list[Message] = field(default_factory=list)
    guide_used: bool = False
    buyer_has_written: bool = False
    # Set through the control API (routes_control_packs): forced caps per option, the excepted
    # case, a block substatus, and the site's AI agent when the buyer talks through it.
    cap_overrides: dict[str, int] = field(default_factory=dict)
    excepted: bool = False
    forced_block: str | None = None
    agent_id: int | None = None
    agent_turn: bool = False
