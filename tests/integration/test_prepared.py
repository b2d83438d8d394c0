"""Prepared statements (store/prepared.py) run straight on the driver (sqlite3, asyncpg), and must
give exactly what SQLAlchemy's own execution gives: types converted both ways, literals bound, rows
named, the same transaction, the same exceptions."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from postventa.store.prepared import Prepared
from postventa.store.tables import accounts, messages, orders
from tests.factories import make_order, make_tenant
from tests.factories import now as utc_now

_ORDER = select(orders, func.upper(orders.c.site_id).label("upper_site")).where(
    orders.c.id == bindparam("order_id"), orders.c.site_id != "MLX"
)


async def test_rows_equal_sqlalchemy_rows(database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, SiteId="MLB")
    async with database.transaction() as connection:
        fast = (await Prepared(_ORDER).execute(connection, {"order_id": order_id})).one()
        plain = (await connection.execute(_ORDER, {"order_id": order_id})).one()
    assert tuple(fast) == tuple(plain)
    assert fast.upper_site == "MLB"
    assert isinstance(fast.date_created, dt.datetime)
    assert fast.date_created.tzinfo is not None  # the UTC type's result processor ran


async def test_insert_returning_and_update_rowcount(database):
    created = utc_now()
    statement = Prepared(
        insert(accounts)
        .values(name=bindparam("name"), created_at=bindparam("created_at", type_=accounts.c.created_at.type))
        .returning(accounts.c.id, accounts.c.created_at)
    )
    rename = Prepared(update(accounts).where(accounts.c.id == bindparam("account_id")).values(name="renamed"))
    async with database.transaction(write=True) as connection:
        row = (await statement.execute(connection, {"name": "Prepared", "created_at": created})).one()
        renamed = await rename.execute(connection, {"account_id": row.id})
        missing = await rename.execute(connection, {"account_id": -1})
        stored = (
            await connection.execute(select(accounts.c.name).where(accounts.c.id == row.id))
        ).scalar_one()
    assert row.created_at == created
    assert (renamed.rowcount, missing.rowcount) == (1, 0)
    assert stored == "renamed"


async def test_no_row_is_none(database):
    query = Prepared(select(messages.c.id).where(messages.c.id == bindparam("message_id")))
    async with database.transaction() as connection:
        assert (await query.execute(connection, {"message_id": -1})).first() is None
        assert list((await query.execute(connection, {"message_id": -1})).all()) == []


async def test_a_prepared_first_statement_is_inside_the_transaction(database):
    """The statement that opens a transaction (PostgreSQL's BEGIN is sent lazily) is undone with it."""
    statement = Prepared(
        insert(accounts)
        .values(name=bindparam("name"), created_at=bindparam("created_at", type_=accounts.c.created_at.type))
        .returning(accounts.c.id)
    )
    inserted: list[int] = []

    async def insert_then_fail() -> None:
        async with database.transaction(write=True) as connection:
            row = (await statement.execute(connection, {"name": "undone", "created_at": utc_now()})).one()
            inserted.append(row.id)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        await insert_then_fail()
    async with database.transaction() as connection:
        found = (await connection.execute(select(accounts.c.id).where(accounts.c.id == inserted[0]))).all()
    assert found == []


async def test_a_constraint_violation_is_sqlalchemys_integrity_error(database):
    tenant = await make_tenant(database)
    duplicate_id = Prepared(
        insert(accounts).values(
            id=bindparam("id"),
            name="twice",
            created_at=bindparam("created_at", type_=accounts.c.created_at.type),
        )
    )
    with pytest.raises(IntegrityError):
        async with database.transaction(write=True) as connection:
            await duplicate_id.execute(connection, {"id": tenant.account_id, "created_at": utc_now()})
