"""Webhook endpoints and their attempts as the admin surface reads and changes them (issue 20).

The secrets stay sealed here (store/sealing.py seals and opens them in the services); an endpoint
as read for the admin surface carries none.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.domain.webhooks import events_of_mask
from postventa.store.tables import webhook_attempts, webhook_deliveries, webhook_endpoints

_E = webhook_endpoints


@dataclass(frozen=True)
class StoredEndpoint:
    """An endpoint's row, less its secrets: what the admin surface shows."""

    id: int
    account_id: int
    url: str
    events_mask: int
    enabled: bool
    disabled_reason: str | None
    disabled_at: dt.datetime | None
    created_at: dt.datetime
    last_success_at: dt.datetime | None
    failing_since: dt.datetime | None
    # While a rotated secret still signs beside the new one: until then (None: no overlap now).
    previous_secret_expires_at: dt.datetime | None

    @property
    def events(self) -> tuple[str, ...]:
        """The event types it takes, by name."""
        return events_of_mask(self.events_mask)


_ENDPOINT_COLUMNS = (
    _E.c.id,
    _E.c.account_id,
    _E.c.url,
    _E.c.events_mask,
    _E.c.enabled,
    _E.c.disabled_reason,
    _E.c.disabled_at,
    _E.c.created_at,
    _E.c.last_success_at,
    _E.c.failing_since,
    _E.c.previous_secret_expires_at,
)


def _endpoint(row: Any) -> StoredEndpoint:
    return StoredEndpoint(
        id=row.id,
        account_id=row.account_id,
        url=row.url,
        events_mask=row.events_mask,
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        created_at=row.created_at,
        last_success_at=row.last_success_at,
        failing_since=row.failing_since,
        previous_secret_expires_at=row.previous_secret_expires_at,
    )


async def insert_endpoint(
    connection: AsyncConnection,
    *,
    account_id: int,
    url: str,
    events_mask: int,
    sealed_secret: str,
    now: dt.datetime,
) -> StoredEndpoint:
    """A new, enabled endpoint."""
    result = await connection.execute(
        insert(_E)
        .values(
            account_id=account_id,
            url=url,
            events_mask=events_mask,
            enabled=True,
            secret=sealed_secret,
            created_at=now,
        )
        .returning(*_ENDPOINT_COLUMNS)
    )
    return _endpoint(result.one())


async def count_endpoints(connection: AsyncConnection, account_id: int) -> int:
    """How many endpoints the account has."""
    result = await connection.execute(
        select(func.count()).select_from(_E).where(_E.c.account_id == account_id)
    )
    return int(result.scalar_one())


async def list_endpoints(connection: AsyncConnection, account_id: int) -> list[StoredEndpoint]:
    """The account's endpoints, oldest first."""
    rows = await connection.execute(
        select(*_ENDPOINT_COLUMNS).where(_E.c.account_id == account_id).order_by(_E.c.id)
    )
    return [_endpoint(row) for row in rows]


async def get_endpoint(connection: AsyncConnection, endpoint_id: int) -> StoredEndpoint | None:
    """One endpoint, or None."""
    row = (await connection.execute(select(*_ENDPOINT_COLUMNS).where(_E.c.id == endpoint_id))).first()
    return _endpoint(row) if row is not None else None


# What an endpoint's update may set (the service decides the values).
UPDATABLE_COLUMNS = frozenset(
    {"url", "events_mask", "enabled", "disabled_reason", "disabled_at", "failing_since"}
)


async def update_endpoint(
    connection: AsyncConnection, endpoint_id: int, values: dict[str, Any]
) -> StoredEndpoint | None:
    """Set some of UPDATABLE_COLUMNS; the endpoint as it is then, or None when there is none."""
    unknown = set(values) - UPDATABLE_COLUMNS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    result = await connection.execute(
        update(_E).where(_E.c.id == endpoint_id).values(**values).returning(*_ENDPOINT_COLUMNS)
    )
    row = result.first()
    return _endpoint(row) if row is not None else None


async def delete_endpoint(connection: AsyncConnection, endpoint_id: int) -> bool:
    """Delete an endpoint with its deliveries and attempts; False when there was none."""
    # Explicitly, children first: SQLite enforces ON DELETE CASCADE only with foreign keys on.
    await connection.execute(delete(webhook_attempts).where(webhook_attempts.c.endpoint_id == endpoint_id))
    await connection.execute(
        delete(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
    )
    result = await connection.execute(delete(_E).where(_E.c.id == endpoint_id))
    return result.rowcount == 1


@dataclass(frozen=True)
class SealedSecrets:
    """An endpoint's secrets as stored: the current one, and the rotated one while it still signs."""

    secret: str
    previous_secret: str | None
    previous_secret_expires_at: dt.datetime | None


async def sealed_secrets(connection: AsyncConnection, endpoint_id: int) -> SealedSecrets | None:
    """The endpoint's sealed secrets, or None when there is no such endpoint."""
    row = (
        await connection.execute(
            select(_E.c.secret, _E.c.previous_secret, _E.c.previous_secret_expires_at).where(
                _E.c.id == endpoint_id
            )
        )
    ).first()
    return SealedSecrets(row.secret, row.previous_secret, row.previous_secret_expires_at) if row else None


async def replace_secret(
    connection: AsyncConnection,
    endpoint_id: int,
    *,
    sealed_secret: str,
    sealed_previous: str,
    previous_expires_at: dt.datetime,
) -> StoredEndpoint | None:
    """Store a new secret, the old one signing beside it until `previous_expires_at`."""
    result = await connection.execute(
        update(_E)
        .where(_E.c.id == endpoint_id)
        .values(
            secret=sealed_secret,
            previous_secret=sealed_previous,
            previous_secret_expires_at=previous_expires_at,
        )
        .returning(*_ENDPOINT_COLUMNS)
    )
    row = result.first()
    return _endpoint(row) if row is not None else None


@dataclass(frozen=True)
class StoredAttempt:
    """One attempt of one delivery, with its event."""

    id: int
    delivery_id: int
    webhook_id: str
    event_type: str
    attempt: int
    started_at: dt.datetime
    duration_ms: int
    http_status: int | None
    error: str | None
    delivery_status: str


async def list_attempts(
    connection: AsyncConnection, endpoint_id: int, *, limit: int, offset: int
) -> list[StoredAttempt]:
    """The endpoint's attempts, newest first."""
    a, d = webhook_attempts, webhook_deliveries
    rows = await connection.execute(
        select(
            a.c.id,
            a.c.delivery_id,
            d.c.webhook_id,
            d.c.event_type,
            a.c.attempt,
            a.c.started_at,
            a.c.duration_ms,
            a.c.http_status,
            a.c.error,
            d.c.status.label("delivery_status"),
        )
        .select_from(a.join(d, d.c.id == a.c.delivery_id))
        .where(a.c.endpoint_id == endpoint_id)
        .order_by(a.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [StoredAttempt(**row._asdict()) for row in rows]
