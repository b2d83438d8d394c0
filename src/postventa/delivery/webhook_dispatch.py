"""The webhook dispatcher (issue 20): claim due webhook deliveries with a lease, POST each, record
every attempt, retry on the schedule.

It runs beside the Mercado Libre delivery worker in every worker process (and in `serve`'s embedded
worker), as a task of its own with its own slots, connections and claims (store/webhook_deliveries.py),
so a slow or dead endpoint never delays delivery to Mercado Libre, and a claim takes at most
`per_endpoint` deliveries of one endpoint (counting those in flight anywhere), so it never delays
other endpoints. Delivery is at least once: a worker killed mid-attempt leaves a lease that runs
out, and the delivery is claimed again with the same `webhook-id` and the same body. On `stop` it
claims nothing more and waits for the attempts in flight (each ends within 10 s); whoever runs it
bounds that wait by the shutdown grace (wiring.Background) and then cancels it, as after a crash.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Callable, Sequence

import structlog

from postventa.delivery.webhook_http import PostResult, WebhookPoster
from postventa.delivery.webhook_records import AttemptWriter, FinishedAttempt
from postventa.delivery.worker import new_worker_id, utc_now
from postventa.domain import webhooks as rules
from postventa.metrics import WEBHOOK_DELIVERIES
from postventa.services.webhook_bodies import message_event_body
from postventa.store import webhook_deliveries as store
from postventa.store.engine import Database
from postventa.store.webhook_deliveries import AttemptRecord, ClaimedDelivery

# A lease outlasts one attempt (rendering, the 10 s POST, recording) with room to spare; a delivery
# whose worker died is attempted again once it runs out.
LEASE_SECONDS = 60.0
# How long an idle dispatcher waits before it looks for due deliveries (events are written by other
# processes too: the API's, the workers'). The look is one read.
IDLE_WAIT_SECONDS = 0.5
# Finished deliveries (and their attempts) are kept this long for GET /admin/webhooks/{id}/attempts.
RETENTION = dt.timedelta(days=7)
PRUNE_EVERY_SECONDS = 600.0
PRUNE_BATCH = 1000

log = structlog.get_logger("postventa.webhooks")


class WebhookDispatcher:
    """Delivers webhook events, `concurrency` at a time, `per_endpoint` at most to one endpoint."""

    def __init__(
        self,
        database: Database,
        poster: WebhookPoster,
        *,
        retry_schedule: Sequence[float] = rules.DEFAULT_RETRY_SCHEDULE_SECONDS,
        concurrency: int = 32,
        per_endpoint: int = 4,
        lease_seconds: float = LEASE_SECONDS,
        idle_wait_seconds: float = IDLE_WAIT_SECONDS,
        clock: Callable[[], dt.datetime] = utc_now,
        worker_id: str | None = None,
    ) -> None:
        self.database = database
        self.poster = poster
        self.retry_schedule = tuple(retry_schedule)
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.lease_seconds = lease_seconds
        self.idle_wait_seconds = idle_wait_seconds
        self.clock = clock
        self.worker_id = worker_id or new_worker_id()
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._next_due: dt.datetime | None = None
        # Something was due but every due delivery's endpoint had its share in flight: wait to be
        # woken by a finished attempt (or the idle wait) rather than look again at once.
        self._held_back = False
        # A claim is a write transaction: the loop claims when this many slots are free (or when
        # nothing is in flight), not on every finished attempt.
        self._claim_batch = max(1, concurrency // 4)
        # The last claim took all it asked for: more is likely due, so claim without looking first.
        self._more_due = False
        self._pruned_at = -math.inf
        self._writer = AttemptWriter(database)

    def wake(self) -> None:
        """Look for due deliveries now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and deliver until `stop` is set; then wait for the attempts in flight. Cancelled
        (the grace ran out), it cancels them: each is attempted again once its lease runs out."""
        log.info("webhooks_started", worker=self.worker_id, concurrency=self.concurrency)
        try:
            while not stop.is_set():
                try:
                    claimed = await self.run_once()
                    await self._prune_now_and_then()
                except Exception:  # the database may be away for a moment: keep the loop alive
                    log.exception("webhooks_round_failed", worker=self.worker_id)
                    claimed = 0
                if claimed == 0 or self._free() < self._claim_batch:
                    await self._idle(stop)
            while self._in_flight:
                await asyncio.wait(self._in_flight)
        finally:
            for task in self._in_flight:
                task.cancel()
            log.info("webhooks_stopped", worker=self.worker_id)

    async def run_once(self) -> int:
        """Claim what the free slots take, when something is due, and start each; how many."""
        self._wake.clear()
        free = self._free()
        if free <= 0:
            return 0
        now = self.clock()
        if not self._more_due:
            async with self.database.transaction() as connection:
                self._next_due = await store.next_due_at(connection)
            if self._next_due is None or self._next_due > now:
                return 0
        async with self.database.transaction(write=True) as connection:
            claimed = await store.claim_deliveries(
                connection,
                self.worker_id,
                now,
                limit=free,
                lease_seconds=self.lease_seconds,
                per_endpoint=self.per_endpoint,
            )
        self._held_back = not claimed
        self._more_due = len(claimed) == free
        for delivery in claimed:
            task = asyncio.create_task(self._deliver_logged(delivery))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return len(claimed)

    def _free(self) -> int:
        return self.concurrency - len(self._in_flight)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._free() >= self._claim_batch or not self._in_flight:
            self._wake.set()  # slots, and their endpoints' shares, are free

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait to be woken (slots freed, `wake()`), for the next due time, or the idle wait."""
        wait = self.idle_wait_seconds
        slots_wanted = self._free() < self._claim_batch
        if self._next_due is not None and not self._held_back and not slots_wanted:
            wait = min(wait, max(0.0, (self._next_due - self.clock()).total_seconds()))
        woken = asyncio.ensure_future(self._wake.wait())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait(
                [woken, stopping], timeout=max(wait, 0.01), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            woken.cancel()
            stopping.cancel()

    async def drain(self, timeout_seconds: float = 30.0) -> None:
        """Deliver until nothing is due now and nothing is in flight (tests, one-shot runs)."""
        async with asyncio.timeout(timeout_seconds):
            while True:
                claimed = await self.run_once()
                if self._in_flight:
                    await asyncio.wait(self._in_flight)
                elif claimed == 0:
                    return

    async def _deliver_logged(self, delivery: ClaimedDelivery) -> None:
        try:
            await self.deliver(delivery)
        except Exception:  # its lease runs out and it is attempted again
            log.exception(
                "webhook_delivery_crashed", delivery_id=delivery.id, endpoint_id=delivery.endpoint_id
            )

    async def deliver(self, delivery: ClaimedDelivery) -> None:
        """One attempt: the body (rendered and kept at the first), signed, POSTed, recorded."""
        started = self.clock()
        body = delivery.body if delivery.body is not None else await self._render(delivery)
        if body is None:
            result = PostResult(None, "its message or order no longer exists", 0)
            await self._record(delivery, started, result, give_up=True)
            return
        timestamp = int(started.timestamp())
        payload = body.encode("utf-8")
        cipher = self.database.token_cipher
        secrets = rules.signing_secrets(
            cipher.open(delivery.secret),
            cipher.open(delivery.previous_secret) if delivery.previous_secret is not None else None,
            delivery.previous_secret_expires_at,
            started,
        )
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": rules.signature_header(secrets, delivery.webhook_id, timestamp, payload),
        }
        result = await self.poster.post(delivery.url, payload, headers)
        await self._record(delivery, started, result)

    async def _render(self, delivery: ClaimedDelivery) -> str | None:
        """A message event's body, kept so that every retry sends these very bytes."""
        async with self.database.transaction(write=True) as connection:
            body = await message_event_body(
                connection, delivery.event_type, delivery.subject_id, delivery.snapshot, delivery.occurred_at
            )
            if body is not None:
                await store.save_body(connection, delivery.id, self.worker_id, body)
        return body

    async def _record(
        self, delivery: ClaimedDelivery, started: dt.datetime, result: PostResult, *, give_up: bool = False
    ) -> None:
        now = self.clock()
        success = rules.is_success(result.http_status) and result.error is None
        retry_at = (
            None if success or give_up else rules.next_attempt_at(delivery.attempt, self.retry_schedule, now)
        )
        outcome = "delivered" if success else "retry" if retry_at is not None else "failed"
        status = {"delivered": store.DELIVERED, "retry": store.PENDING, "failed": store.FAILED}[outcome]
        record = AttemptRecord(
            delivery, self.worker_id, started, result.duration_ms, result.http_status, result.error
        )
        recorded = await self._writer.write(FinishedAttempt(record, status, retry_at, success, now))
        WEBHOOK_DELIVERIES.labels(outcome).inc()
        log.info(
            "webhook_attempt",
            delivery_id=delivery.id,
            endpoint_id=delivery.endpoint_id,
            webhook_id=delivery.webhook_id,
            event_type=delivery.event_type,
            attempt=delivery.attempt,
            http_status=result.http_status,
            duration_ms=result.duration_ms,
            outcome=outcome if recorded.kept else "lease_lost",
            error=result.error,
        )
        if recorded.disabled:
            log.warning("webhook_endpoint_disabled", endpoint_id=delivery.endpoint_id)

    async def _prune_now_and_then(self) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = loop_time
        async with self.database.transaction(write=True) as connection:
            pruned = await store.prune_finished(connection, self.clock() - RETENTION, limit=PRUNE_BATCH)
        if pruned:
            log.info("webhooks_pruned", deliveries=pruned)
