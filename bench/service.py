"""postventa as the benchmarks run it: its environment (API alone, limits out of the way), a
database made ready for sends, and what it stored."""

from __future__ import annotations

from sqlalchemy import func, select

from bench.common import BENCH_PEPPER, clean_environment
from bench.seed import OrderPools, Tenant, create_tenant, seed_send_orders
from postventa.store.engine import Database
from postventa.store.sealing import TokenCipher
from postventa.store.tables import messages

# Nowhere to deliver to, should anything try: a closed loopback port.
UNREACHABLE_MELI = "http://127.0.0.1:9"


def postventa_environment(database_url: str, token_key: str, log_level: str) -> dict[str, str]:
    """`postventa serve` measuring the API alone: no embedded worker, limits out of the way."""
    return clean_environment(
        POSTVENTA_DATABASE_URL=database_url,
        POSTVENTA_TOKEN_KEY=token_key,
        POSTVENTA_API_KEY_PEPPER=BENCH_PEPPER,
        POSTVENTA_EMBEDDED_WORKER="false",
        POSTVENTA_MELI_API_URL=UNREACHABLE_MELI,
        POSTVENTA_RATE_LIMITS="send=1000000/minute,read=1000000/minute",
        POSTVENTA_LOG_LEVEL=log_level,
    )


async def prepare_database(url: str, token_key: str, fresh: int, answered: int) -> tuple[Tenant, OrderPools]:
    """An account, its key and the orders the run will write to."""
    database = Database(url, token_cipher=TokenCipher([token_key]))
    try:
        tenant = await create_tenant(database, "bench send")
        pools = await seed_send_orders(database, tenant.account_id, fresh=fresh, answered=answered)
    finally:
        await database.dispose()
    return tenant, pools


async def stored_outbound(url: str, token_key: str) -> dict[str, int]:
    """Outbound messages per status (seeded history included)."""
    database = Database(url, token_cipher=TokenCipher([token_key]))
    try:
        async with database.transaction() as connection:
            rows = await connection.execute(
                select(messages.c.status, func.count())
                .where(messages.c.direction == "outbound")
                .group_by(messages.c.status)
            )
            return {row[0]: int(row[1]) for row in rows}
    finally:
        await database.dispose()
