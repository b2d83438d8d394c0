"""Accounts, marketplace links and empty catalogues as Alephee's API v2 reads show them.

Every list comes in Alephee's envelope: `Paging` {Limit, Offset, Total} (integers, always), `Total`
and `Results`; never a `next_page` key, which the public Singer tap would send back as `page=`
(docs/decisions.md, "Accounts, marketplaces, stores, products").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from postventa.api.render import MARKETPLACE_KEYS
from postventa.domain.orders import MERCADOLIBRE
from postventa.store.accounts import Account
from postventa.store.links import LinkSummary


def whole_list(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Every record in one answer: one page from offset 0 that holds them all."""
    total = len(results)
    return {"Paging": {"Limit": total, "Offset": 0, "Total": total}, "Total": total, "Results": list(results)}


def empty_page(*, limit: int, offset: int) -> dict[str, Any]:
    """A page of a list postventa holds nothing of (products): the window asked for echoed, no results."""
    return {
        "Paging": {"Limit": limit, "Offset": offset, "Total": 0},
        "SortBy": None,
        "AvailableSorts": [],
        "Total": 0,
        "Results": [],
    }


def alephee_account_json(account: Account) -> dict[str, Any]:
    """An account of GET /v2/accounts; null for what the operator has not set."""
    return {
        "Id": account.id,
        "Name": account.name,
        "BusinessName": account.business_name,
        "DocType": account.doc_type,
        "DocNumber": account.doc_number,
    }


def marketplace_json(link: LinkSummary) -> dict[str, Any]:
    """A marketplace of the account: Id and Name as its orders' `MarketPlace` {Key, Value} carry them,
    plus the Mercado Libre site, seller and link status (fields of ours, which Alephee's clients ignore)."""
    return {
        "Id": MARKETPLACE_KEYS[MERCADOLIBRE],
        "Name": MERCADOLIBRE,
        "SiteId": link.site.value,
        "SellerId": link.seller_id,
        "LinkStatus": link.status.value,
    }
