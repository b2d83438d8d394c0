"""The six attacks of issue 16 against a local `postventa serve`, each bounded in time and count.

A temporary directory holds a SQLite database, the token key and the server's log; the Mercado Libre
emulator (`postventa emulator`) and `postventa serve` (embedded worker) listen on free loopback
ports. An account, its API key and a linked emulator seller with one order (a seller message already
delivered, so the conversation waits for the buyer) are set up through the admin API. Then, one after
another:

1. two connections each send 1 MiB headers before the blank line (at most 64 MiB each);
2. a connection that sends nothing and one that sends half a request line: how long they stay open;
3. 1,500 forged webhook notifications naming the seller, then a real buyer reply through the
   emulator: how long until the conversation read shows it;
4. 1,000 forged notifications queued, then SIGTERM: how long `serve` takes to exit, and whether the
   pending notifications are still there after a restart;
5. bodies that announce 100 bytes, send `{` and close (a send, an admin and a webhook route): any 500
   in /metrics, any traceback in the log;
6. 30 simultaneous 34 MiB JSON sends with an unknown API key, streamed.

For each it prints one line (server memory from /proc: VmRSS sampled during the attack and VmHWM,
ESTABLISHED connections of the server process, statuses, latencies) and writes one JSON line to
docs/results/hostile.jsonl (the file is replaced by each full run). `postventa` is imported from
PYTHONPATH when set (to measure another checkout), else from the project's virtualenv.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

ROOT = Path(__file__).resolve().parent.parent
POSTVENTA = Path(sys.executable).with_name("postventa")
REPORT = ROOT / "docs" / "results" / "hostile.jsonl"
HOST = "127.0.0.1"
MIB = 1024 * 1024
SAMPLE_EVERY_SECONDS = 0.1
STARTUP_SECONDS = 30.0

HEADER_CONNECTIONS, HEADER_CAP_BYTES, HEADER_SECONDS, STALL_SECONDS = 2, 64 * MIB, 60.0, 10.0
SLOW_CAP_SECONDS = 60.0
FLOOD_NOTIFICATIONS, FLOOD_CONCURRENCY, REPLY_CAP_SECONDS = 1500, 50, 60.0
QUEUED_NOTIFICATIONS, EXIT_CAP_SECONDS = 1000, 100.0
UPLOADS, UPLOAD_BYTES, UPLOAD_CHUNK_BYTES, UPLOAD_CAP_SECONDS = 30, 34 * MIB, 256 * 1024, 90.0
UNKNOWN_KEY = "pv_0123456789ab_" + "x" * 43  # the shape of a key, in no database


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# --- the server process: memory and connections from /proc ---------------------------------------


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (serve with several workers forks)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB, summed over the process tree; (0, 0) once it is gone."""
    rss = hwm = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1])
    return rss, hwm


def established_connections(pid: int) -> int:
    """TCP sockets of the process tree in state ESTABLISHED (/proc/net/tcp{,6}, state 01)."""
    inodes: set[str] = set()
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{member}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                columns = line.split()
                if len(columns) > 9 and columns[3] == "01" and columns[9] in inodes:
                    count += 1
    return count


@dataclass
class Sampler:
    """Samples the server's memory and connections while an attack runs."""

    pid: int
    rss_before_kib: int = 0
    rss_peak_kib: int = 0
    rss_after_kib: int = 0
    hwm_kib: int = 0
    connections_peak: int = 0
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Sampler:
        self.rss_before_kib, self.hwm_kib = memory_kib(self.pid)
        self.rss_peak_kib = self.rss_before_kib
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._sample()
        self.rss_after_kib = memory_kib(self.pid)[0]

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self._sample)
            await asyncio.sleep(SAMPLE_EVERY_SECONDS)

    def _sample(self) -> None:
        rss, hwm = memory_kib(self.pid)
        self.rss_peak_kib = max(self.rss_peak_kib, rss)
        self.hwm_kib = max(self.hwm_kib, hwm)
        self.connections_peak = max(self.connections_peak, established_connections(self.pid))

    def fields(self) -> dict[str, Any]:
        mb = 1024 / 1e6  # KiB to MB
        return {
            "rss_before_mb": round(self.rss_before_kib * mb, 1),
            "rss_peak_mb": round(self.rss_peak_kib * mb, 1),
            "rss_after_mb": round(self.rss_after_kib * mb, 1),
            "hwm_mb": round(self.hwm_kib * mb, 1),
            "connections_peak": self.connections_peak,
        }

    def summary(self) -> str:
        f = self.fields()
        return (
            f"RSS {f['rss_before_mb']:,.0f} → peak {f['rss_peak_mb']:,.0f} MB "
            f"(after {f['rss_after_mb']:,.0f}, VmHWM {f['hwm_mb']:,.0f}), "
            f"server connections peak {f['connections_peak']}"
        )


# --- the servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    """The emulator and postventa, their URLs and what the setup made."""

    directory: Path
    api_port: int
    emulator_port: int
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    serve: subprocess.Popen[bytes] | None = None
    emulator: subprocess.Popen[bytes] | None = None
    log_offset: int = 0
    seller_id: int = 0
    client_id: str = ""
    account_id: int = 0
    api_key: str = ""
    order_id: int = 0
    pack_id: int = 0

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def emulator_url(self) -> str:
        return f"http://{HOST}:{self.emulator_port}"

    @property
    def database(self) -> Path:
        return self.directory / "postventa.db"

    @property
    def log(self) -> Path:
        return self.directory / "serve.log"

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def pid(self) -> int:
        assert self.serve is not None
        return self.serve.pid

    def environment(self) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if not name.startswith("POSTVENTA_")}
        env.update(
            POSTVENTA_DATABASE_URL=f"sqlite:///{self.database}",
            POSTVENTA_ADMIN_TOKEN=self.admin_token,
            POSTVENTA_API_KEY_PEPPER="hostile-traffic",
            POSTVENTA_TOKEN_KEY_FILE=str(self.directory / "token.key"),
            POSTVENTA_MELI_API_URL=self.emulator_url,
            POSTVENTA_PUBLIC_URL=self.api_url,
            POSTVENTA_EMBEDDED_WORKER="true",
            POSTVENTA_LOG_LEVEL="info",
        )
        return env

    def start_emulator(self) -> None:
        command = [str(POSTVENTA), "emulator", "--host", HOST, "--port", str(self.emulator_port)]
        command += ["--notify-url", f"{self.api_url}/webhooks/mercadolibre"]
        log = (self.directory / "emulator.log").open("ab")
        self.emulator = subprocess.Popen(command, env=self.environment(), stdout=log, stderr=log)

    def start_serve(self) -> None:
        command = [str(POSTVENTA), "serve", "--host", HOST, "--port", str(self.api_port)]
        log = self.log.open("ab")
        self.serve = subprocess.Popen(command, env=self.environment(), stdout=log, stderr=log)

    def stop(self) -> None:
        for process in (self.serve, self.emulator):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def new_log(self) -> str:
        """What the server logged since the last call."""
        with self.log.open("rb") as log:
            log.seek(self.log_offset)
            text = log.read()
        self.log_offset += len(text)
        return text.decode("utf-8", "replace")

    def pending_notifications(self) -> int:
        """Notifications not processed yet, read from the database file."""
        with contextlib.closing(sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10)) as db:
            return int(
                db.execute(
                    "SELECT count(*) FROM inbound_notifications WHERE processed_at IS NULL"
                ).fetchone()[0]
            )


async def wait_healthy(url: str, process: subprocess.Popen[bytes] | None, path: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    async with httpx2.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{url} exited with {process.returncode} at start")
            with contextlib.suppress(httpx2.TransportError):
                if (await http.get(url + path)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer {path} within {STARTUP_SECONDS} s")


async def set_up(stack: Stack, api: httpx2.AsyncClient, meli: httpx2.AsyncClient) -> None:
    """An account and key, a linked emulator seller, one synced order whose seller message was sent."""
    seller = (await meli.post("/_emulator/sellers", json={"SiteId": "MLA"})).raise_for_status().json()
    account = (
        await api.post("/admin/accounts", json={"Name": "Hostile"}, headers=stack.admin)
    ).raise_for_status()
    stack.account_id = int(account.json()["Id"])
    key = await api.post("/admin/api-keys", json={"AccountIds": [stack.account_id]}, headers=stack.admin)
    stack.api_key = key.raise_for_status().json()["ApiKey"]
    stack.seller_id, stack.client_id = int(seller["SellerId"]), str(seller["ClientId"])
    link = {name: seller[name] for name in ("SellerId", "ClientId", "ClientSecret", "RefreshToken")}
    linked = await api.put(
        f"/admin/accounts/{stack.account_id}/mercadolibre",
        json={**link, "SiteId": "MLA"},
        headers=stack.admin,
    )
    linked.raise_for_status()
    body = {"SellerId": stack.seller_id, "SiteId": "MLA", "LogisticType": "cross_docking", "Status": "paid"}
    order = (await meli.post("/_emulator/orders", json=body)).raise_for_status().json()
    stack.pack_id = int(order.get("PackId") or order["OrderId"])
    sync = await api.post(f"/admin/accounts/{stack.account_id}/mercadolibre/sync", headers=stack.admin)
    sync.raise_for_status()
    orders = (await api.get("/v2/orders", params=credentials(stack, limit=100))).raise_for_status().json()
    [local] = [o for o in orders["Results"] if o["ExternalOrderId"] == str(order["OrderId"])]
    stack.order_id = int(local["Id"])
    sent = await api.post(
        f"/v2/orders/{stack.order_id}/messages",
        params=credentials(stack, messageOptions=4, message="Hola, ¿te llegó bien?"),
    )
    sent.raise_for_status()
    if await until(lambda: message_sent(api, stack), 30.0) is None:
        raise RuntimeError("the seller's message was not delivered within 30 s")


def credentials(stack: Stack, **extra: Any) -> dict[str, Any]:
    return {"API_KEY": stack.api_key, "accountId": stack.account_id, **extra}


async def message_sent(api: httpx2.AsyncClient, stack: Stack) -> bool:
    read = await api.get(f"/v2/orders/{stack.order_id}/messages", params=credentials(stack))
    return any(m["Direction"] == "outbound" and m["Status"] == "sent" for m in read.json()["Results"])


async def until(check: Any, seconds: float) -> float | None:
    """Seconds until `check()` is true; None past `seconds` (the attack's cap)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        with contextlib.suppress(httpx2.TransportError):
            if await check():
                return time.monotonic() - started
        await asyncio.sleep(0.2)
    return None


# --- raw connections -----------------------------------------------------------------------------


def status_of(received: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", received)
    return int(match.group(1)) if match else None


async def read_all(reader: asyncio.StreamReader, into: bytearray) -> None:
    """Read until the server closes (or resets) the connection."""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            into.extend(chunk)


async def header_flood(port: int) -> dict[str, Any]:
    """Headers of 1 MiB until the cap, a stall or the server closing; then the blank line."""
    reader, writer = await asyncio.open_connection(HOST, port)
    received = bytearray()
    reading = asyncio.create_task(read_all(reader, received))
    started, sent, outcome = time.monotonic(), 0, "cap reached"
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    padding = b"a" * MIB
    try:
        index = 0
        while sent < HEADER_CAP_BYTES and time.monotonic() - started < HEADER_SECONDS:
            if reading.done():
                outcome = "closed by server"
                break
            writer.write(b"X-Pad-%d: " % index + padding + b"\r\n")
            await asyncio.wait_for(writer.drain(), STALL_SECONDS)
            sent, index = sent + MIB, index + 1
        if outcome == "cap reached":
            writer.write(b"\r\n")
            await asyncio.wait_for(writer.drain(), STALL_SECONDS)
    except (ConnectionError, TimeoutError) as error:
        outcome = "server stopped reading" if isinstance(error, TimeoutError) else "closed by server"
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(reading), STALL_SECONDS)
    reading.cancel()
    writer.close()
    return {
        "sent_mib": round(sent / MIB),
        "outcome": outcome,
        "status": status_of(bytes(received)),
        "seconds": round(time.monotonic() - started, 2),
    }


async def slow_connection(port: int, first_bytes: bytes) -> dict[str, Any]:
    """How long the server keeps a connection that never completes its request open."""
    reader, writer = await asyncio.open_connection(HOST, port)
    if first_bytes:
        writer.write(first_bytes)
        await writer.drain()
    started, received = time.monotonic(), bytearray()
    try:
        await asyncio.wait_for(read_all(reader, received), SLOW_CAP_SECONDS)
        closed_after = round(time.monotonic() - started, 1)
    except TimeoutError:
        closed_after = None
    writer.close()
    return {"closed_after_seconds": closed_after, "status": status_of(bytes(received))}


async def truncated_body(port: int, target: str, headers: dict[str, str]) -> None:
    """A JSON body announced as 100 bytes: `{`, then the connection closed."""
    _reader, writer = await asyncio.open_connection(HOST, port)
    head = f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "Content-Type: application/json\r\nContent-Length: 100\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(head.encode() + b"\r\n{")
    await writer.drain()
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def upload_body() -> tuple[bytes, int, bytes]:
    """(prefix, filler bytes, suffix) of a 34 MiB JSON send: fileBase64 of "A"s."""
    prefix = b'{"messageOptions": 4, "message": "Factura", "documentName": "factura", '
    prefix += b'"documentExtension": "pdf", "fileBase64": "'
    suffix = b'"}'
    return prefix, UPLOAD_BYTES - len(prefix) - len(suffix), suffix


def body_chunks() -> Iterator[bytes]:
    """The upload in chunks, the filler one shared object (the client holds no 34 MiB copy)."""
    prefix, filler, suffix = upload_body()
    yield prefix
    chunk = b"A" * UPLOAD_CHUNK_BYTES
    while filler > 0:
        yield chunk[: min(filler, UPLOAD_CHUNK_BYTES)]
        filler -= UPLOAD_CHUNK_BYTES
    yield suffix


async def large_upload(port: int, order_id: int) -> dict[str, Any]:
    """One 34 MiB JSON send with an unknown key in the query string, streamed while the response is read."""
    reader, writer = await asyncio.open_connection(HOST, port)
    received = bytearray()
    reading = asyncio.create_task(read_all(reader, received))
    head = (
        f"POST /v2/orders/{order_id}/messages?API_KEY={UNKNOWN_KEY}&accountId=1 HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {UPLOAD_BYTES}\r\n\r\n"
    )
    started, sent = time.monotonic(), 0
    writer.write(head.encode())
    try:
        for chunk in body_chunks():
            if received or reading.done():
                break  # answered (or closed) before the body was sent
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), UPLOAD_CAP_SECONDS)
            sent += len(chunk)
        await asyncio.wait_for(_answered(received, reading), UPLOAD_CAP_SECONDS)
    except (ConnectionError, TimeoutError):
        pass
    seconds = time.monotonic() - started
    reading.cancel()
    writer.close()
    return {"status": status_of(bytes(received)), "sent_mib": sent / MIB, "seconds": seconds}


async def _answered(received: bytearray, reading: asyncio.Task[None]) -> None:
    while not status_of(bytes(received)) and not reading.done():
        await asyncio.sleep(0.05)


# --- the attacks ---------------------------------------------------------------------------------


@dataclass
class Attack:
    number: int
    name: str
    line: str
    fields: dict[str, Any]


async def attack_headers(stack: Stack) -> Attack:
    async with Sampler(stack.pid) as sampler:
        results = await asyncio.gather(*(header_flood(stack.api_port) for _ in range(HEADER_CONNECTIONS)))
    described = "; ".join(
        f"sent {r['sent_mib']} MiB, {r['outcome']}, status {r['status']}, {r['seconds']} s" for r in results
    )
    return Attack(
        1, "header_flood", f"{described}; {sampler.summary()}", {"connections": results, **sampler.fields()}
    )


async def attack_slow(stack: Stack) -> Attack:
    async with Sampler(stack.pid) as sampler:
        silent, half = await asyncio.gather(
            slow_connection(stack.api_port, b""), slow_connection(stack.api_port, b"GET /healthz HT")
        )

    def shown(result: dict[str, Any]) -> str:
        after = result["closed_after_seconds"]
        closed = (
            f"closed after {after} s" if after is not None else f"still open after {SLOW_CAP_SECONDS:.0f} s"
        )
        return f"{closed} (status {result['status']})"

    line = f"silent: {shown(silent)}; half a request line: {shown(half)}; {sampler.summary()}"
    return Attack(
        2, "slow_connections", line, {"silent": silent, "half_request_line": half, **sampler.fields()}
    )


def forged(stack: Stack) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).isoformat()
    return {
        "resource": f"/messages/{uuid.uuid4().hex}",
        "user_id": stack.seller_id,
        "topic": "messages",
        "application_id": stack.client_id,
        "attempts": 1,
        "sent": now,
        "received": now,
    }


async def post_forged(stack: Stack, count: int) -> tuple[Counter[str], float]:
    """COUNT forged notifications, FLOOD_CONCURRENCY at a time: statuses and seconds."""
    statuses: Counter[str] = Counter()
    gate = asyncio.Semaphore(FLOOD_CONCURRENCY)
    limits = httpx2.Limits(max_connections=FLOOD_CONCURRENCY)
    async with httpx2.AsyncClient(base_url=stack.api_url, timeout=30, limits=limits) as http:

        async def one() -> None:
            async with gate:
                try:
                    statuses[
                        str((await http.post("/webhooks/mercadolibre", json=forged(stack))).status_code)
                    ] += 1
                except httpx2.TransportError as error:
                    statuses[type(error).__name__] += 1

        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(count)))
    return statuses, time.monotonic() - started


async def attack_flood(stack: Stack, api: httpx2.AsyncClient, meli: httpx2.AsyncClient) -> Attack:
    mark = (await meli.get("/_emulator/journal", params={"since": 0})).json()["Next"]
    async with Sampler(stack.pid) as sampler:
        statuses, flood_seconds = await post_forged(stack, FLOOD_NOTIFICATIONS)
        text = f"¿Cuándo llega? {uuid.uuid4().hex[:8]}"
        reply = await meli.post(f"/_emulator/packs/{stack.pack_id}/buyer-messages", json={"Text": text})
        reply.raise_for_status()

        async def recorded() -> bool:
            read = await api.get(f"/v2/orders/{stack.order_id}/messages", params=credentials(stack))
            return any(m["Direction"] == "inbound" and m["Text"] == text for m in read.json()["Results"])

        latency = await until(recorded, REPLY_CAP_SECONDS)
        calls = (await meli.get("/_emulator/journal", params={"since": mark})).json()["Entries"]
    pending = stack.pending_notifications()
    meli_calls = Counter(str(entry["Status"]) for entry in calls)
    shown = f"{latency:.1f} s" if latency is not None else f"not recorded within {REPLY_CAP_SECONDS:.0f} s"
    line = (
        f"{FLOOD_NOTIFICATIONS} forged in {flood_seconds:.1f} s (statuses {dict(statuses)}); "
        f"buyer reply recorded: {shown}; Mercado Libre calls from the flood's start "
        f"{sum(meli_calls.values())} by status {dict(meli_calls)}; pending notifications {pending}; "
        f"{sampler.summary()}"
    )
    fields = {
        "forged": FLOOD_NOTIFICATIONS,
        "flood_seconds": round(flood_seconds, 2),
        "statuses": dict(statuses),
        "reply_latency_seconds": None if latency is None else round(latency, 2),
        "meli_calls": dict(meli_calls),
        "pending_notifications": pending,
        **sampler.fields(),
    }
    return Attack(3, "notification_flood", line, fields)


async def attack_sigterm(stack: Stack) -> Attack:
    assert stack.serve is not None
    async with Sampler(stack.pid) as sampler:
        statuses, _seconds = await post_forged(stack, QUEUED_NOTIFICATIONS)
    pending_before = stack.pending_notifications()
    started = time.monotonic()
    stack.serve.send_signal(signal.SIGTERM)
    try:
        await asyncio.to_thread(stack.serve.wait, EXIT_CAP_SECONDS)
        exit_seconds: float | None = round(time.monotonic() - started, 1)
    except subprocess.TimeoutExpired:
        exit_seconds = None
        stack.serve.kill()
        await asyncio.to_thread(stack.serve.wait)
    exit_code = stack.serve.returncode
    pending_after_exit = stack.pending_notifications()
    stack.start_serve()
    await wait_healthy(stack.api_url, stack.serve, "/healthz")
    pending_after_restart = stack.pending_notifications()
    exited = (
        f"exited in {exit_seconds} s"
        if exit_seconds is not None
        else f"still running after {EXIT_CAP_SECONDS:.0f} s (killed)"
    )
    line = (
        f"{QUEUED_NOTIFICATIONS} queued (statuses {dict(statuses)}), pending {pending_before}; "
        f"SIGTERM: {exited}, exit code {exit_code}; pending after exit {pending_after_exit}, "
        f"after restart {pending_after_restart}; {sampler.summary()}"
    )
    fields = {
        "queued": QUEUED_NOTIFICATIONS,
        "statuses": dict(statuses),
        "pending_before_sigterm": pending_before,
        "exit_seconds": exit_seconds,
        "exit_code": exit_code,
        "pending_after_exit": pending_after_exit,
        "pending_after_restart": pending_after_restart,
        **sampler.fields(),
    }
    return Attack(4, "sigterm_with_queue", line, fields)


def metric_counts(text: str) -> Counter[str]:
    """postventa_http_requests_total summed by status."""
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("postventa_http_requests_total{"):
            status = re.search(r'status="(\d+)"', line)
            if status:
                counts[status.group(1)] += int(float(line.rsplit(" ", 1)[1]))
    return counts


async def attack_truncated(stack: Stack, api: httpx2.AsyncClient) -> Attack:
    before = metric_counts((await api.get("/metrics")).text)
    stack.new_log()
    targets = [
        (f"/v2/orders/{stack.order_id}/messages?API_KEY={stack.api_key}&accountId={stack.account_id}", {}),
        ("/admin/accounts", stack.admin),
        ("/webhooks/mercadolibre", {}),
    ]
    async with Sampler(stack.pid) as sampler:
        for target, headers in targets:
            await truncated_body(stack.api_port, target, headers)
        await asyncio.sleep(2.0)
    after = metric_counts((await api.get("/metrics")).text)
    log = stack.new_log()
    delta = {status: after[status] - before[status] for status in after if after[status] != before[status]}
    tracebacks = log.count("Traceback")
    errors = sum(1 for line in log.splitlines() if '"level": "error"' in line or '"level":"error"' in line)
    disconnected = log.count("client_disconnected")
    line = (
        f"3 bodies cut short (send, admin, webhook): requests counted by status {delta}; "
        f"log: {tracebacks} tracebacks, {errors} error lines, {disconnected} client_disconnected; "
        f"{sampler.summary()}"
    )
    fields = {
        "counted_by_status": delta,
        "500s": delta.get("500", 0),
        "tracebacks": tracebacks,
        "error_lines": errors,
        "client_disconnected": disconnected,
        **sampler.fields(),
    }
    return Attack(5, "truncated_bodies", line, fields)


async def attack_uploads(stack: Stack) -> Attack:
    async with Sampler(stack.pid) as sampler:
        results = await asyncio.gather(
            *(large_upload(stack.api_port, stack.order_id) for _ in range(UPLOADS))
        )
    statuses = Counter(str(r["status"]) for r in results)
    seconds = sorted(r["seconds"] for r in results)
    sent = sorted(r["sent_mib"] for r in results)
    line = (
        f"{UPLOADS} × {UPLOAD_BYTES // MIB} MiB, unknown key: statuses {dict(statuses)}; answered in "
        f"{seconds[0]:.1f}–{seconds[-1]:.1f} s (median {seconds[len(seconds) // 2]:.1f}); "
        f"body sent before the answer {sent[0]:.1f}–{sent[-1]:.1f} MiB; {sampler.summary()}"
    )
    fields = {
        "uploads": UPLOADS,
        "upload_mib": UPLOAD_BYTES // MIB,
        "statuses": dict(statuses),
        "seconds_min": round(seconds[0], 2),
        "seconds_median": round(seconds[len(seconds) // 2], 2),
        "seconds_max": round(seconds[-1], 2),
        "sent_mib_min": round(sent[0], 1),
        "sent_mib_max": round(sent[-1], 1),
        **sampler.fields(),
    }
    return Attack(6, "large_unauthenticated_uploads", line, fields)


# --- the run -------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(directory: Path) -> AsyncIterator[Stack]:
    stack = Stack(directory, api_port=free_port(), emulator_port=free_port())
    try:
        stack.start_emulator()
        await wait_healthy(stack.emulator_url, stack.emulator, "/_emulator/journal")
        stack.start_serve()
        await wait_healthy(stack.api_url, stack.serve, "/healthz")
        yield stack
    finally:
        stack.stop()


def measured_code() -> tuple[str, str]:
    """The checkout's commit, and which code the servers ran: PYTHONPATH's, or the working tree
    (which may hold uncommitted changes)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    if os.environ.get("PYTHONPATH"):
        return git("rev-parse", "--short", "HEAD"), f"PYTHONPATH={os.environ['PYTHONPATH']}"
    changed = git("status", "--porcelain", "--", "src")
    return git("rev-parse", "--short", "HEAD"), "working tree" + (
        " with uncommitted changes" if changed else ""
    )


async def run(only: set[int], report: Path | None) -> list[Attack]:
    commit, code = measured_code()
    attacks: list[Attack] = []
    with tempfile.TemporaryDirectory(prefix="hostile-") as temporary:
        async with (
            running(Path(temporary)) as stack,
            httpx2.AsyncClient(base_url=stack.api_url, timeout=30) as api,
            httpx2.AsyncClient(base_url=stack.emulator_url, timeout=30) as meli,
        ):
            await set_up(stack, api, meli)
            say(
                f"postventa pid {stack.pid} on {stack.api_url}, emulator on {stack.emulator_url}, "
                f"in {temporary}"
            )
            steps = {
                1: lambda: attack_headers(stack),
                2: lambda: attack_slow(stack),
                3: lambda: attack_flood(stack, api, meli),
                4: lambda: attack_sigterm(stack),
                5: lambda: attack_truncated(stack, api),
                6: lambda: attack_uploads(stack),
            }
            for number, step in steps.items():
                if number not in only:
                    continue
                started = time.monotonic()
                try:
                    attack = await step()
                except Exception as error:  # one attack breaking the server must not hide the others
                    attack = Attack(
                        number, "error", f"failed: {type(error).__name__}: {error}", {"error": repr(error)}
                    )
                attack.fields["attack_seconds"] = round(time.monotonic() - started, 1)
                say(f"{number} {attack.name}: {attack.line}")
                attacks.append(attack)
                if stack.serve is not None and stack.serve.poll() is not None:
                    say(f"postventa exited ({stack.serve.returncode}); restarting it")
                    stack.start_serve()
                    await wait_healthy(stack.api_url, stack.serve, "/healthz")
    if report is not None:
        today = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        lines = [
            json.dumps(
                {
                    "attack": a.number,
                    "name": a.name,
                    **a.fields,
                    "date": today,
                    "commit": commit,
                    "code": code,
                }
            )
            + "\n"
            for a in attacks
        ]
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("".join(lines))
    return attacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="1,2,3,4,5,6", help="attacks to run, e.g. 1,5 (default: all)")
    parser.add_argument("--report", default=str(REPORT), help="JSON lines written here ('' for none)")
    arguments = parser.parse_args()
    only = {int(number) for number in arguments.only.split(",") if number.strip()}
    started = time.monotonic()
    asyncio.run(run(only, Path(arguments.report) if arguments.report else None))
    say(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
