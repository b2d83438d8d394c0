"""A closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending its next request as
soon as the previous answer arrives, for a fixed time.

Run as its own process (`python -m bench.loadgen SPEC.json`) so it can be pinned to a CPU and its
CPU time measured apart from the server's. It speaks just enough HTTP/1.1 (prebuilt request bytes,
Content-Length or chunked answers) on asyncio protocols with uvloop, to stay far from being the
bottleneck: `bench.send` measures its ceiling against a trivial server in every run.

The spec (JSON): host, port, connections, duration, seed, kinds (each: name, count in the cycle,
pool, head with one `{id}`, body_b64), pools (name: {"first", "count"} or {"ids"}), result_path,
latencies_path. Each request takes the next id of its kind's pool; a pool that runs out ends the run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import subprocess
import sys
import time
import uuid
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

MAX_ERROR_SAMPLES = 5
ERROR_SAMPLE_BYTES = 400
CONNECT_TIMEOUT_SECONDS = 10.0
RESPONSE_TIMEOUT_SECONDS = 60.0


class ResponseError(Exception):
    """The server closed the connection or answered something this client cannot frame."""


@dataclass
class Kind:
    """One shape of request in the mix."""

    name: str
    pool: str
    head_before: bytes
    head_after: bytes
    body: bytes

    def request(self, order_id: int) -> bytes:
        """The request bytes for this id."""
        return b"".join((self.head_before, str(order_id).encode("ascii"), self.head_after, self.body))


class Pool:
    """Ids handed out in order; None once all are used."""

    def __init__(self, spec: dict[str, Any]) -> None:
        if "ids" in spec:
            self.ids: list[int] | range = list(spec["ids"])
        else:
            self.ids = range(int(spec["first"]), int(spec["first"]) + int(spec["count"]))
        self.used = 0

    def take(self) -> int | None:
        if self.used >= len(self.ids):
            return None
        value = self.ids[self.used]
        self.used += 1
        return value


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; `exchange` sends a request and waits for its whole answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ResponseError(f"connection closed: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            try:
                answer = parse_response(self.buffer)
            except ResponseError as error:
                self.waiter.set_exception(error)
                return
            if answer is not None:
                self.waiter.set_result(answer)

    def exchange(self, request: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter


def parse_response(buffer: bytearray) -> tuple[int, bytes, bool] | None:
    """(status, body, keep-alive) of the first whole response in the buffer (removed from it), or None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    status = int(head[9:12])
    start = end + 4
    position = head.find(b"\r\ncontent-length:")
    if position >= 0:
        line_end = head.find(b"\r\n", position + 2)
        length = int(head[position + 17 : line_end if line_end >= 0 else len(head)])
        if len(buffer) < start + length:
            return None
        body = bytes(buffer[start : start + length])
        del buffer[: start + length]
    elif b"\r\ntransfer-encoding: chunked" in head:
        decoded = _decode_chunked(buffer, start)
        if decoded is None:
            return None
        body, consumed = decoded
        del buffer[:consumed]
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
        del buffer[:start]
    else:
        raise ResponseError("a response without Content-Length or chunked framing")
    return status, body, b"\r\nconnection: close" not in head


def _decode_chunked(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    parts: list[bytes] = []
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        chunk_start = line_end + 2
        if len(buffer) < chunk_start + size + 2:
            return None
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            if trailer_end < 0:
                return None
            return b"".join(parts), trailer_end + 4
        parts.append(bytes(buffer[chunk_start : chunk_start + size]))
        position = chunk_start + size + 2


@dataclass
class Tally:
    """What the run observed."""

    latencies: array[float] = field(default_factory=lambda: array("d"))
    statuses: Counter[str] = field(default_factory=Counter)
    per_kind: dict[str, Counter[str]] = field(default_factory=dict)
    kind_seconds: dict[str, float] = field(default_factory=dict)
    error_samples: list[dict[str, Any]] = field(default_factory=list)
    transport_errors: int = 0
    pool_exhausted: str | None = None
    last_completion: float = 0.0

    def record(self, kind: str, status: int, body: bytes, seconds: float) -> None:
        self.latencies.append(seconds)
        self.statuses[str(status)] += 1
        counts = self.per_kind.setdefault(kind, Counter())
        counts["requests"] += 1
        self.kind_seconds[kind] = self.kind_seconds.get(kind, 0.0) + seconds
        if status != 200:
            counts["errors"] += 1
            if len(self.error_samples) < MAX_ERROR_SAMPLES:
                self.error_samples.append(
                    {
                        "kind": kind,
                        "status": status,
                        "body": body[:ERROR_SAMPLE_BYTES].decode("utf-8", "replace"),
                    }
                )

    def record_transport_error(self, kind: str, error: Exception) -> None:
        self.transport_errors += 1
        self.statuses["transport_error"] += 1
        self.per_kind.setdefault(kind, Counter())["errors"] += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(
                {"kind": kind, "status": None, "body": f"{type(error).__name__}: {error}"}
            )


class Run:
    """The mix, the pools and the clock of one run."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.host = str(spec["host"])
        self.port = int(spec["port"])
        self.connections = int(spec["connections"])
        self.duration = float(spec["duration"])
        self.pools = {name: Pool(pool) for name, pool in spec["pools"].items()}
        cycle: list[Kind] = []
        for kind in spec["kinds"]:
            before, _, after = kind["head"].partition("{id}")
            body = base64.b64decode(kind.get("body_b64", ""))
            cycle += [Kind(kind["name"], kind["pool"], before.encode(), after.encode(), body)] * int(
                kind["count"]
            )
        random.Random(int(spec.get("seed", 0))).shuffle(cycle)
        self.cycle = cycle
        self.position = 0
        self.tally = Tally()
        self.deadline = 0.0

    def next_request(self) -> tuple[Kind, bytes] | None:
        kind = self.cycle[self.position % len(self.cycle)]
        self.position += 1
        order_id = self.pools[kind.pool].take()
        if order_id is None:
            self.tally.pool_exhausted = kind.pool
            self.deadline = 0.0  # stop every connection after its current request
            return None
        return kind, kind.request(order_id)

    async def connect(self) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _transport, protocol = await asyncio.wait_for(
            loop.create_connection(HttpConnection, self.host, self.port), CONNECT_TIMEOUT_SECONDS
        )
        return protocol

    async def drive(self, connection: HttpConnection) -> None:
        loop = asyncio.get_running_loop()
        clock = time.perf_counter
        tally = self.tally
        while loop.time() < self.deadline:
            taken = self.next_request()
            if taken is None:
                return
            kind, request = taken
            started = clock()
            try:
                status, body, keep_alive = await connection.exchange(request)
            except (ResponseError, OSError) as error:
                tally.record_transport_error(kind.name, error)
                if connection.transport is not None:
                    connection.transport.close()
                connection = await self.connect()
                continue
            finished = clock()
            tally.record(kind.name, status, body, finished - started)
            tally.last_completion = finished
            if not keep_alive or connection.lost:
                if connection.transport is not None:
                    connection.transport.close()
                connection = await self.connect()
        if connection.transport is not None:
            connection.transport.close()

    async def run(self) -> dict[str, Any]:
        connections = [await self.connect() for _ in range(self.connections)]
        loop = asyncio.get_running_loop()
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        self.deadline = loop.time() + self.duration
        await asyncio.wait_for(
            asyncio.gather(*(self.drive(connection) for connection in connections)),
            self.duration + RESPONSE_TIMEOUT_SECONDS,
        )
        cpu_seconds = time.process_time() - cpu_started
        wall_seconds = max((self.tally.last_completion or time.perf_counter()) - wall_started, 1e-9)
        return self.summary(wall_seconds, cpu_seconds)

    def summary(self, wall_seconds: float, cpu_seconds: float) -> dict[str, Any]:
        tally = self.tally
        ordered = sorted(tally.latencies)
        completed = len(ordered)
        errors = sum(counts["errors"] for counts in tally.per_kind.values())
        per_kind = {
            name: {
                "requests": counts["requests"],
                "errors": counts["errors"],
                "mean_ms": round(tally.kind_seconds[name] / counts["requests"] * 1000, 2)
                if counts["requests"]
                else None,
            }
            for name, counts in sorted(tally.per_kind.items())
        }
        return {
            "requests": completed,
            "seconds": round(wall_seconds, 3),
            "rps": round(completed / wall_seconds, 1),
            "latency_ms": {
                "p50": _ms(_rank(ordered, 0.50)),
                "p90": _ms(_rank(ordered, 0.90)),
                "p99": _ms(_rank(ordered, 0.99)),
                "max": _ms(ordered[-1]) if ordered else None,
                "mean": _ms(sum(ordered) / completed) if completed else None,
            },
            "statuses": dict(tally.statuses),
            "errors": errors,
            "error_samples": tally.error_samples,
            "per_kind": per_kind,
            "cpu_seconds": round(cpu_seconds, 3),
            "cpu_percent": round(100 * cpu_seconds / wall_seconds, 1),
            "consumed": {name: pool.used for name, pool in self.pools.items()},
            "pool_exhausted": tally.pool_exhausted,
        }


def _rank(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def run_generator(
    spec: dict[str, Any], workdir: Path, cpus: set[int] | None, *, keep_latencies: bool = True
) -> tuple[dict[str, Any], array[float]]:
    """Run the generator as its own process (pinned to `cpus`); its summary and latencies (seconds)."""
    tag = uuid.uuid4().hex[:8]
    spec = {
        **spec,
        "result_path": str(workdir / f"loadgen-{tag}.json"),
        "latencies_path": str(workdir / f"loadgen-{tag}.latencies") if keep_latencies else None,
    }
    spec_path = workdir / f"loadgen-{tag}.spec.json"
    spec_path.write_text(json.dumps(spec))

    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    timeout = float(spec["duration"]) + 120
    finished = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", str(spec_path)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        preexec_fn=pin,
        timeout=timeout,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{finished.stdout}\n{finished.stderr}")
    summary = json.loads(Path(spec["result_path"]).read_text())
    latencies: array[float] = array("d")
    if keep_latencies:
        latencies.frombytes(Path(spec["latencies_path"]).read_bytes())
    for path in (spec_path, Path(spec["result_path"]), Path(spec["latencies_path"] or spec_path)):
        path.unlink(missing_ok=True)
    return summary, latencies


def main() -> None:
    """Read the spec, run, write the summary (and the raw latencies, if asked)."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    run = Run(spec)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        summary = asyncio.run(run.run())
    else:
        summary = uvloop.run(run.run())
    if spec.get("latencies_path"):
        Path(spec["latencies_path"]).write_bytes(run.tally.latencies.tobytes())
    Path(spec["result_path"]).write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
