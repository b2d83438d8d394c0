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


async def test_an_insert_returning_its_new_id_gives_the_stored_rows_ids(database):
    # Prepared.inserting reads the id from the cursor on SQLite and from RETURNING elsewhere: either
    # way each call gives the id of the row it stored, as `.returning(id)` through SQLAlchemy does.
    statement = Prepared.inserting(
        insert(accounts).values(
            name=bindparam("name"), created_at=bindparam("created_at", type_=accounts.c.created_at.type)
        ),
        accounts.c.id,
    )
    async with database.transaction(write=True) as connection:
        results = [
            await statement.execute(connection, {"name": name, "created_at": utc_now()}) for name in "ab"
        ]
        plain = (
            await connection.execute(
                insert(accounts).values(name="c", created_at=utc_now()).returning(accounts.c.id)
            )
        ).scalar_one()
        stored = dict(
            (
                await connection.execute(
                    select(accounts.c.name, accounts.c.id).where(accounts.c.name.in_(["a", "b", "c"]))
                )
            ).all()
        )
    first, second = (result.one() for result in results)
    assert [result.rowcount for result in results] == [1, 1]
    assert (first.id, second.id, plain) == (stored["a"], stored["b"], stored["c"])
    assert first.id < second.id < plain


def test_on_sqlite_the_insert_runs_without_returning():
    from sqlalchemy.dialects import postgresql, sqlite

    statement = Prepared.inserting(insert(accounts).values(name=bindparam("name")), accounts.c.id)
    assert "RETURNING" not in statement._compile(sqlite.dialect()).sql
    assert "RETURNING" in statement._compile(postgresql.dialect()).sql


async def test_statements_commit_each_on_its_own_on_postgresql(database):
    # Database.statements(): on PostgreSQL each statement commits by itself (no BEGIN, no COMMIT);
    # on SQLite it is a write transaction, committed when the block ends.
    statement = Prepared.inserting(
        insert(accounts).values(
            name=bindparam("name"), created_at=bindparam("created_at", type_=accounts.c.created_at.type)
        ),
        accounts.c.id,
    )
    async with database.statements() as connection:
        new_id = (
            (await statement.execute(connection, {"name": "autocommitted", "created_at": utc_now()})).one().id
        )
        async with database.transaction() as other:
            seen_inside = (
                await other.execute(select(accounts.c.id).where(accounts.c.id == new_id))
            ).first() is not None
    async with database.transaction() as other:
        seen_after = (
            await other.execute(select(accounts.c.id).where(accounts.c.id == new_id))
        ).first() is not None
    assert seen_inside is (not database.is_sqlite)
    assert seen_after


async def test_statements_with_settings_run_in_sessions_of_their_own(database):
    # Database.statements(settings=...): on PostgreSQL the connection's session has the settings
    # from its start, and connections of the main pool never get them; on SQLite there is no such
    # setting, and it is the same write transaction as without.
    settings = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}
    show = "SELECT current_setting('plan_cache_mode'), current_setting('enable_seqscan')"
    async with database.statements(settings=settings) as connection:
        if not database.is_sqlite:
            assert connection.sync_connection.get_execution_options()["session_settings"] == settings
            assert tuple((await connection.exec_driver_sql(show)).one()) == ("force_generic_plan", "off")
        else:
            assert (await connection.exec_driver_sql("SELECT 1")).scalar() == 1
    if database.is_sqlite:
        return
    for _ in range(database._pool_size + 1):  # every connection the main pool holds
        async with database.statements() as connection:
            assert tuple((await connection.exec_driver_sql(show)).one()) == ("auto", "on")
        async with database.transaction() as connection:
            assert tuple((await connection.exec_driver_sql(show)).one()) == ("auto", "on")
