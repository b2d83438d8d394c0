"""The outbox worker: claim due messages with a lease, deliver each, record the outcome.

Any number of workers may run (processes, or tasks of one): the claim hands each message to one
of them. `wake()` makes an idle worker look at once (the API calls it after an enqueue); `stop`
ends the claims, hands back what was claimed ahead and not started (queued and due again), and
waits for the attempts in flight to be recorded. Whoever runs the worker bounds that wait (the
shutdown grace, wiring.Background) and then cancels it: a cancelled attempt's message is reconciled
with Mercado Libre once its lease runs out, as after a crash.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import math
import os
import socket
import uuid
from collections import deque
from collections.abc import Callable

import structlog

from postventa.delivery.attempt import Delivery, SellerChannel, deliver_one
from postventa.domain.attempts import Route, after_failure
from postventa.domain.delivery import DEFAULT_RETRY_POLICY, DeliveryFailure, FailureKind, RetryPolicy
from postventa.logs import log_delivery_attempt
from postventa.meli.client import MeliClient, MeliError
from postventa.metrics import DELIVERY_ATTEMPTS
from postventa.services.marketplace import Session, session_for, session_usable
from postventa.store import outbox
from postventa.store.engine import Database
from postventa.store.messages import attachment_content
from postventa.store.outbox import ClaimedMessage, DeliveryJob, FinishedAttempt

LEASE_SECONDS = 90.0  # longer than any single attempt (at most four calls with a 15 s read timeout each)
# How long a message queued by another process (an API process apart from the worker, which cannot
# wake it) waits at most before a claim looks for it: a claim on an empty queue is one index probe.
IDLE_WAIT_SECONDS = 0.25
HEARTBEAT_SECONDS = 10.0
# The share of a lease an attempt may take: the rest covers recording its outcome before another
# worker may claim the message (a lease that ran out mid-attempt would let two attempts run at once).
ATTEMPT_SHARE_OF_LEASE = 0.8
# A message claimed ahead that waited this share of its lease for a slot has it renewed first.
RENEWAL_SHARE_OF_LEASE = 0.2
# How often a claim also looks for messages whose lease expired (a worker died mid-attempt). Leases
# last LEASE_SECONDS; looking on every claim was one more statement per claim that found nothing.
EXPIRED_LEASE_CHECK_SECONDS = 1.0
# How long a worker reuses an account's session (its link and access token) without reading it
# again: reading and unsealing it for every message was a tenth of a delivery's cost. A refused
# token is replaced at once, whatever its age; a link changed meanwhile is seen within this time.
SESSION_REUSE_SECONDS = 5.0
# A message claimed ahead of a free slot (see DeliveryWorker._ready) that waited this long for one
# (every slot held by slow attempts) has its lease renewed before its attempt: the attempt then has
# the whole lease, which must outlast it (the settings check lease > 4 x the Mercado Libre timeout).
CLAIMED_AHEAD_RENEWAL_SECONDS = 5.0

log = structlog.get_logger("postventa.worker")


def utc_now() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


def new_worker_id() -> str:
    """host:pid:random — unique among workers, readable in the attempts table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class DeliveryWorker:
    """Delivers queued messages to Mercado Libre, `concurrency` at a time."""

    def __init__(
        self,
        database: Database,
        meli: MeliClient,
        *,
        concurrency: int = 8,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], dt.datetime] = utc_now,
        worker_id: str | None = None,
        retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    ) -> None:
        self.database = database
        self.meli = meli
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.worker_id = worker_id or new_worker_id()
        self.retry_policy = retry_policy
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        # Deliveries whose attempt is over and whose outcome is being written: their slot is free
        # already (on PostgreSQL the write is a good part of a delivery: docs/performance.md). Claims
        # wait while more than twice `concurrency` of them are pending.
        self._recording: set[asyncio.Task[None]] = set()
        # Messages claimed ahead of a free slot (up to `concurrency` of them), with when they were
        # claimed (the loop's clock): a slot freed starts the next one at once instead of waiting
        # for a claim, which can take nearly as long as an attempt (slots waiting for claims stood
        # idle: docs/performance.md). They are delivered before the worker stops.
        self._ready: deque[tuple[ClaimedMessage, DeliveryJob, float]] = deque()
        self.claim_ahead = concurrency
        self._sessions: dict[int, tuple[Session, float]] = {}
        # Outcomes that finish while a commit is under way share the next one.
        self._outcomes = outbox.outcome_writes(database)
        # After a claim the worker waits to be woken (an attempt finished, a message queued) unless
        # this many messages are still wanted (`_wanted`); woken, it claims them all at once.
        # Waiting instead until this many were free, to share claims, left slots standing idle
        # (docs/decisions.md).
        self._claim_batch = max(1, concurrency // 4)
        # An attempt ends before its lease does, whatever it waits for (ATTEMPT_SHARE_OF_LEASE).
        self._attempt_time_limit = lease_seconds * ATTEMPT_SHARE_OF_LEASE
        self._expired_leases_checked = -math.inf

    def wake(self) -> None:
        """Look for due messages now (called after a message is queued)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and deliver until `stop` is set; then wait for the attempts in flight."""
        log.info("worker_started", worker=self.worker_id, concurrency=self.concurrency)
        last_heartbeat = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                try:
                    if loop.time() - last_heartbeat > HEARTBEAT_SECONDS:
                        await self._heartbeat()
                        last_heartbeat = loop.time()
                    claimed = await self.run_once()
                except Exception:  # the database may be away for a moment: keep the loop alive
                    log.exception("worker_round_failed", worker=self.worker_id)
                    claimed = 0
                if claimed == 0 or self._wanted() < self._claim_batch:
                    await self._idle(stop)
        finally:
            try:
                await self._release_ready()
                await self._finish_in_flight()
            finally:
                for task in self._in_flight:  # cancelled (the grace ran out): reconciled after its lease
                    task.cancel()
                log.info("worker_stopped", worker=self.worker_id)

    async def run_once(self) -> int:
        """Claim what the free slots and the claim-ahead want and start delivering what fits;
        returns how many were claimed."""
        self._wake.clear()  # before the claim: a wake from here on is for what this claim misses
        wanted = self._wanted()
        if wanted <= 0 or len(self._recording) > 2 * self.concurrency:  # the outcomes' writes lag
            return 0
        # Expired leases (a worker died mid-attempt) are looked for now and then, not by every claim.
        now_monotonic = asyncio.get_running_loop().time()
        expired_leases = now_monotonic - self._expired_leases_checked >= EXPIRED_LEASE_CHECK_SECONDS
        # Each message's job is read with the claim, rather than in a transaction of its own (on
        # PostgreSQL, in the claim's own statement: one round trip, outbox.queue_statements).
        async with outbox.queue_statements(self.database) as connection:
            claimed = await outbox.claim_jobs(
                connection,
                self.worker_id,
                self.clock(),
                limit=wanted,
                lease_seconds=self.lease_seconds,
                expired_leases=expired_leases,
            )
        if expired_leases:
            self._expired_leases_checked = now_monotonic
        self._ready.extend((message, job, now_monotonic) for message, job in claimed)
        self._start_ready()
        return len(claimed)

    def _wanted(self) -> int:
        """How many messages a claim should take: a free slot's, and the claim-ahead's."""
        return self.concurrency + self.claim_ahead - len(self._in_flight) - len(self._ready)

    def _start_ready(self) -> None:
        """Start delivering claimed messages, oldest claim first, in the free slots."""
        while self._ready and len(self._in_flight) < self.concurrency:
            message, job, claimed_at = self._ready.popleft()
            task = asyncio.create_task(self.deliver(message, job, claimed_at=claimed_at))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)

    async def _finish_claimed(self) -> None:
        """Deliver what is claimed (in flight, or claimed ahead) and wait for every outcome."""
        while self._ready or self._in_flight or self._recording:
            self._start_ready()
            await asyncio.wait(self._in_flight | self._recording, return_when=asyncio.FIRST_COMPLETED)
        await self._outcomes.flush()

    async def _release_ready(self) -> None:
        """Hand back the messages claimed ahead and not started: due again at once, for any worker."""
        ready = [message.id for message, _job, _claimed_at in self._ready]
        self._ready.clear()
        if not ready:
            return
        try:
            async with outbox.queue_statements(self.database) as connection:
                released = await outbox.release_claimed(connection, ready, self.worker_id, self.clock())
        except Exception:  # their leases run out and they are claimed again, reconciled first
            log.exception("claimed_not_released", worker=self.worker_id, messages=len(ready))
            return
        log.info("claimed_released", worker=self.worker_id, messages=released)

    async def _finish_in_flight(self) -> None:
        """Wait for the attempts in flight and every outcome (nothing new is started)."""
        while self._in_flight or self._recording:
            await asyncio.wait(self._in_flight | self._recording, return_when=asyncio.FIRST_COMPLETED)
        await self._outcomes.flush()

    async def drain(self, timeout_seconds: float = 60.0) -> None:
        """Deliver until nothing is due (tests and one-shot runs)."""
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        while asyncio.get_running_loop().time() < deadline:
            claimed = await self.run_once()
            if self._in_flight or self._recording:
                await asyncio.wait(
                    self._in_flight | self._recording, timeout=0.5, return_when=asyncio.FIRST_COMPLETED
                )
            elif claimed == 0:
                return
        await self._finish_claimed()

    async def deliver(
        self, claimed: ClaimedMessage, job: DeliveryJob | None = None, *, claimed_at: float | None = None
    ) -> None:
        """One attempt of one message, recorded whatever happens (`claimed_at`: when it was claimed,
        on the loop's clock, if it waited for a slot since)."""
        loop = asyncio.get_running_loop()
        lease_from = loop.time() if claimed_at is None else await self._lease_from(claimed, claimed_at)
        if lease_from is None:
            return
        started = self.clock()
        try:
            delivery = await self._prepare(claimed, job)
            channel = SellerChannel(self.meli, functools.partial(self._session, delivery.job.account_id))
            # What is left of the attempt's share of the lease once the message waited for its slot.
            time_limit = self._attempt_time_limit - (loop.time() - lease_from)
            outcome = await deliver_one(
                delivery, channel, self.clock, self.retry_policy, time_limit_seconds=time_limit
            )
        except Exception as error:  # a bug must not lose the message: retry it, reconciling first
            log.exception("delivery_crashed", message_id=claimed.id, worker=self.worker_id)
            failure = DeliveryFailure(
                FailureKind.UNKNOWN, "internal_error", f"{type(error).__name__}: {error}"
            )
            outcome = after_failure(
                failure, claimed.attempts, Route.ACTION_GUIDE, self.clock(), policy=self.retry_policy
            )
        self._attempt_over()
        try:
            kept = await self._outcomes.write(
                FinishedAttempt(claimed.id, self.worker_id, claimed.attempts, outcome, started, self.clock())
            )
        except Exception:  # unrecorded: the lease runs out and the next claim reconciles first
            log.exception("outcome_not_recorded", message_id=claimed.id, worker=self.worker_id)
            return
        recorded_outcome = outcome.attempt_outcome if kept else "lease_lost"
        DELIVERY_ATTEMPTS.labels(recorded_outcome).inc()
        log_delivery_attempt(
            claimed.id, claimed.attempts, outcome.route, recorded_outcome, outcome.error_code
        )

    async def _lease_from(self, claimed: ClaimedMessage, claimed_at: float) -> float | None:
        """When the message's lease began (on the loop's clock): its claim, or now once renewed, if it
        waited for a slot for long enough that too little of the lease was left for an attempt. None
        if the lease could not be renewed: no longer this worker's, or the database unreachable; not
        attempted then, it stays with whoever holds it, or until its lease runs out."""
        now = asyncio.get_running_loop().time()
        if now - claimed_at < min(CLAIMED_AHEAD_RENEWAL_SECONDS, self.lease_seconds * RENEWAL_SHARE_OF_LEASE):
            return claimed_at
        until = self.clock() + dt.timedelta(seconds=self.lease_seconds)
        try:
            async with outbox.queue_statements(self.database) as connection:
                renewed = await outbox.renew_lease(connection, claimed.id, self.worker_id, until)
        except Exception:
            log.exception("lease_not_renewed", message_id=claimed.id, worker=self.worker_id)
            return None
        if not renewed:
            log.warning("lease_lost_before_attempt", message_id=claimed.id, worker=self.worker_id)
            return None
        return now

    async def _prepare(self, claimed: ClaimedMessage, job: DeliveryJob | None) -> Delivery:
        """The job (read with the claim, or now), its file, and the ids a reconciliation must skip."""
        if job is None:
            async with self.database.transaction() as connection:
                job = await outbox.load_job(connection, claimed.id)
        content: bytes | None = None
        known: set[str] = set()
        if job.attachment_id is not None or claimed.needs_reconcile:
            async with self.database.transaction() as connection:
                if job.attachment_id is not None:
                    content = await attachment_content(connection, job.attachment_id)
                if claimed.needs_reconcile:
                    known = await outbox.known_marketplace_ids(connection, job.account_id)
        return Delivery(claimed, job, content, frozenset(known))

    async def _session(self, account_id: int, refused_token: str | None = None) -> Session:
        """The account's session, reused for SESSION_REUSE_SECONDS unless its token was refused."""
        now, monotonic = self.clock(), asyncio.get_running_loop().time()
        reused = self._sessions.get(account_id)
        if reused is not None and refused_token is None:
            session, read_at = reused
            if monotonic - read_at < SESSION_REUSE_SECONDS and session_usable(session, now):
                return session
        try:
            found = await session_for(self.database, account_id, self.meli, now, refused_token=refused_token)
        except MeliError:
            self._sessions.pop(account_id, None)
            raise
        if found is None:  # claims only take linked accounts; the link was removed meanwhile
            self._sessions.pop(account_id, None)
            raise MeliError(
                DeliveryFailure(FailureKind.TRANSIENT, "account_not_linked", "The account is not linked.")
            )
        self._sessions[account_id] = (found, monotonic)
        return found

    async def _heartbeat(self) -> None:
        async with self.database.transaction(write=True) as connection:
            await outbox.heartbeat(connection, self.worker_id, self.clock())

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A slot is free, and a retry may be due at once (a reroute): look again."""
        self._in_flight.discard(task)
        self._recording.discard(task)
        self._start_ready()
        self._wake.set()

    def _attempt_over(self) -> None:
        """The current delivery's slot is free for the next claim while its outcome is written."""
        task = asyncio.current_task()
        if task in self._in_flight:
            self._in_flight.discard(task)
            self._recording.add(task)
            self._start_ready()
            self._wake.set()

    async def _idle(self, stop: asyncio.Event) -> None:
        """Until woken (a message queued, an attempt finished), stopped, or IDLE_WAIT_SECONDS passed."""
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        await asyncio.wait(waiters, timeout=IDLE_WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
