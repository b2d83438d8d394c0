"""The composition root's helpers: the database and the Mercado Libre client the settings describe."""

from __future__ import annotations

from postventa.config import Settings
from postventa.meli.client import MeliClient
from postventa.meli.pacing import CallBudget, redis_budget_storage
from postventa.store.engine import Database
from postventa.store.meli_budget import SqlBudgetStorage
from postventa.store.sealing import load_token_cipher


def open_database(settings: Settings) -> Database:
    """The configured database, with the key that seals Mercado Libre credentials."""
    return Database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        token_cipher=load_token_cipher(settings.token_key, settings.token_key_file),
    )


def meli_client(
    settings: Settings, base_url: str | None = None, *, database: Database | None = None
) -> MeliClient:
    """A Mercado Libre client paced and timed as configured. Its call budget is shared by every
    process of the application through Redis (POSTVENTA_REDIS_URL) or else through `database`;
    with neither, it is this process's alone."""
    return MeliClient(
        base_url or settings.meli_api_url,
        read_timeout_seconds=settings.meli_timeout_seconds,
        budget=meli_call_budget(settings, database),
    )


def meli_call_budget(settings: Settings, database: Database | None = None) -> CallBudget:
    """Mercado Libre's budget per application and endpoint, in Redis, the database or memory."""
    per_minute, cool_down = settings.meli_requests_per_minute, settings.meli_cool_down_seconds
    if settings.redis_url is not None:
        redis, close = redis_budget_storage(settings.redis_url)
        return CallBudget(per_minute, per_minute, redis, cool_down_seconds=cool_down, close=close)
    storage = SqlBudgetStorage(database=database) if database is not None else None
    return CallBudget(per_minute, per_minute, storage, cool_down_seconds=cool_down)
