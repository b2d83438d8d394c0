"""Observability: `/metrics` and `/readyz` (requests are counted and timed by the edge, edge.py).

`/metrics` is Prometheus' text exposition, open on the API's port like `/healthz`: it holds no
tenant data (counts by route template, status and outcome), but operators should not expose it
publicly (docs/operations.md). `/readyz` says whether this process can serve: the database answers,
its schema is this version's, and some delivery worker was seen recently.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postventa.api.context import Context, context_of
from postventa.domain.delivery import LinkStatus
from postventa.metrics import QueueSnapshot, exposition
from postventa.store import outbox, webhook_deliveries
from postventa.store.links import link_statuses
from postventa.store.migrate import current_revision, head_revision

PROBE_TIMEOUT_SECONDS = 5.0
OK = "ok"

log = structlog.get_logger("postventa.metrics")
router = APIRouter(include_in_schema=False)
_head_revision = functools.cache(head_revision)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus exposition: counters and histograms, plus the queue gauges read from the database."""
    snapshot = await _queue_snapshot(context_of(request))
    body, content_type = await asyncio.to_thread(exposition, snapshot, request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """200 when the database answers, its schema is current and a worker is alive; 503 saying why not."""
    checks = await readiness_checks(context_of(request))
    ready = all(result == OK for result in checks.values())
    return JSONResponse(
        {"Status": "ready" if ready else "not_ready", "Checks": checks}, status_code=200 if ready else 503
    )


async def readiness_checks(context: Context) -> dict[str, str]:
    """Database, Migrations and Worker: "ok", or the reason the check failed. Two queries at most."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            revision = await current_revision(context.database)
            head = _head_revision()
            if revision != head:
                return {
                    "Database": OK,
                    "Migrations": f"at revision {revision or 'none'}, this version needs {head}",
                    "Worker": "not checked: the schema is not current",
                }
            async with context.database.transaction() as connection:
                seen = await outbox.latest_heartbeat(connection)
    except Exception as error:  # the reason is all a probe needs; the details go to the log
        log.warning("readiness_database_failed", error=f"{type(error).__name__}: {error}")
        reason = "timed out" if isinstance(error, TimeoutError) else type(error).__name__
        return {"Database": f"unreachable ({reason})", "Migrations": "unknown", "Worker": "unknown"}
    return {"Database": OK, "Migrations": OK, "Worker": _worker_check(context, seen)}


def _worker_check(context: Context, seen: dt.datetime | None) -> str:
    if seen is None:
        return "no heartbeat from any delivery worker"
    age_seconds = (context.clock() - seen).total_seconds()
    if age_seconds > context.settings.heartbeat_max_age_seconds:
        return f"no heartbeat for {age_seconds:.0f} s"
    return OK


async def _queue_snapshot(context: Context) -> QueueSnapshot | None:
    """The outbox counts, or None (the gauges left out) when the database does not answer in time."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS), context.database.transaction() as connection:
            by_status = await outbox.count_by_status(connection)
            due = await outbox.count_due(connection, context.clock())
            links = await link_statuses(connection)
            webhooks_pending = await webhook_deliveries.count_unfinished(connection)
    except Exception as error:  # a scrape still shows the process metrics
        log.warning("metrics_database_failed", error=f"{type(error).__name__}: {error}")
        return None
    needs_relink = {account_id: status is LinkStatus.NEEDS_RELINK for account_id, status in links.items()}
    return QueueSnapshot(
        by_status=by_status, due=due, needs_relink=needs_relink, webhooks_pending=webhooks_pending
    )
