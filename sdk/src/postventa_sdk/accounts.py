"""The accounts an API key opens and an account's marketplaces (GET /v2/accounts, …/marketplaces)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Json = Mapping[str, Any]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Account:
    """An account the key opens; the business name and document are None until an operator sets them."""

    id: int
    name: str | None
    business_name: str | None
    doc_type: str | None
    doc_number: str | None

    @classmethod
    def from_json(cls, data: Json) -> Account:
        """A record of GET /v2/accounts."""
        return cls(
            id=int(data["Id"]),
            name=_text(data.get("Name")),
            business_name=_text(data.get("BusinessName")),
            doc_type=_text(data.get("DocType")),
            doc_number=_text(data.get("DocNumber")),
        )


@dataclass(frozen=True)
class Marketplace:
    """A marketplace the account is linked to: `id` and `name` as its orders' `MarketPlace` key and
    value (1, "MercadoLibre"), the site, the seller, and whether the link works (`active`) or the
    seller must authorise the application again (`needs_relink`)."""

    id: int
    name: str | None
    site_id: str | None
    seller_id: int | None
    link_status: str | None

    @classmethod
    def from_json(cls, data: Json) -> Marketplace:
        """A record of GET /v2/accounts/{accountId}/marketplaces."""
        seller = data.get("SellerId")
        return cls(
            id=int(data["Id"]),
            name=_text(data.get("Name")),
            site_id=_text(data.get("SiteId")),
            seller_id=int(seller) if isinstance(seller, int) else None,
            link_status=_text(data.get("LinkStatus")),
        )
