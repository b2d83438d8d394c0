"""The webhook dispatcher's outbox (issue 20): claiming due deliveries with a lease, keeping a
rendered body, recording each attempt and its effect on the delivery and its endpoint.

A delivery is `pending` (due at `next_attempt_at`), `sending` (leased to a worker until
`lease_expires_at`; one whose lease ran out is claimed again: at least once), then `delivered` or
`failed`. A claim takes at most `per_endpoint` deliveries of one endpoint, counting those already
in flight anywhere, so one slow endpoint holds a few slots, never the dispatcher. Deliveries of a
disabled endpoint wait (not claimed) until it is enabled again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from postventa.store.prepared import Prepared
from postventa.store.tables import (
    UtcDateTime,
    messages,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

_D, _E = webhook_deliveries, webhook_endpoints
PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
ERROR_MAX_CHARACTERS = 1000


def _claimable(now: Any) -> Any:
    return or_(
        and_(_D.c.status == PENDING, _D.c.next_attempt_at <= now),
        and_(_D.c.status == SENDING, _D.c.lease_expires_at <= now),
    )


def _claim_statement() -> Any:
    now: Any = bindparam("now")
    rank = func.row_number().over(partition_by=_D.c.endpoint_id, order_by=(_D.c.next_attempt_at, _D.c.id))
    candidates = (
        select(_D.c.id, _D.c.endpoint_id, _D.c.next_attempt_at, rank.label("rank"))
        .select_from(_D.join(_E, _E.c.id == _D.c.endpoint_id))
        .where(_E.c.enabled.is_(True), _claimable(now))
        .subquery("candidates")
    )
    busy = (
        select(_D.c.endpoint_id, func.count().label("busy"))
        .where(_D.c.status == SENDING, _D.c.lease_expires_at > now)
        .group_by(_D.c.endpoint_id)
        .subquery("busy")
    )
    chosen = (
        select(candidates.c.id)
        .select_from(candidates.outerjoin(busy, busy.c.endpoint_id == candidates.c.endpoint_id))
        .where(candidates.c.rank + func.coalesce(busy.c.busy, 0) <= bindparam("per_endpoint"))
        .order_by(candidates.c.next_attempt_at, candidates.c.id)
        .limit(bindparam("limit"))
    )
    # The claimable condition again: on PostgreSQL a concurrent claim of the same row waits for the
    # first, then finds it no longer claimable and leaves it.
    return (
        update(_D)
        .where(_D.c.id.in_(chosen.scalar_subquery()), _claimable(now))
        .values(
            status=SENDING,
            lease_owner=bindparam("worker"),
            lease_expires_at=bindparam("lease_until"),
            attempts=_D.c.attempts + 1,
        )
        .returning(_D.c.id)
    )


_CLAIM = _claim_statement()


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery leased to this worker, with what its attempt needs (the secrets still sealed)."""

    id: int
    endpoint_id: int
    account_id: int
    url: str
    webhook_id: str
    event_type: str
    subject_id: int
    occurred_at: dt.datetime
    snapshot: str | None
    body: str | None
    attempt: int  # this attempt's number, 1 for the first
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: dt.datetime | None


async def claim_deliveries(
    connection: AsyncConnection,
    worker: str,
    now: dt.datetime,
    *,
    limit: int,
    lease_seconds: float,
    per_endpoint: int,
) -> list[ClaimedDelivery]:
    """Lease up to `limit` due deliveries (expired leases too), oldest due first, at most
    `per_endpoint` in flight per endpoint."""
    parameters = {
        "now": now,
        "worker": worker,
        "lease_until": now + dt.timedelta(seconds=lease_seconds),
        "per_endpoint": per_endpoint,
        "limit": limit,
    }
    ids = [row.id for row in await connection.execute(_CLAIM, parameters)]
    if not ids:
        return []
    rows = await connection.execute(
        select(
            _D.c.id,
            _D.c.endpoint_id,
            _E.c.account_id,
            _E.c.url,
            _D.c.webhook_id,
            _D.c.event_type,
            _D.c.subject_id,
            _D.c.occurred_at,
            _D.c.snapshot,
            _D.c.body,
            _D.c.attempts.label("attempt"),
            _E.c.secret,
            _E.c.previous_secret,
            _E.c.previous_secret_expires_at,
        )
        .select_from(_D.join(_E, _E.c.id == _D.c.endpoint_id))
        .where(_D.c.id.in_(ids))
        .order_by(_D.c.next_attempt_at, _D.c.id)
    )
    return [ClaimedDelivery(**row._asdict()) for row in rows]


async def save_body(connection: AsyncConnection, delivery_id: int, worker: str, body: str) -> bool:
    """Keep the body rendered for a delivery's first attempt (every retry sends it as it is);
    False when the lease was lost meanwhile."""
    result = await connection.execute(
        update(_D)
        .where(_D.c.id == delivery_id, _D.c.lease_owner == worker, _D.c.status == SENDING)
        .values(body=body)
    )
    return result.rowcount == 1


async def message_owner(connection: AsyncConnection, message_id: int) -> tuple[int, int] | None:
    """The (account, conversation) of a message, or None when it is gone."""
    row = (
        await connection.execute(
            select(messages.c.account_id, messages.c.conversation_id).where(messages.c.id == message_id)
        )
    ).first()
    return (row.account_id, row.conversation_id) if row is not None else None


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt as it ended: the answer's status (None: no answer) or why it failed."""

    delivery: ClaimedDelivery
    worker: str
    started_at: dt.datetime
    duration_ms: int
    http_status: int | None
    error: str | None


_INSERT_ATTEMPT = Prepared(
    insert(webhook_attempts).values(
        {
            name: bindparam(name, type_=webhook_attempts.c[name].type)
            for name in (
                "delivery_id",
                "endpoint_id",
                "attempt",
                "started_at",
                "duration_ms",
                "http_status",
                "error",
            )
        }
    )
)
_FINISH_ATTEMPT = Prepared(
    update(_D)
    .where(
        _D.c.id == bindparam("delivery_id"), _D.c.lease_owner == bindparam("worker"), _D.c.status == SENDING
    )
    .values(
        {
            name: bindparam(f"new_{name}", type_=_D.c[name].type)
            for name in (
                "status",
                "lease_owner",
                "lease_expires_at",
                "next_attempt_at",
                "last_error",
                "finished_at",
            )
        }
    )
)
# Written only when it changes something: most successes follow a success.
_SUCCEEDED = Prepared(
    update(_E)
    .where(
        _E.c.id == bindparam("endpoint_id"),
        or_(
            _E.c.failing_since.is_not(None),
            _E.c.last_success_at.is_(None),
            _E.c.last_success_at < bindparam("stale_before", type_=UtcDateTime()),
        ),
    )
    .values(last_success_at=bindparam("now", type_=UtcDateTime()), failing_since=None)
)
_FAILED = Prepared(
    update(_E)
    .where(_E.c.id == bindparam("endpoint_id"))
    .values(failing_since=func.coalesce(_E.c.failing_since, bindparam("now", type_=UtcDateTime())))
    .returning(_E.c.failing_since)
)
# How stale `last_success_at` may be before a success writes it again.
LAST_SUCCESS_RESOLUTION = dt.timedelta(seconds=1)


async def record_attempt(
    connection: AsyncConnection,
    record: AttemptRecord,
    *,
    status: str,
    next_attempt_at: dt.datetime | None,
    now: dt.datetime,
) -> bool:
    """The attempt's row, and the delivery's new `status` (delivered, pending again at
    `next_attempt_at`, or failed), fenced by the lease; False when the lease was lost (the attempt
    is recorded all the same: it happened)."""
    delivery = record.delivery
    error = record.error[:ERROR_MAX_CHARACTERS] if record.error is not None else None
    await _INSERT_ATTEMPT.execute(
        connection,
        {
            "delivery_id": delivery.id,
            "endpoint_id": delivery.endpoint_id,
            "attempt": delivery.attempt,
            "started_at": record.started_at,
            "duration_ms": record.duration_ms,
            "http_status": record.http_status,
            "error": error,
        },
    )
    finished = status in (DELIVERED, FAILED)
    result = await _FINISH_ATTEMPT.execute(
        connection,
        {
            "delivery_id": delivery.id,
            "worker": record.worker,
            "new_status": status,
            "new_lease_owner": None,
            "new_lease_expires_at": None,
            "new_next_attempt_at": next_attempt_at,
            "new_last_error": error,
            "new_finished_at": now if finished else None,
        },
    )
    return result.rowcount == 1


async def endpoint_succeeded(connection: AsyncConnection, endpoint_id: int, now: dt.datetime) -> None:
    """A success ends the endpoint's failing streak, and is its last success (to the second)."""
    parameters = {"endpoint_id": endpoint_id, "now": now, "stale_before": now - LAST_SUCCESS_RESOLUTION}
    await _SUCCEEDED.execute(connection, parameters)


async def endpoint_failed(
    connection: AsyncConnection, endpoint_id: int, now: dt.datetime
) -> dt.datetime | None:
    """A failure starts the endpoint's failing streak if none runs; when the streak began (None:
    the endpoint is gone)."""
    row = (await _FAILED.execute(connection, {"endpoint_id": endpoint_id, "now": now})).first()
    return row.failing_since if row is not None else None


async def disable_endpoint(
    connection: AsyncConnection, endpoint_id: int, reason: str, now: dt.datetime
) -> None:
    """Stop delivering to an endpoint (its deliveries wait until an operator enables it again)."""
    await connection.execute(
        update(_E)
        .where(_E.c.id == endpoint_id, _E.c.enabled.is_(True))
        .values(enabled=False, disabled_reason=reason, disabled_at=now)
    )


async def next_due_at(connection: AsyncConnection) -> dt.datetime | None:
    """When the next delivery of an enabled endpoint falls due (a pending one's time, or a lease's
    end), or None."""
    enabled = _D.join(_E, and_(_E.c.id == _D.c.endpoint_id, _E.c.enabled.is_(True)))
    pending = (
        select(func.min(_D.c.next_attempt_at))
        .select_from(enabled)
        .where(_D.c.status == PENDING)
        .scalar_subquery()
    )
    leased = (
        select(func.min(_D.c.lease_expires_at))
        .select_from(enabled)
        .where(_D.c.status == SENDING)
        .scalar_subquery()
    )
    row = (await connection.execute(select(pending.label("pending"), leased.label("leased")))).one()
    times = [value for value in (row.pending, row.leased) if value is not None]
    return min(times) if times else None


async def count_unfinished(connection: AsyncConnection) -> int:
    """Deliveries not yet delivered nor failed (pending or in flight): the metrics' pending count."""
    result = await connection.execute(
        select(func.count()).select_from(_D).where(_D.c.status.in_((PENDING, SENDING)))
    )
    return int(result.scalar_one())


async def prune_finished(connection: AsyncConnection, before: dt.datetime, *, limit: int) -> int:
    """Delete up to `limit` deliveries finished before `before`, with their attempts."""
    finished = _D.c.status.in_((DELIVERED, FAILED))  # the status leads the claim's index
    old = select(_D.c.id).where(finished, _D.c.finished_at < before).limit(limit).scalar_subquery()
    await connection.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(old)))
    result = await connection.execute(delete(_D).where(_D.c.id.in_(old)))
    return result.rowcount
