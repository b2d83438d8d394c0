"""The composition root's helpers: the database and the Mercado Libre client the settings describe."""

from __future__ import annotations

from postventa.config import Settings
from postventa.meli.client import MeliClient
from postventa.store.engine import Database
from postventa.store.sealing import load_token_cipher


def open_database(settings: Settings) -> Database:
    """The configured database, with the key that seals Mercado Libre credentials."""
    return Database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        token_cipher=load_token_cipher(settings.token_key, settings.token_key_file),
    )


def meli_client(settings: Settings, base_url: str | None = None) -> MeliClient:
    """A Mercado Libre client paced and timed as configured."""
    return MeliClient(
        base_url or settings.meli_api_url,
        read_timeout_seconds=settings.meli_timeout_seconds,
        reads_per_minute=settings.meli_requests_per_minute,
        writes_per_minute=settings.meli_requests_per_minute,
    )
