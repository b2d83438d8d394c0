"""A database that cannot serve now (away, out of connections, locked) is a 503 with the error body
and Retry-After, which clients retry; any other database error stays an opaque 500."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from postventa.api.routes import messages as messages_route
from postventa.store.engine import database_unavailable
from tests.factories import make_order, make_tenant
from tests.integration.http_helpers import assert_refused


class PostgresError(Exception):
    """Stands for an asyncpg error: what matters is its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def locked() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("original", "unavailable"),
    [
        (PostgresError("53300"), True),  # too many clients
        (PostgresError("08006"), True),  # connection failure
        (PostgresError("57P01"), True),  # administrator shutdown
        (PostgresError("42601"), False),  # a syntax error is a bug, not an outage
        (PostgresError("23505"), False),  # unique violation
        (locked(), True),
        (sqlite3.OperationalError("no such table: x"), False),
    ],
)
def test_which_errors_mean_try_again(original, unavailable):
    assert database_unavailable(DBAPIError("SELECT 1", {}, original)) is unavailable
    assert database_unavailable(ValueError("not a database error")) is False


async def test_an_unavailable_database_is_a_503_to_retry(client, database, monkeypatch):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    async def refused(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, PostgresError("53300"))

    monkeypatch.setattr(messages_route.reading, "conversation", refused)
    response = await client.get(f"/v2/orders/{order_id}/messages", params=tenant.credentials())

    assert_refused(response, 503, "database_unavailable")
    assert response.headers["retry-after"] == "1"


async def test_any_other_database_error_stays_an_opaque_500(client, database, monkeypatch):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    async def broken(*_args, **_kwargs):
        raise DBAPIError("SELECT secret_column FROM x", {}, PostgresError("42601"))

    monkeypatch.setattr(messages_route.reading, "conversation", broken)
    response = await client.get(f"/v2/orders/{order_id}/messages", params=tenant.credentials())

    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/plain")
    assert "secret_column" not in response.text
