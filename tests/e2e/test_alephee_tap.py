"""What the public Alephee client `epoch8/tap-alephcrm` (a Singer tap) does, replayed against a real
`postventa serve` (issue 17): the same requests, in the same order, with the same parameters, the
same paging and the same incremental bookmark, and every record checked against JSON Schemas of
Alephee's shapes (tests/contract/alephee_schemas/).

The tap cannot itself be pointed at postventa (its base URL is written into its code), so this test
is the tap's requests as it makes them; /work/notes' research and docs/decisions.md say which.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import jsonschema_rs
import pytest

from postventa.store.engine import Database
from tests.conftest import ADMIN_TOKEN
from tests.factories import PEPPER
from tests.servers import served_process

SCHEMAS = Path(__file__).parents[1] / "contract" / "alephee_schemas"
# The tap's page: it never sends `limit`, and steps its own offset by 100.
TAP_PAGE = 100
# How the tap reads its bookmark and writes it back (tap_alephcrm/streams.py, OrdersStream).
BOOKMARK_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DATE_CREATED_FROM_FORMAT = "%Y-%m-%d %H:%M"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def validator(name: str) -> Any:
    return jsonschema_rs.validator_for(json.loads((SCHEMAS / f"{name}.schema.json").read_text()))


STREAM_SCHEMAS = {
    name: validator(name) for name in ("accounts", "marketplaces", "stores", "products", "orders")
}
ENVELOPE = validator("envelope")


@dataclass
class Tap:
    """The tap's requests: GET, the stream's parameters first and `api_key` (lower case) last."""

    http: httpx2.Client
    api_key: str
    requests: list[str] = field(default_factory=list)

    def get(self, path: str, stream: str, **params: object) -> dict[str, Any]:
        response = self.http.get(path, params={**params, "api_key": self.api_key})
        self.requests.append(str(response.request.url))
        # Any 4xx but 429 stops the tap's whole run (singer_sdk FatalAPIError).
        assert response.status_code == 200, (path, response.status_code, response.text)
        body = response.json()
        errors = [error.message for error in ENVELOPE.iter_errors(body)]
        assert not errors, (path, errors)
        for record in body["Results"]:
            problems = [error.message for error in STREAM_SCHEMAS[stream].iter_errors(record)]
            assert not problems, (stream, problems, record)
        return body

    def paged(self, path: str, stream: str, **params: object) -> Iterator[dict[str, Any]]:
        """The tap's offset paginator: no offset on the first page, then its own counter by 100;
        it stops when the server's Paging.Offset + Paging.Limit reaches Paging.Total."""
        offset = 0
        while True:
            page_params = {**params, "offset": offset} if offset else params
            body = self.get(path, stream, **page_params)
            yield from body["Results"]
            paging = body["Paging"]
            if paging["Offset"] + paging["Limit"] >= paging["Total"]:
                return
            offset += TAP_PAGE

    def sync(self, bookmarks: dict[int, str]) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
        """One run: accounts, then each account's marketplaces, stores, orders and products.
        Returns the accounts and each account's orders as read; `bookmarks` (account id → the last
        DateCreated) is read and updated as the tap's state."""
        accounts = self.get("/v2/accounts", "accounts")["Results"]
        orders: dict[int, list[dict[str, Any]]] = {}
        for account in accounts:
            account_id = account["Id"]
            self.get(f"/v2/accounts/{account_id}/marketplaces", "marketplaces")
            self.get(f"/v2/accounts/{account_id}/stores", "stores")
            params: dict[str, object] = {"accountId": account_id, "sort": "dateCreated"}
            if account_id in bookmarks:
                since = dt.datetime.strptime(bookmarks[account_id], BOOKMARK_FORMAT)
                params["dateCreatedFrom"] = since.strftime(DATE_CREATED_FROM_FORMAT)
            orders[account_id] = list(self.paged("/v2/orders", "orders", **params))
            for order in orders[account_id]:
                # The SDK keeps the greatest DateCreated string as the bookmark.
                bookmarks[account_id] = max(bookmarks.get(account_id, ""), order["DateCreated"])
            list(self.paged("/v2/products", "products", accountId=account_id))
        return accounts, orders


@dataclass
class Seeded:
    api_key: str
    accounts: list[int]
    stranger: int  # an account the key does not open
    # Each account's imported orders: id → DateCreated.
    orders: dict[int, dict[int, dt.datetime]]


def admin_post(http: httpx2.Client, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.request(method, path, json=body, headers=ADMIN)
    assert response.status_code in (200, 201), (path, response.text)
    answer: dict[str, Any] = response.json()
    return answer


def import_orders(
    http: httpx2.Client, account_id: int, dates: list[dt.datetime], label: str
) -> dict[int, dt.datetime]:
    orders = [
        {
            "ExternalOrderId": f"{label}-{index}",
            "SiteId": "MLA",
            "LogisticType": "cross_docking",
            "DateCreated": date.isoformat(),
            "Buyer": {"Code": 100 + index, "Nickname": f"BUYER{index}"},
        }
        for index, date in enumerate(dates)
    ]
    imported = admin_post(http, "PUT", f"/admin/accounts/{account_id}/orders", {"Orders": orders})
    return {row["Id"]: date for row, date in zip(imported["Results"], dates, strict=True)}


def seed(http: httpx2.Client, now: dt.datetime) -> Seeded:
    """Two accounts under one key, and a third it does not open. The first has 250 orders, 150 of
    them created in the same second (pages cut through the tie), the second 30 over two days."""
    names = ("Tienda Norte", "Tienda Sur", "Otra")
    ids = [admin_post(http, "POST", "/admin/accounts", {"Name": name})["Id"] for name in names]
    admin_post(
        http,
        "PATCH",
        f"/admin/accounts/{ids[0]}",
        {"BusinessName": "Norte S.A.", "DocType": "CUIT", "DocNumber": "30712345679"},
    )
    key = admin_post(
        http,
        "POST",
        "/admin/api-keys",
        {"AccountIds": ids[:2], "RateLimits": "send=120/minute,read=100000/minute"},
    )
    start = (now - dt.timedelta(days=3)).replace(microsecond=0)
    same_second = [start + dt.timedelta(hours=1)] * 150
    spread = [start + dt.timedelta(minutes=7 * index, seconds=index % 60) for index in range(100)]
    orders = {
        ids[0]: import_orders(http, ids[0], spread[:50] + same_second + spread[50:], "N"),
        ids[1]: import_orders(
            http, ids[1], [start + dt.timedelta(hours=1.5 * index) for index in range(30)], "S"
        ),
    }
    import_orders(http, ids[2], [start], "X")
    return Seeded(key["ApiKey"], ids[:2], ids[2], orders)


def in_tap_order(orders: dict[int, dt.datetime]) -> list[int]:
    """The ids in the order the tap must receive them: by date created, then by id."""
    return sorted(orders, key=lambda order_id: (orders[order_id], order_id))


@pytest.fixture
def server(database_url: str, database: Database, tmp_path: Path) -> Iterator[str]:
    with served_process(
        tmp_path,
        admin_token=ADMIN_TOKEN,
        api_key_pepper=PEPPER,
        database_url=database_url,
        embedded_worker="false",
        meli_api_url="http://127.0.0.1:9",
    ) as (_running, url):
        yield url


def test_the_alephee_tap_reads_every_order_once_in_order_then_incrementally(server: str):
    now = dt.datetime.now(dt.UTC)
    with httpx2.Client(base_url=server, timeout=30) as http:
        seeded = seed(http, now)
        tap = Tap(http, seeded.api_key)
        bookmarks: dict[int, str] = {}

        accounts, first = tap.sync(bookmarks)

        assert [account["Id"] for account in accounts] == seeded.accounts
        assert accounts[0]["BusinessName"] == "Norte S.A."
        assert (accounts[0]["DocType"], accounts[0]["DocNumber"]) == ("CUIT", "30712345679")
        for account_id in seeded.accounts:
            assert [order["Id"] for order in first[account_id]] == in_tap_order(seeded.orders[account_id])
        assert all("api_key=" in url and "API_KEY" not in url for url in tap.requests)
        assert not any(f"accountId={seeded.stranger}" in url for url in tap.requests)

        # New orders arrive; the incremental run starts from each bookmark, cut to the minute.
        later = now - dt.timedelta(hours=1)
        added = {
            seeded.accounts[0]: import_orders(
                http, seeded.accounts[0], [later, later, later + dt.timedelta(seconds=30)], "N2"
            ),
            seeded.accounts[1]: import_orders(http, seeded.accounts[1], [later], "S2"),
        }
        marks = dict(bookmarks)
        _, second = tap.sync(bookmarks)

    for account_id in seeded.accounts:
        every = seeded.orders[account_id] | added[account_id]
        mark = dt.datetime.strptime(marks[account_id], BOOKMARK_FORMAT).replace(tzinfo=dt.UTC)
        since = mark.replace(second=0)
        expected = {order_id: date for order_id, date in every.items() if date >= since}
        read = [order["Id"] for order in second[account_id]]
        # The incremental run: everything from the bookmark's minute on, once each, in order...
        assert read == in_tap_order(expected)
        assert set(added[account_id]) <= set(read)
        # ...and the two runs together, keyed (accountId, Id) as the tap's loader does, are every
        # order of the account exactly once.
        together = {order["Id"] for order in first[account_id]} | set(read)
        assert together == set(every)
        assert len(first[account_id]) == len(seeded.orders[account_id])
