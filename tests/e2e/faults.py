"""A fault run: many messages over distinct conversations while Mercado Libre (the emulator) misbehaves
one way at a time.

Two sorts of kind. A rate fault (`FAULT_KINDS`) answers a fifth of every call with one failure: a 429,
a 409 lock, a 451, a 5xx, a delay, a timeout, a dropped connection, a lost response. A scenario
(`SCENARIOS`) plays one of Mercado Libre's own conditions over the run: the seller revokes the
application partway (`revoked_grant`), a fifth of the conversations are blocked by payment for a while
(`blocks`), moderation gives its verdict seconds after the send (`late_moderation`).

Shared by the CI test (small) and scripts/fault_run (the full run whose results are in docs/).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from postventa.emulator.config import REQUESTS_PER_MINUTE
from postventa.store.engine import Database
from tests.conftest import admin_headers
from tests.e2e.conftest import MELI_TIMEOUT_SECONDS, Seller, World, wait_for

UNLIMITED = 10_000_000

FAULT_KINDS: dict[str, dict[str, Any]] = {
    "429": {"Kind": "429"},
    "429_retry_after": {"Kind": "429", "RetryAfterSeconds": 1},
    "409": {"Kind": "409"},
    "451": {"Kind": "451"},
    "500": {"Kind": "500"},
    "503": {"Kind": "503"},
    "delay": {"Kind": "delay", "DelaySeconds": 0.3},
    "timeout": {"Kind": "timeout", "DelaySeconds": MELI_TIMEOUT_SECONDS + 1},
    "reset": {"Kind": "reset"},
    "lost_response": {"Kind": "lost_response"},
}
SCENARIOS = ("revoked_grant", "blocks", "late_moderation")
ALL_KINDS = (*FAULT_KINDS, *SCENARIOS)
# The one way a message may end `failed` under a kind: a 451 on a send is Mercado Libre saying the buyer
# deactivated the account, which no retry changes. Any other `failed` is a temporary condition given up on.
PERMANENT_ANSWERS: dict[str, frozenset[str]] = {"451": frozenset({"buyer_account_deactivated"})}
NOT_SETTLED = frozenset({"queued", "sending", "pending_moderation"})
# Unreadable caps keep postventa accepting first contacts that Mercado Libre then refuses at delivery
# (a blocked conversation's caps are 0, and postventa would refuse the send at once).
CAPS_UNREADABLE = {"Route": "GET /messages/action_guide/packs/*/caps_available", "Kind": "500", "Rate": 1.0}
# How long a waiting message is watched: more than the e2e server's retry wait (1 s) and inbound poll
# (2 s), so anything that would fail it or send it anyway has come round.
HOLD_SECONDS = 3.0
PAYMENT_BLOCK = "blocked_by_payment"
PAYMENT_BLOCK_CODE = "conversation_blocked_by_payment"
# Texts the emulator's moderation rejects as personal data (an email address), as Mercado Libre does.
REJECTED_REASON = "PERSONAL_DATA"
PENDING_MODERATION_SECONDS = 2.0
# postventa learns a late verdict by reading the message again, within the inbound poll's budget of a
# fifth of Mercado Libre's 500 reads a minute: about one verdict every 2 s in the e2e server. So a fifth
# of a run's messages (at least 3) are judged late, which keeps a 300-message run within minutes; the
# rest are sent after them and judged at once.
LATE_MODERATED_SHARE = 5
LATE_MODERATED_MIN = 3


def late_moderated(messages: int) -> int:
    """How many of a `late_moderation` run's messages are judged late."""
    return min(messages, max(LATE_MODERATED_MIN, messages // LATE_MODERATED_SHARE))


READ_CONCURRENCY = 20


@dataclass
class DeliveryTally:
    """What a long run observed: final statuses, and sends Mercado Libre applied per conversation."""

    messages: int
    statuses: Counter[str] = field(default_factory=Counter)
    applied_per_conversation: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def duplicates(self) -> int:
        return sum(1 for count in self.applied_per_conversation.values() if count > 1)

    @property
    def missing(self) -> int:
        return self.messages - sum(1 for count in self.applied_per_conversation.values() if count >= 1)


@dataclass
class FaultRunResult(DeliveryTally):
    """What a fault run observed.

    `final` is each conversation's message as postventa shows it at the end. A message Mercado Libre
    refused for good (the kind's permanent answer) is not missing; one that ended `failed` although
    Mercado Libre applied it is counted in `failed_but_applied`.
    """

    kind: str = ""
    faults_injected: int = 0
    retry_after_violations: int = 0
    final: dict[int, dict[str, Any]] = field(default_factory=dict)
    permanent_codes: frozenset[str] = frozenset()
    # Scenarios: messages seen waiting `queued` while the condition held (and how many of them failed
    # or were sent meanwhile), the link's status then, messages seen `pending_moderation`.
    waited: int = 0
    changed_while_waiting: int = 0
    link_status_while_revoked: str | None = None
    seen_pending: int = 0
    expected_moderated: int = 0

    @property
    def missing(self) -> int:
        return sum(
            1
            for conversation, message in self.final.items()
            if self.applied_per_conversation[conversation] == 0 and not self._refused_for_good(message)
        )

    @property
    def failed_codes(self) -> Counter[str]:
        return Counter(str(m["ErrorCode"]) for m in self.final.values() if m["Status"] == "failed")

    @property
    def failed_temporary(self) -> int:
        """Messages that ended `failed` for anything but the kind's permanent answer."""
        return sum(
            1
            for message in self.final.values()
            if message["Status"] == "failed" and not self._refused_for_good(message)
        )

    @property
    def failed_but_applied(self) -> int:
        return sum(
            1
            for conversation, message in self.final.items()
            if message["Status"] == "failed" and self.applied_per_conversation[conversation] > 0
        )

    @property
    def moderation_reasons(self) -> Counter[str]:
        return Counter(str(m["ModerationReason"]) for m in self.final.values() if m["Status"] == "moderated")

    def _refused_for_good(self, message: dict[str, Any]) -> bool:
        return message["Status"] == "failed" and message["ErrorCode"] in self.permanent_codes

    def to_report(self, backend: str) -> dict[str, Any]:
        """One JSON line of docs/results/faults.jsonl."""
        record: dict[str, Any] = {
            "run": "faults",
            "backend": backend,
            "kind": self.kind,
            "messages": self.messages,
            "statuses": dict(self.statuses),
            "faults_injected": self.faults_injected,
            "duplicates": self.duplicates,
            "missing": self.missing,
            "failed_codes": dict(self.failed_codes),
            "failed_temporary": self.failed_temporary,
            "failed_but_applied": self.failed_but_applied,
            "retry_after_violations": self.retry_after_violations,
            "seconds": round(self.seconds, 1),
        }
        if self.kind == "late_moderation":
            record["seen_pending_moderation"] = self.seen_pending
            record["moderation_reasons"] = dict(self.moderation_reasons)
        if self.kind in ("revoked_grant", "blocks"):
            record["waited_queued"] = self.waited
            record["changed_while_waiting"] = self.changed_while_waiting
        if self.kind == "revoked_grant":
            record["link_status_while_revoked"] = self.link_status_while_revoked
        return record


def is_send(entry: dict[str, Any]) -> bool:
    path = entry["Path"]
    return entry["Method"] == "POST" and (
        path.endswith("/option") or ("/messages/packs/" in path and "/sellers/" in path)
    )


def conversation_of(path: str) -> int:
    parts = path.strip("/").split("/")
    return int(parts[parts.index("packs") + 1])


@dataclass
class _Run:
    """One run's seller, its orders (postventa's id → Mercado Libre conversation) and journal mark."""

    world: World
    seller: Seller
    conversation_by_order: dict[int, int]
    result: FaultRunResult
    mark: int = 0
    started: float = 0.0

    @property
    def order_ids(self) -> list[int]:
        return list(self.conversation_by_order)

    async def queue(self, order_ids: list[int], text: Callable[[int], str] | None = None) -> None:
        """Send one message on each order (OTHER, free text), all at once; each must be accepted."""

        async def send(order_id: int) -> None:
            message = text(order_id) if text is not None else f"Hola {order_id}"
            response = await self.world.api.post(
                f"/v2/orders/{order_id}/messages",
                params=self.seller.credentials(messageOptions=4, message=message),
            )
            assert response.status_code == 200, response.text

        await asyncio.gather(*(send(order_id) for order_id in order_ids))

    async def messages(self, order_ids: list[int] | None = None) -> dict[int, dict[str, Any]]:
        """The latest message of each order as postventa shows it."""
        gate = asyncio.Semaphore(READ_CONCURRENCY)

        async def read(order_id: int) -> tuple[int, dict[str, Any]]:
            async with gate:
                return order_id, (await self.world.conversation(self.seller, order_id))[-1]

        wanted = self.order_ids if order_ids is None else order_ids
        return dict(await asyncio.gather(*(read(order_id) for order_id in wanted)))

    async def applied(self) -> Counter[int]:
        """Sends Mercado Libre applied since the mark, per conversation of this run."""
        conversations = set(self.conversation_by_order.values())
        applied: Counter[int] = Counter()
        for entry in await self.world.journal(self.mark):
            if is_send(entry) and entry["Applied"] and conversation_of(entry["Path"]) in conversations:
                applied[conversation_of(entry["Path"])] += 1
        return applied

    async def settle(
        self, timeout: float, on_read: Callable[[dict[int, dict[str, Any]]], None] | None = None
    ) -> None:
        """Wait until no message is queued, sending or awaiting moderation; record the final state."""
        result = self.result
        latest: dict[int, dict[str, Any]] = {}

        async def settled() -> bool:
            nonlocal latest
            latest = await self.messages()
            if on_read is not None:
                on_read(latest)
            result.statuses = Counter(message["Status"] for message in latest.values())
            return not any(result.statuses[status] for status in NOT_SETTLED)

        try:
            await wait_for(settled, timeout=timeout, every=0.5)
        except AssertionError:
            stuck = [m for m in latest.values() if m["Status"] in NOT_SETTLED]
            raise AssertionError(f"not settled: {dict(result.statuses)}; e.g. {stuck[:3]}") from None
        result.seconds = asyncio.get_running_loop().time() - self.started
        result.final = {self.conversation_by_order[order_id]: message for order_id, message in latest.items()}

    async def tally(self, retry_after: float | None = None) -> FaultRunResult:
        """Count Mercado Libre's applied sends and injected faults since the mark (faults cleared)."""
        await self.world.faults([])
        result = self.result
        conversations = set(self.conversation_by_order.values())
        entries = [entry for entry in await self.world.journal(self.mark) if entry["Method"] != "NOTIFY"]
        sends = [
            entry for entry in entries if is_send(entry) and conversation_of(entry["Path"]) in conversations
        ]
        for entry in sends:
            if entry["Applied"]:
                result.applied_per_conversation[conversation_of(entry["Path"])] += 1
        result.faults_injected = sum(1 for entry in entries if entry.get("Fault"))
        result.retry_after_violations = _retry_after_violations(sends, retry_after)
        return result


async def run_faults(
    world: World,
    kind: str,
    messages: int,
    *,
    rate: float = 0.2,
    timeout: float = 120.0,
    database: Database | None = None,
) -> FaultRunResult:
    """Queue `messages` sends on distinct orders under one kind; wait until all settle; tally.

    Mercado Libre's own per-application limit is lifted for the run: the run is about the injected
    faults and conditions (429s included, as a fault kind), and the e2e server paces far above 500
    calls a minute. `revoked_grant` needs the `database` to read the link's application credentials,
    which the operator gives again when linking the account anew.
    """
    await world.configure(ReadsPerMinute=UNLIMITED, WritesPerMinute=UNLIMITED)
    try:
        run = await _prepare(world, kind, messages)
        if kind in FAULT_KINDS:
            return await _rate_fault(run, FAULT_KINDS[kind], rate=rate, timeout=timeout)
        if kind == "revoked_grant":
            assert database is not None, "revoked_grant re-links the account: pass the database"
            return await _revoked_grant(run, database, timeout=timeout)
        if kind == "blocks":
            return await _blocks(run, timeout=timeout)
        if kind == "late_moderation":
            return await _late_moderation(run, timeout=timeout)
        raise ValueError(f"unknown fault kind {kind!r}")
    finally:
        await world.faults([])
        await world.configure(
            ReadsPerMinute=REQUESTS_PER_MINUTE,
            WritesPerMinute=REQUESTS_PER_MINUTE,
            PendingModerationSeconds=None,
        )


async def _prepare(world: World, kind: str, messages: int) -> _Run:
    seller = await world.linked_seller("MLA")
    created = [await world.emulator_order(seller) for _ in range(messages)]
    await world.sync(seller)
    conversation_by_order = {
        await world.local_order_id(seller, item["OrderId"]): int(item["PackId"] or item["OrderId"])
        for item in created
    }
    result = FaultRunResult(
        kind=kind, messages=messages, permanent_codes=PERMANENT_ANSWERS.get(kind, frozenset())
    )
    run = _Run(world, seller, conversation_by_order, result)
    run.mark = await world.journal_mark()
    run.started = asyncio.get_running_loop().time()
    return run


async def _rate_fault(run: _Run, fault: dict[str, Any], *, rate: float, timeout: float) -> FaultRunResult:
    await run.world.faults([{"Route": "*", "Rate": rate, **fault}])
    await run.queue(run.order_ids)
    await run.settle(timeout)
    return await run.tally(fault.get("RetryAfterSeconds"))


async def _revoked_grant(run: _Run, database: Database, *, timeout: float) -> FaultRunResult:
    """Two thirds queued; once a third of all are applied the seller revokes the application (some
    sends are then in flight at scale), and the last third is queued after it: every unsent message
    must wait `queued` while the account shows `needs_relink`; then the seller grants the
    application again, the operator links the account again, and everything goes, once."""
    world, seller, result = run.world, run.seller, run.result
    order_ids = run.order_ids
    early = order_ids[: max(1, 2 * len(order_ids) // 3)]
    late = order_ids[len(early) :]
    await run.queue(early)

    async def a_third_applied() -> bool:
        return sum((await run.applied()).values()) >= max(1, len(order_ids) // 3)

    await wait_for(a_third_applied, timeout=timeout, every=0.05)
    revoked = await world.meli.post(f"/_emulator/sellers/{seller.seller_id}/revoke")
    assert revoked.status_code == 200, revoked.text
    await run.queue(late)

    async def link_status() -> str | None:
        response = await world.api.get(f"/admin/accounts/{seller.account_id}", headers=admin_headers())
        assert response.status_code == 200, response.text
        link = response.json()["MercadoLibre"]
        return None if link is None else str(link["Status"])

    async def needs_relink() -> bool:
        return await link_status() == "needs_relink"

    async def only_sent_or_queued() -> bool:
        return {m["Status"] for m in (await run.messages()).values()} <= {"sent", "queued", "failed"}

    await wait_for(needs_relink, timeout=timeout)
    await wait_for(only_sent_or_queued, timeout=timeout)
    before = await run.messages()
    await asyncio.sleep(HOLD_SECONDS)
    after = await run.messages()
    result.link_status_while_revoked = await link_status()
    waiting = [order_id for order_id, message in before.items() if message["Status"] == "queued"]
    result.waited = len(waiting)
    result.changed_while_waiting = sum(1 for order_id in waiting if after[order_id]["Status"] != "queued")
    result.changed_while_waiting += sum(1 for message in after.values() if message["Status"] == "failed")

    await world.relink(seller, database)
    await run.settle(timeout)
    return await run.tally()


async def _blocks(run: _Run, *, timeout: float) -> FaultRunResult:
    """A fifth of the conversations blocked by payment before their messages are queued: those wait
    `queued` (ErrorCode conversation_blocked_by_payment, no attempt used) while the rest go, and keep
    waiting for HOLD_SECONDS; the blocks are lifted and every message goes, once.

    A waiting message is tried again every second, so a read may find it `sending` for a moment:
    each blocked message must be seen waiting once, and never in any state but waiting or `sending`.
    """
    world, result = run.world, run.result
    blocked_orders = run.order_ids[::5]
    blocked = [run.conversation_by_order[order_id] for order_id in blocked_orders]
    seen_waiting: set[int] = set()
    strayed: set[int] = set()

    def watch(read: dict[int, dict[str, Any]]) -> None:
        for order_id in blocked_orders:
            status, code, attempts = (
                read[order_id]["Status"],
                read[order_id]["ErrorCode"],
                read[order_id]["Attempts"],
            )
            if status == "queued" and code == PAYMENT_BLOCK_CODE and attempts == 0:
                seen_waiting.add(order_id)
            elif status not in ("queued", "sending"):
                strayed.add(order_id)  # sent or failed while blocked
            elif status == "queued" and order_id in seen_waiting:
                strayed.add(order_id)  # waiting for another reason, or an attempt used up

    await world.faults([CAPS_UNREADABLE])
    try:
        for pack in blocked:
            response = await world.meli.put(f"/_emulator/packs/{pack}/block", json={"Reason": PAYMENT_BLOCK})
            assert response.status_code == 200, response.text
        await run.queue(run.order_ids)
        read: dict[int, dict[str, Any]] = {}

        async def blocked_wait_and_the_rest_went() -> bool:
            nonlocal read
            read = await run.messages()
            watch(read)
            rest = (message for order_id, message in read.items() if order_id not in blocked_orders)
            return len(seen_waiting) == len(blocked_orders) and all(m["Status"] == "sent" for m in rest)

        try:
            await wait_for(blocked_wait_and_the_rest_went, timeout=timeout, every=0.5)
        except AssertionError:
            seen = Counter(
                (order_id in blocked_orders, m["Status"], m["ErrorCode"], m["Attempts"])
                for order_id, m in read.items()
            )
            raise AssertionError(f"blocked ones not waiting, or the rest not sent: {dict(seen)}") from None
        held_until = asyncio.get_running_loop().time() + HOLD_SECONDS
        while asyncio.get_running_loop().time() < held_until:
            await asyncio.sleep(0.5)
            watch(await run.messages(blocked_orders))
        result.waited = len(seen_waiting - strayed)
        result.changed_while_waiting = len(strayed)
    finally:
        for pack in blocked:
            await world.meli.delete(f"/_emulator/packs/{pack}/block")
    await run.settle(timeout)
    return await run.tally()


async def _late_moderation(run: _Run, *, timeout: float) -> FaultRunResult:
    """Moderation judges PENDING_MODERATION_SECONDS after the send: the late-moderated messages
    (`late_moderated`) go `pending_moderation`, then `sent`, or `moderated` (PERSONAL_DATA) for the
    one in five whose text carries an email address; the others are sent after them and judged at
    once. Nothing settles while a verdict is unknown."""
    world, result = run.world, run.result
    late = run.order_ids[: late_moderated(len(run.order_ids))]
    at_once = run.order_ids[len(late) :]
    rejected = set(late[::5])
    result.expected_moderated = len(rejected)

    def text(order_id: int) -> str:
        if order_id in rejected:
            return f"Hola, escribime a comprador{order_id}@correo.com"
        return f"Hola {order_id}"

    pending_seen: set[int] = set()

    def note_pending(read: dict[int, dict[str, Any]]) -> None:
        pending_seen.update(order_id for order_id, m in read.items() if m["Status"] == "pending_moderation")

    await world.configure(PendingModerationSeconds=PENDING_MODERATION_SECONDS)
    await run.queue(late, text)
    if at_once:

        async def late_ones_applied() -> bool:
            note_pending(await run.messages(late))
            return sum((await run.applied()).values()) >= len(late)

        await wait_for(late_ones_applied, timeout=timeout, every=0.5)
        await world.configure(PendingModerationSeconds=None)
        await run.queue(at_once, text)
    await run.settle(timeout, on_read=note_pending)
    result.seen_pending = len(pending_seen & set(late))
    return await run.tally()


def _retry_after_violations(sends: list[dict[str, Any]], retry_after: float | None) -> int:
    """Sends that came back sooner than the Retry-After of the 429 before them (same conversation)."""
    if retry_after is None:
        return 0
    by_conversation: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in sends:
        by_conversation[conversation_of(entry["Path"])].append(entry)
    violations = 0
    for entries in by_conversation.values():
        for before, after in pairwise(entries):
            if before["Fault"] == "429" and before["Status"] == 429:
                gap = dt.datetime.fromisoformat(after["At"]) - dt.datetime.fromisoformat(before["At"])
                if gap.total_seconds() < retry_after - 0.05:
                    violations += 1
    return violations
