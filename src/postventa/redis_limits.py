"""`limits`' Redis storage as every part of postventa uses it (the API's rate limits, the Mercado
Libre call budget, the console's sign-in throttle): one connection pool per use, short timeouts and
one quick retry (a pooled connection Redis closed), so that a Redis that is away fails the caller
within about a second instead of holding it through backoff; each caller decides what that failure
means for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from limits.aio.storage import RedisStorage
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

REDIS_TIMEOUT_SECONDS = 1.0  # to connect and for each answer
_STORAGE_SCHEMES = {"redis": "async+redis", "rediss": "async+rediss", "unix": "async+redis+unix"}


def storage_uri(redis_url: str) -> str:
    """The `limits` storage URI for POSTVENTA_REDIS_URL; ValueError for a scheme that is not Redis's."""
    scheme, separator, rest = redis_url.partition("://")
    storage_scheme = _STORAGE_SCHEMES.get(scheme.lower())
    if not separator or storage_scheme is None:
        raise ValueError("POSTVENTA_REDIS_URL must be a redis://, rediss:// or unix:// URL")
    return f"{storage_scheme}://{rest}"


def redis_storage(redis_url: str, key_prefix: str) -> tuple[RedisStorage, Callable[[], Awaitable[None]]]:
    """A `limits` storage in the Redis of `redis_url`, its keys under `key_prefix`, and what closes
    its connections."""
    uri = storage_uri(redis_url)  # refuse other schemes before redis-py reads the URL
    pool = ConnectionPool.from_url(
        redis_url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1),
    )
    options: dict[str, Any] = {"connection_pool": pool}  # the storage's options are typed narrowly
    storage = RedisStorage(
        uri, implementation="redispy", wrap_exceptions=True, key_prefix=key_prefix, **options
    )
    return storage, pool.aclose
