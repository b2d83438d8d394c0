"""Bodies of the control API (`/_emulator/*`), validated so a wrong input gets a clear 400."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from postventa.emulator.errors import MeliError, bad_control_input
from postventa.emulator.faults import FAULT_KINDS
from postventa.emulator.models import LOGISTIC_MODES, ORDER_STATUSES, SHIPMENT_STATUSES
from postventa.emulator.sites import SITES_IN_SCOPE

Model = TypeVar("Model", bound=BaseModel)


class ControlBody(BaseModel):
    """Base: unknown fields are refused, so a misspelt field is not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SellerIn(ControlBody):
    """`POST /_emulator/sellers`; `ClientId` puts the seller on an existing application."""

    SiteId: str
    Nickname: str | None = Field(default=None, min_length=1, max_length=60)
    ClientId: str | None = None

    @field_validator("SiteId")
    @classmethod
    def _site(cls, value: str) -> str:
        return _site_id(value)


class BuyerIn(ControlBody):
    """The buyer of a new order."""

    Id: int | None = Field(default=None, gt=0)
    Nickname: str | None = Field(default=None, min_length=1, max_length=60)


class DeliveryWindowIn(ControlBody):
    """A Flex delivery window: a date and an hour range."""

    Date: dt.date
    FromHour: int = Field(ge=0, le=23)
    ToHour: int = Field(ge=1, le=24)

    @model_validator(mode="after")
    def _ordered(self) -> DeliveryWindowIn:
        if self.FromHour >= self.ToHour:
            raise ValueError("FromHour must be before ToHour")
        return self


class OrderIn(ControlBody):
    """`POST /_emulator/orders`."""

    SellerId: int
    SiteId: str | None = None
    PackId: int | None = Field(default=None, gt=0)
    LogisticType: str
    Status: str = "paid"
    ShipmentStatus: str = "ready_to_ship"
    Buyer: BuyerIn | None = None
    DeliveryWindow: DeliveryWindowIn | None = None

    @field_validator("SiteId")
    @classmethod
    def _site(cls, value: str | None) -> str | None:
        return None if value is None else _site_id(value)

    @field_validator("LogisticType")
    @classmethod
    def _logistic_type(cls, value: str) -> str:
        return _one_of(value.lower(), LOGISTIC_MODES, "LogisticType")

    @field_validator("Status")
    @classmethod
    def _status(cls, value: str) -> str:
        return _one_of(value.lower(), ORDER_STATUSES, "Status")

    @field_validator("ShipmentStatus")
    @classmethod
    def _shipment_status(cls, value: str) -> str:
        return _one_of(value.lower(), SHIPMENT_STATUSES, "ShipmentStatus")


class OrderChangeIn(ControlBody):
    """`PUT /_emulator/orders/{orderId}`: at least one of the two."""

    Status: str | None = None
    ShipmentStatus: str | None = None

    @model_validator(mode="after")
    def _something(self) -> OrderChangeIn:
        if self.Status is None and self.ShipmentStatus is None:
            raise ValueError("give Status, ShipmentStatus or both")
        if self.Status is not None:
            self.Status = _one_of(self.Status.lower(), ORDER_STATUSES, "Status")
        if self.ShipmentStatus is not None:
            self.ShipmentStatus = _one_of(self.ShipmentStatus.lower(), SHIPMENT_STATUSES, "ShipmentStatus")
        return self


class BuyerMessageIn(ControlBody):
    """`POST /_emulator/packs/{packId}/buyer-messages`."""

    Text: str = Field(min_length=1, max_length=3500)


class FaultIn(ControlBody):
    """One fault rule."""

    Route: str = Field(min_length=1)
    Kind: str
    Rate: float = Field(default=1.0, ge=0, le=1)
    RetryAfterSeconds: float | None = Field(default=None, ge=0)
    DelaySeconds: float | None = Field(default=None, ge=0)

    @field_validator("Kind", mode="before")
    @classmethod
    def _kind(cls, value: object) -> str:
        text = str(value).strip().lower() if isinstance(value, str | int) else ""
        return _one_of(text, FAULT_KINDS, "Kind")


class FaultsIn(ControlBody):
    """`PUT /_emulator/faults`; `Seed` reseeds the random draws."""

    Faults: list[FaultIn]
    Seed: int | None = None


class ConfigIn(ControlBody):
    """`PUT /_emulator/config`: only the fields given change; null clears the optional ones."""

    NotifyUrl: str | None = None
    AutoBuyerReplySeconds: float | None = Field(default=None, ge=0)
    AutoBuyerReplyText: str | None = Field(default=None, min_length=1, max_length=3500)
    ReadsPerMinute: int | None = Field(default=None, gt=0)
    WritesPerMinute: int | None = Field(default=None, gt=0)
    AccessTokenTtlSeconds: float | None = Field(default=None, gt=0)
    OtherClosedOnDeliverySites: list[str] | None = None
    PendingModerationSeconds: float | None = Field(default=None, ge=0)

    @field_validator("OtherClosedOnDeliverySites")
    @classmethod
    def _sites(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_site_id(site.strip()) for site in value]

    @field_validator("NotifyUrl")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("NotifyUrl must be an http:// or https:// URL")
        return value


def parse_body(model: type[Model], raw: bytes) -> Model:
    """The body as `model`, or a 400 that names each wrong field."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _invalid(exc: ValidationError) -> MeliError:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    return bad_control_input("; ".join(problems))


def _site_id(value: str) -> str:
    return _one_of(value.upper(), SITES_IN_SCOPE, "SiteId")


def _one_of(value: str, allowed: Collection[str], field: str) -> str:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(sorted(allowed))}")
    return value
