"""bench attachments: the server's peak resident memory while it accepts a large attachment.

    .venv/bin/python -m bench.attachments [--size-mib 25] [--backend sqlite|postgresql] [--quick]

For each way of sending a file (multipart `file`, and `fileBase64` in a JSON body), a fresh
`postventa serve` (one process, embedded worker off) is started, warmed up with one small upload of
each kind, and left idle for a moment: its resident set (VmRSS) then is the idle figure. Its peak
(VmHWM) is reset through /proc/PID/clear_refs and VmRSS is also sampled every 10 ms while one
`--size-mib` PDF goes to an order whose first message the buyer answered (the contract allows
attachments only then). Growth = peak - idle; the targets: growth at most 2 x the file size for
multipart and 4 x for base64. The default attachment limit (POSTVENTA_MAX_ATTACHMENT_BYTES) is
25 MiB, so a 25 MiB file is at the limit and allowed; a larger --size-mib raises the limit to fit.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
from rich.table import Table

from bench import mix
from bench.common import (
    LOOPBACK,
    POSTVENTA,
    Service,
    append_result,
    console,
    create_postgres_database,
    default_output,
    drop_postgres_database,
    free_port,
    load_average,
    new_token_key,
    postgres_reachable,
    process_memory_kib,
    process_rss_kib,
    reset_peak_rss,
    run_cli,
    run_header,
    stop_cleanly_on_sigterm,
)
from bench.seed import OrderPools, Tenant
from bench.service import postventa_environment, prepare_database

MIB = 1024 * 1024
TARGETS = {"multipart": 2.0, "base64": 4.0}
SAMPLE_SECONDS = 0.01
IDLE_SETTLE_SECONDS = 1.0
WARMUP_BYTES = 64 * 1024
UPLOAD_TIMEOUT_SECONDS = 300.0


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.attachments", description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=float, default=25.0, help="the attachment's size in MiB")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="a few seconds: a 2 MiB file")
    parser.add_argument("--output", type=Path, default=default_output("attachments"))
    args = parser.parse_args(argv)
    if args.quick:
        args.size_mib = min(args.size_mib, 2.0)
    return args


def pdf(size: int, seed: int) -> bytes:
    """A PDF-looking file of `size` random (incompressible) bytes."""
    header, trailer = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", b"\n%%EOF\n"
    return header + random.Random(seed).randbytes(size - len(header) - len(trailer)) + trailer


def request_for(mode: str, tenant: Tenant, content: bytes) -> tuple[dict[str, str], bytes]:
    """Headers and body of a send with this attachment, by multipart or base64 JSON."""
    fields: dict[str, Any] = {
        "API_KEY": tenant.api_key,
        "accountId": tenant.account_id,
        "messageOptions": 4,
        "message": mix.ATTACHMENT_TEXT,
    }
    if mode == "multipart":
        body = mix.multipart_body({key: str(value) for key, value in fields.items()}, "factura.pdf", content)
        return {"Content-Type": f"multipart/form-data; boundary={mix.BOUNDARY}"}, body
    fields |= {
        "fileBase64": base64.b64encode(content).decode("ascii"),
        "documentName": "factura",
        "documentExtension": "pdf",
    }
    return {"Content-Type": "application/json"}, json.dumps(fields).encode()


class RssSampler:
    """The largest VmRSS seen, read every 10 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, process_rss_kib(self.pid))
            except OSError:
                return
            self.samples += 1
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def send(client: httpx2.Client, order_id: int, headers: dict[str, str], body: bytes) -> httpx2.Response:
    return client.post(f"/v2/orders/{order_id}/messages", headers=headers, content=body)


def measure_mode(
    mode: str, args: argparse.Namespace, url: str, token_key: str, workdir: Path, size: int
) -> dict[str, Any]:
    """A fresh server: warm up, idle RSS, then one upload with its peak RSS."""
    tenant, pools = asyncio.run(prepare_database(url, token_key, 0, 3))
    environment = postventa_environment(url, token_key, "info")
    limit = max(size, 25 * MIB)
    environment["POSTVENTA_MAX_ATTACHMENT_BYTES"] = str(limit)
    port = free_port()
    command = [POSTVENTA, "serve", "--host", LOOPBACK, "--port", str(port)]
    server = Service(f"serve-{mode}", command, environment, workdir / f"serve-{mode}.log", workdir)
    server.start()
    try:
        server.wait_listening(port, "/healthz")
        return _upload(mode, server, port, tenant, pools, size, limit)
    finally:
        server.stop()


def _upload(
    mode: str, server: Service, port: int, tenant: Tenant, pools: OrderPools, size: int, limit: int
) -> dict[str, Any]:
    with httpx2.Client(base_url=f"http://{LOOPBACK}:{port}", timeout=UPLOAD_TIMEOUT_SECONDS) as client:
        for number, warm_mode in enumerate(("multipart", "base64")):
            headers, body = request_for(warm_mode, tenant, pdf(WARMUP_BYTES, number))
            warm = send(client, pools.answered_first + number, headers, body)
            if warm.status_code != 200:
                raise RuntimeError(f"warm-up upload refused: {warm.status_code} {warm.text[:300]}")
        content = pdf(size, 99)
        headers, body = request_for(mode, tenant, content)
        time.sleep(IDLE_SETTLE_SECONDS)
        idle = process_memory_kib(server.pid)["VmRSS"]
        peak_reset = reset_peak_rss(server.pid)
        started = time.perf_counter()
        with RssSampler(server.pid) as sampler:
            response = send(client, pools.answered_first + 2, headers, body)
        seconds = time.perf_counter() - started
        memory = process_memory_kib(server.pid)
        time.sleep(IDLE_SETTLE_SECONDS)
        after = process_memory_kib(server.pid)["VmRSS"]
    peak_kib = max(sampler.peak_kib, memory["VmHWM"] if peak_reset else 0)
    growth = (peak_kib - idle) * 1024
    return {
        "mode": mode,
        "file_bytes": size,
        "request_body_bytes": len(body),
        "attachment_limit_bytes": limit,
        "status": response.status_code,
        "response": response.text[:300],
        "seconds": round(seconds, 2),
        "idle_rss_mib": round(idle / 1024, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "peak_from": "VmHWM after clear_refs and 10 ms VmRSS samples"
        if peak_reset
        else "10 ms VmRSS samples",
        "rss_samples": sampler.samples,
        "rss_after_mib": round(after / 1024, 1),
        "growth_mib": round(growth / MIB, 1),
        "growth_over_file_size": round(growth / size, 2),
        "target_at_most": TARGETS[mode],
        "met": response.status_code == 200 and growth / size <= TARGETS[mode],
    }


def print_report(record: dict[str, Any]) -> None:
    size_mib = record["options"]["size_mib"]
    table = Table(title=f"attachments: one {size_mib:g} MiB PDF, {record['options']['backend']}")
    for column in (
        "mode",
        "status",
        "seconds",
        "idle RSS MiB",
        "peak RSS MiB",
        "growth MiB",
        "growth / file",
    ):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for result in record["results"]:
        colour = "green" if result["met"] else "red"
        table.add_row(
            result["mode"],
            str(result["status"]),
            f"{result['seconds']:.2f}",
            f"{result['idle_rss_mib']:.1f}",
            f"{result['peak_rss_mib']:.1f}",
            f"{result['growth_mib']:.1f}",
            f"[{colour}]{result['growth_over_file_size']:.2f} (target ≤ {result['target_at_most']:g})[/]",
        )
    console.print(table)
    for result in record["results"]:
        if result["status"] != 200:
            console.print(f"[red]{result['mode']}: {result['status']} {result['response']}[/red]")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_arguments(argv)
    stop_cleanly_on_sigterm()
    size = int(args.size_mib * MIB)
    header = run_header(
        "attachments", {"size_mib": args.size_mib, "backend": args.backend, "quick": args.quick}
    )
    console.print(f"load average before the run: {header['load_average_before']}")
    if args.backend == "postgresql" and not postgres_reachable():
        raise SystemExit("--backend postgresql needs PostgreSQL on 127.0.0.1:5432")
    token_key = new_token_key()
    results = []
    with tempfile.TemporaryDirectory(prefix="postventa-bench-attachments-") as directory:
        workdir = Path(directory)
        for mode in TARGETS:
            pg_name = None
            if args.backend == "sqlite":
                url = f"sqlite:///{workdir / f'{mode}.db'}"
            else:
                pg_name, url = create_postgres_database("postventa_bench_attachments")
            try:
                run_cli(["db", "upgrade"], postventa_environment(url, token_key, "warning"), workdir)
                results.append(measure_mode(mode, args, url, token_key, workdir, size))
            finally:
                if pg_name:
                    drop_postgres_database(pg_name)
    record = {
        **header,
        "load_average_after": load_average(),
        "results": results,
        "notes": [
            "One fresh `postventa serve` per mode (embedded worker off), warmed up with a 64 KiB upload "
            "of each kind; idle = VmRSS a second after the warm-up; growth = peak VmRSS during the "
            "upload - idle.",
        ],
    }
    print_report(record)
    append_result(args.output, record)
    return record


if __name__ == "__main__":
    main()
