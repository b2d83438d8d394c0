"""The OrderIn shape of the admin API and `postventa orders import` (contract §5), validated."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from postventa.domain.errors import PostventaError, invalid
from postventa.domain.orders import MERCADOLIBRE, ORDER_STATUS_LABELS, DeliveryWindow, LogisticType
from postventa.domain.sites import Site
from postventa.domain.text import refuse_unprintable
from postventa.store.orders import Buyer, OrderData

MAX_ORDERS_PER_IMPORT = 1000
ShortText = Annotated[str, Field(max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Identifier = Annotated[int, Field(ge=0, lt=10**19)]


class BuyerIn(_Strict):
    Code: Annotated[str, Field(max_length=64)] | Identifier | None = None
    Nickname: ShortText | None = None
    Name: ShortText | None = None


class EstimatedDeliveryIn(_Strict):
    Date: dt.date
    FromHour: Annotated[int, Field(ge=0, le=23)]
    ToHour: Annotated[int, Field(ge=1, le=24)]

    @model_validator(mode="after")
    def _ordered(self) -> EstimatedDeliveryIn:
        if self.FromHour >= self.ToHour:
            raise ValueError("FromHour must be before ToHour")
        return self


class OrderIn(_Strict):
    ExternalOrderId: Annotated[str, Field(min_length=1, max_length=64)] | Identifier
    PackId: Annotated[int, Field(gt=0, lt=2**63)] | None = None
    Marketplace: Annotated[str, Field(min_length=1, max_length=64)] = MERCADOLIBRE
    SiteId: str | None = None
    Status: int = 10
    LogisticType: int | str | None = None
    Buyer: BuyerIn | None = None
    DateCreated: dt.datetime | None = None
    DateClosed: dt.datetime | None = None  # when the sale was closed (Mercado Libre's `date_closed`)
    ExternalShippingId: Annotated[int, Field(gt=0, lt=2**63)] | None = None  # Mercado Libre's shipment
    EstimatedDelivery: EstimatedDeliveryIn | None = None

    @field_validator("DateCreated", "DateClosed")
    @classmethod
    def _plausible_date(cls, value: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        if value is not None and not 1970 <= value.year <= 9998:
            raise ValueError(f"{info.field_name} must be between 1970 and 9998")
        return value

    @field_validator("SiteId")
    @classmethod
    def _known_site(cls, value: str | None) -> str | None:
        if value is not None and Site.parse(value) is None:
            raise ValueError(f"unknown site '{value}'; use one of {', '.join(site.value for site in Site)}")
        return value

    @field_validator("Status")
    @classmethod
    def _known_status(cls, value: int) -> int:
        if value not in ORDER_STATUS_LABELS:
            raise ValueError(f"unknown status {value}; use one of {', '.join(map(str, ORDER_STATUS_LABELS))}")
        return value

    @field_validator("LogisticType")
    @classmethod
    def _known_logistic_type(cls, value: int | str | None) -> int | str | None:
        if value is not None and LogisticType.parse(value) is None:
            raise ValueError(f"unknown logistic type '{value}'")
        return value

    @model_validator(mode="after")
    def _site_for_mercadolibre(self) -> OrderIn:
        if self.Marketplace.lower() == MERCADOLIBRE.lower() and self.SiteId is None:
            raise ValueError("SiteId is required for Mercado Libre orders")
        return self

    def to_data(self, now: dt.datetime) -> OrderData:
        """The order as stored."""
        buyer = self.Buyer or BuyerIn()
        delivery = self.EstimatedDelivery
        created = self.DateCreated or now
        return OrderData(
            external_order_id=str(self.ExternalOrderId),
            pack_id=self.PackId,
            marketplace=MERCADOLIBRE
            if self.Marketplace.lower() == MERCADOLIBRE.lower()
            else self.Marketplace,
            site=Site.parse(self.SiteId) if self.SiteId else None,
            status=self.Status,
            logistic_type=LogisticType.parse(self.LogisticType) if self.LogisticType is not None else None,
            buyer=Buyer(
                code=str(buyer.Code) if buyer.Code is not None else None,
                nickname=buyer.Nickname,
                name=buyer.Name,
            ),
            date_created=_utc(created),
            date_closed=_utc(self.DateClosed) if self.DateClosed else None,
            shipping_id=self.ExternalShippingId,
            delivery_window=DeliveryWindow(delivery.Date, delivery.FromHour, delivery.ToHour)
            if delivery
            else None,
        )


def _utc(moment: dt.datetime) -> dt.datetime:
    """A time without a zone is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class OrdersIn(_Strict):
    Orders: Annotated[list[OrderIn], Field(min_length=1, max_length=MAX_ORDERS_PER_IMPORT)]


def parse_orders(payload: Any, now: dt.datetime) -> list[OrderData]:
    """Validate a whole {"Orders": [...]} document; any error refuses all of it (nothing half-written)."""
    try:
        document = OrdersIn.model_validate(payload)
    except ValidationError as error:
        raise validation_refusal(error) from error
    seen: set[str] = set()
    orders = []
    for index, order in enumerate(document.Orders):
        data = order.to_data(now)
        fields = {
            "ExternalOrderId": data.external_order_id,
            "Marketplace": data.marketplace,
            "Buyer.Name": data.buyer.name,
            "Buyer.Nickname": data.buyer.nickname,
            "Buyer.Code": data.buyer.code,
        }
        for field, text in fields.items():
            if text is not None:
                refuse_unprintable(text, parameter=f"Orders[{index}].{field}")
        if data.external_order_id in seen:
            raise invalid(
                "duplicate_order",
                f"Orders[{index}].ExternalOrderId '{data.external_order_id}' appears twice.",
            )
        seen.add(data.external_order_id)
        orders.append(data)
    return orders


def validation_refusal(error: ValidationError) -> PostventaError:
    """The first validation problem as a 400 naming the field, e.g. "Orders[2].SiteId: …"."""
    first = error.errors(include_url=False)[0]
    path = ""
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    message = str(first["msg"]).removeprefix("Value error, ")
    return invalid("invalid_body", f"{path or 'body'}: {message}.")
