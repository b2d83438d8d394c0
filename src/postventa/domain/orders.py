"""Orders as the rules see them: marketplace, site, status, logistic type, delivery window."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from postventa.domain.sites import Site

MERCADOLIBRE = "MercadoLibre"


class LogisticType(enum.IntEnum):
    """Alephee's `Shipping.LogisticType` keys."""

    TO_BE_AGREED = 1
    ME1 = 2
    ME2 = 3
    CUSTOM = 4
    FULFILLMENT = 5
    FLEX = 6
    PICKUP = 7
    CROSS_DOCKING = 8
    COURIER = 14
    FLEX_TURBO = 15

    @property
    def label(self) -> str:
        """Alephee's name of the type (`Value`)."""
        return _LOGISTIC_LABELS[self]

    @classmethod
    def from_mercadolibre(cls, logistic_type: str) -> LogisticType | None:
        """The key for a Mercado Libre `logistic.type` string, or None when it has none."""
        return _FROM_MERCADOLIBRE.get(logistic_type.strip().lower())

    @classmethod
    def parse(cls, value: int | str) -> LogisticType | None:
        """A key (8), its label ("cross_docking") or a Mercado Libre type ("drop_off")."""
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                return None
        if isinstance(value, str):
            text = value.strip().lower()
            if text.isascii() and text.isdigit():
                return cls.parse(int(text)) if len(text) <= 2 else None
            for member, label in _LOGISTIC_LABELS.items():
                if label == text:
                    return member
            return cls.from_mercadolibre(text)
        return None


_LOGISTIC_LABELS = {
    LogisticType.TO_BE_AGREED: "to_be_agreed",
    LogisticType.ME1: "me1",
    LogisticType.ME2: "me2",
    LogisticType.CUSTOM: "custom",
    LogisticType.FULFILLMENT: "fulfillment",
    LogisticType.FLEX: "flex",
    LogisticType.PICKUP: "pickup",
    LogisticType.CROSS_DOCKING: "cross_docking",
    LogisticType.COURIER: "courier",
    LogisticType.FLEX_TURBO: "flex-turbo",
}

# Mercado Libre shipment `logistic.type` → Alephee key (contract §2).
_FROM_MERCADOLIBRE = {
    "not_specified": LogisticType.TO_BE_AGREED,
    "default": LogisticType.ME1,
    "drop_off": LogisticType.ME2,
    "xd_drop_off": LogisticType.ME2,
    "custom": LogisticType.CUSTOM,
    "fulfillment": LogisticType.FULFILLMENT,
    "self_service": LogisticType.FLEX,
    "cross_docking": LogisticType.CROSS_DOCKING,
}


class StatusType(enum.IntEnum):
    """Alephee's grouping of order statuses (`StatusType.Key`)."""

    NEW = 0
    PENDING = 1
    CLOSED = 2
    CANCELLED = 99

    @property
    def label(self) -> str:
        """Readable name (`Value`)."""
        return self.name.capitalize()


ORDER_STATUS_LABELS: dict[int, str] = {
    0: "No status",
    10: "Ready to ship",
    11: "Fraudulent",
    17: "At pickup point",
    20: "Shipped",
    30: "Assigned to distributor",
    31: "Assigned to pickup",
    70: "Deleted",
    80: "Delivered",
    87: "Recipient not found",
    89: "Not delivered",
    90: "Cancelled",
    91: "Awaiting refund",
    92: "Refunded",
    93: "Cancelled by buyer after delivery",
}

DELIVERED = 80

_STATUS_TYPES: dict[int, StatusType] = {
    0: StatusType.NEW,
    **{key: StatusType.PENDING for key in (10, 17, 20, 30, 31, 87, 89, 91, 92)},
    80: StatusType.CLOSED,
    **{key: StatusType.CANCELLED for key in (11, 90, 93)},
}


def status_type_of(status: int) -> StatusType | None:
    """The status type of an Alephee status key; 70 (deleted) belongs to none."""
    return _STATUS_TYPES.get(status)


def statuses_of_type(status_type: StatusType) -> list[int]:
    """Every status key in a status type, for filtering."""
    return sorted(key for key, kind in _STATUS_TYPES.items() if kind is status_type)


@dataclass(frozen=True)
class DeliveryWindow:
    """The promised delivery: a day and an hour range in the site's local time."""

    date: dt.date
    from_hour: int
    to_hour: int


# Mercado Libre order statuses of an order not paid yet: its conversation is blocked_by_payment
# until it is (research §2.5).
PAYMENT_PENDING_STATUSES = frozenset({"payment_required", "payment_in_process", "partially_paid"})


@dataclass(frozen=True)
class OrderFacts:
    """What the sending rules need to know about an order."""

    marketplace: str
    site: Site | None
    status: int
    logistic_type: LogisticType | None
    delivery_window: DeliveryWindow | None
    # Mercado Libre's own status of the order (`payment_required`, `paid`, …), when it was synced.
    marketplace_status: str | None = None

    @property
    def payment_pending(self) -> bool:
        """Whether Mercado Libre still waits for the order's payment."""
        return (self.marketplace_status or "").lower() in PAYMENT_PENDING_STATUSES

    @property
    def is_mercadolibre(self) -> bool:
        """Whether the order came from Mercado Libre (the only marketplace that can be messaged)."""
        return self.marketplace.strip().lower() == MERCADOLIBRE.lower()


def status_from_mercadolibre(order_status: str, shipment_status: str | None) -> int:
    """The Alephee status key of a Mercado Libre order and its shipment."""
    if order_status.lower() in ("cancelled", "invalid"):
        return 90
    shipment = (shipment_status or "").lower()
    return {"delivered": 80, "not_delivered": 89, "shipped": 20, "cancelled": 90}.get(shipment, 10)


def marketplace_conversation(pack_id: int | None, external_order_id: str) -> int | None:
    """The id Mercado Libre keys an order's conversation by: its pack, or the order itself when it has
    none ("si el pack_id es null, puedes utilizar el order_id"); None when neither is Mercado Libre's."""
    if pack_id is not None:
        return pack_id
    return int(external_order_id) if external_order_id.isascii() and external_order_id.isdigit() else None


def mercadolibre_conversation(facts: OrderFacts, pack_id: int | None, external_order_id: str) -> int | None:
    """`marketplace_conversation` for an order of Mercado Libre; None for any other marketplace's."""
    return marketplace_conversation(pack_id, external_order_id) if facts.is_mercadolibre else None
