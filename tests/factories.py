"""Keyword-only factories with defaults: accounts, keys, orders and buyer replies, through the services."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from postventa.services import admin
from postventa.services.messaging import record_buyer_reply
from postventa.store.engine import Database

PEPPER = "test-pepper"
_external_ids = itertools.count(1)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Tenant:
    """An account with its own API key."""

    account_id: int
    api_key: str
    key_id: int

    def credentials(self, **extra: Any) -> dict[str, Any]:
        """API_KEY and accountId, plus any other parameters."""
        return {"API_KEY": self.api_key, "accountId": self.account_id, **extra}


async def make_tenant(database: Database, *, name: str = "Seller") -> Tenant:
    """A new account and a key for it alone."""
    async with database.transaction(write=True) as connection:
        account = await admin.create_account(connection, name, now())
        key = await admin.create_api_key(connection, [account.id], PEPPER, now())
    return Tenant(account_id=account.id, api_key=key.api_key, key_id=key.id)


async def make_order(database: Database, tenant: Tenant, **fields: Any) -> int:
    """An order of the tenant; defaults to an Argentine cross-docking order ready to ship."""
    order = {
        "ExternalOrderId": f"EXT-{next(_external_ids)}",
        "SiteId": "MLA",
        "LogisticType": "cross_docking",
    }
    order.update(fields)
    async with database.transaction(write=True) as connection:
        imported = await admin.import_orders(connection, tenant.account_id, {"Orders": [order]}, now())
    return imported[0].id


async def buyer_replies(database: Database, order_id: int, text: str = "Hola, gracias") -> int:
    """The buyer answers on the order's conversation."""
    async with database.transaction(write=True) as connection:
        return await record_buyer_reply(connection, order_id=order_id, text=text, now=now())


def window(
    days_from_today: int,
    *,
    from_hour: int = 9,
    to_hour: int = 18,
    site_zone: str = "America/Argentina/Buenos_Aires",
) -> dict[str, Any]:
    """An EstimatedDelivery some days from today on the site's calendar."""
    day = now().astimezone(ZoneInfo(site_zone)).date() + dt.timedelta(days=days_from_today)
    return {"Date": day.isoformat(), "FromHour": from_hour, "ToHour": to_hour}
