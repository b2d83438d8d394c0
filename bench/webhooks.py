"""bench webhooks (issue 20): webhook events per second to a local receiver, next to the receiver's
own capacity; and Mercado Libre delivery with and without a dead webhook endpoint.

    .venv/bin/python -m bench.webhooks [--events 3000] [--messages 2000] [--concurrency 32]
                                       [--backends sqlite,postgresql] [--quick]

- receiver capacity: the load generator posts `--events` signed event bodies straight to the
  receiver (bench/webhook_receiver.py: an integrator's aiohttp receiver verifying each signature
  with the `standardwebhooks` package), `--concurrency` in flight;
- events/s, each backend: `--events` deliveries of one endpoint (a message event's body, rendered)
  bulk-inserted as due while `postventa worker` runs with POSTVENTA_WEBHOOK_CONCURRENCY and
  POSTVENTA_WEBHOOK_ENDPOINT_CONCURRENCY at `--concurrency`; from the insert's commit to the last
  delivery's finish;
- Mercado Libre with a dead endpoint, each backend: bench/delivery.py's drain of `--messages` queued
  messages to the emulator (worker concurrency 8), once with no endpoint, once with an endpoint of
  the account subscribed to `message.sent` whose address accepts connections and never answers:
  every sent message makes an event whose attempts each wait the 10 s timeout.
The worker and the load generator run pinned to one CPU, the receiver and the emulator to the other.
Results: a table, and docs/results/bench-webhooks.json. Target: messages/s with a dead endpoint at
least 0.9 x without (events/s is reported beside the receiver's capacity, without a target).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import delivery as ml
from bench.common import (
    LOOPBACK,
    POSTVENTA,
    Service,
    append_result,
    clean_environment,
    console,
    cpu_plan,
    create_postgres_database,
    default_output,
    deferred_signals,
    drop_postgres_database,
    free_port,
    new_token_key,
    postgres_reachable,
    ratio,
    run_cli,
    run_header,
    stop_all,
    stop_cleanly_on_sigterm,
)
from bench.drain import prepare_account, wait_for_heartbeat
from bench.emulator import EmulatorControl
from bench.loadgen import run_generator
from bench.webhook_seed import DATA, SECRET, new_tenant, queue_events, register_endpoint, watch_events
from postventa.domain import webhooks as rules
from postventa.services.webhook_bodies import envelope


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="webhook deliveries per drain")
    parser.add_argument("--messages", type=int, default=2000, help="Mercado Libre messages per drain")
    parser.add_argument("--concurrency", type=int, default=32, help="webhook deliveries in flight")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="give up a drain after this many seconds"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the processes to CPUs")
    parser.add_argument("--quick", action="store_true", help="300 events, 200 messages")
    parser.add_argument("--output", type=Path, default=default_output("webhooks"))
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.messages = min(args.events, 300), min(args.messages, 200)
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    # What bench/delivery.py's drain reads of its arguments.
    args.log_level, args.profile, args.postgres_anywhere = "warning", None, False
    args.quiet_wait = 1.0 if args.quick else 30.0  # how long a drain waits for a quiet machine
    return args


def receiver_capacity(args: argparse.Namespace, port: int, workdir: Path) -> dict[str, Any]:
    """The receiver alone: the load generator posting event bodies straight to it."""
    client_cpus, _ = cpu_plan(not args.no_pin)
    body = envelope("message.sent", dt.datetime.now(dt.UTC), DATA).encode()
    timestamp = int(time.time())  # one signature for every request: valid for the receiver's 5 minutes
    signature = rules.signature(SECRET, "msg_capacity", timestamp, body)
    head = (
        "POST /hooks/{id} HTTP/1.1\r\n"
        f"Host: {LOOPBACK}:{port}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"webhook-id: msg_capacity\r\nwebhook-timestamp: {timestamp}\r\n"
        f"webhook-signature: {signature}\r\n\r\n"
    )
    spec = {
        "host": LOOPBACK,
        "port": port,
        "connections": args.concurrency,
        "duration": 3600,
        "kinds": [
            {
                "name": "event",
                "pool": "events",
                "count": 1,
                "head": head,
                "body_b64": base64.b64encode(body).decode(),
            }
        ],
        "pools": {"events": {"ids": list(range(args.events))}},
    }
    summary, _ = run_generator(spec, workdir, client_cpus, keep_latencies=False)
    console.print(f"receiver alone, {args.concurrency} in flight: {summary['rps']:,.0f} requests/s")
    return {
        "phase": "receiver_capacity",
        "requests": summary["requests"],
        "events_per_second": summary["rps"],
    }


def events_phase(
    args: argparse.Namespace, name: str, url: str, token_key: str, receiver_port: int, workdir: Path
) -> dict[str, Any]:
    """A worker delivering `--events` due deliveries to the receiver."""
    worker_cpus, _ = cpu_plan(not args.no_pin)
    tenant = asyncio.run(new_tenant(url, token_key))
    endpoint_id = asyncio.run(
        register_endpoint(
            url,
            token_key,
            tenant.account_id,
            f"http://{LOOPBACK}:{receiver_port}/hooks",
            ["message.sent"],
            secret=SECRET,
        )
    )
    environment = clean_environment(
        POSTVENTA_DATABASE_URL=url,
        POSTVENTA_TOKEN_KEY=token_key,
        POSTVENTA_LOG_LEVEL="warning",
        POSTVENTA_WEBHOOK_ALLOW_PRIVATE="true",
        POSTVENTA_WEBHOOK_CONCURRENCY=str(args.concurrency),
        POSTVENTA_WEBHOOK_ENDPOINT_CONCURRENCY=str(args.concurrency),
    )
    worker = Service(
        f"webhooks-{name}",
        [POSTVENTA, "worker"],
        environment,
        workdir / f"webhooks-{name}.log",
        workdir,
        worker_cpus,
    )
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    worker.start()
    try:
        asyncio.run(wait_for_heartbeat(url, token_key, since, worker))
        cpu = worker.cpu_seconds()
        committed = asyncio.run(queue_events(url, token_key, endpoint_id, args.events))
        state = asyncio.run(watch_events(url, token_key, args.events, args.timeout))
        cpu = worker.cpu_seconds() - cpu
    finally:
        worker.stop()
    seconds = (state["last"] or time.time()) - committed
    rate = state["delivered"] / seconds if seconds > 0 else 0.0
    console.print(f"worker {name}: {rate:,.0f} events/s ({state['delivered']:,}/{args.events:,} delivered)")
    return {
        "phase": "events",
        "backend": name,
        "events": args.events,
        "delivered": state["delivered"],
        "seconds": round(seconds, 2),
        "events_per_second": round(rate, 1),
        "worker_cpu_ms_per_event": round(1000 * cpu / state["delivered"], 2) if state["delivered"] else None,
    }


def black_hole() -> socket.socket:
    """A port that accepts connections (the kernel's backlog) and never answers: a dead endpoint."""
    hole = socket.socket()
    hole.bind((LOOPBACK, 0))
    hole.listen(4096)
    return hole


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_arguments(argv)
    stop_cleanly_on_sigterm()
    header = run_header(
        "webhooks",
        {
            "events": args.events,
            "messages": args.messages,
            "concurrency": args.concurrency,
            "backends": args.backends,
            "quick": args.quick,
        },
    )
    if "postgresql" in args.backends and not postgres_reachable():
        raise SystemExit(
            "the postgresql backend needs PostgreSQL on 127.0.0.1:5432 (or drop it from --backends)"
        )
    _, other_cpus = cpu_plan(not args.no_pin)
    token_key = new_token_key()
    phases: list[dict[str, Any]] = []
    created: list[str] = []
    hole = black_hole()
    with tempfile.TemporaryDirectory(prefix="postventa-bench-webhooks-") as directory:
        workdir = Path(directory)
        receiver_port, emulator_port = free_port(), free_port()
        receiver = Service(
            "receiver",
            [
                sys.executable,
                "-m",
                "bench.webhook_receiver",
                "--port",
                str(receiver_port),
                "--secret",
                SECRET,
            ],
            clean_environment(),
            workdir / "receiver.log",
            Path.cwd(),
            other_cpus,
        )
        emulator_url = f"http://{LOOPBACK}:{emulator_port}"
        emulator = Service(
            "emulator",
            [POSTVENTA, "emulator", "--host", LOOPBACK, "--port", str(emulator_port)],
            clean_environment(),
            workdir / "emulator.log",
            workdir,
            other_cpus,
        )
        try:
            receiver.start().wait_listening(receiver_port, "/tally")
            emulator.start().wait_listening(emulator_port, "/_emulator/config")
            phases.append(receiver_capacity(args, receiver_port, workdir))
            for name in args.backends:
                url = _database(name, workdir, created, "events")
                run_cli(
                    ["db", "upgrade"],
                    clean_environment(POSTVENTA_DATABASE_URL=url, POSTVENTA_TOKEN_KEY=token_key),
                    workdir,
                )
                phases.append(events_phase(args, name, url, token_key, receiver_port, workdir))
            dead_url = f"http://{LOOPBACK}:{hole.getsockname()[1]}/dead"
            for name in args.backends:
                phases.extend(
                    _meli_phases(args, name, token_key, emulator, emulator_url, dead_url, workdir, created)
                )
        finally:
            with deferred_signals():
                stop_all([receiver, emulator])
                hole.close()
                for pg_name in created:
                    drop_postgres_database(pg_name)
    record = {**header, "phases": phases, "comparisons": _compare(phases)}
    console.print_json(json.dumps(record["comparisons"]))
    append_result(args.output, record)
    return record


def _database(name: str, workdir: Path, created: list[str], label: str) -> str:
    if name == "sqlite":
        return f"sqlite:///{workdir / f'{label}.db'}"
    pg_name, url = create_postgres_database(f"postventa_bench_webhooks_{label}")
    created.append(pg_name)
    return url


def _meli_phases(
    args: argparse.Namespace,
    name: str,
    token_key: str,
    emulator: Service,
    emulator_url: str,
    dead_url: str,
    workdir: Path,
    created: list[str],
) -> list[dict[str, Any]]:
    """bench/delivery.py's drain, without and then with a dead endpoint on the account."""
    url = _database(name, workdir, created, "meli")
    run_cli(
        ["db", "upgrade"],
        clean_environment(POSTVENTA_DATABASE_URL=url, POSTVENTA_TOKEN_KEY=token_key),
        workdir,
    )
    control = EmulatorControl(emulator_url)

    async def plan() -> tuple[Any, list[list[Any]]]:
        try:
            await control.lift_rate_limits()
            seller = await control.seller()
            counts = (max(1, args.messages // 3), args.messages, args.messages)
            return seller, [await control.orders(seller, count) for count in counts]
        finally:
            await control.aclose()

    seller, (warm_up_orders, plain_orders, dead_orders) = asyncio.run(plan())
    backend = ml.Backend(name, url, seller)
    backend.tenant = asyncio.run(prepare_account(url, token_key, emulator_url, seller))
    # A drain is measured to its last message sent; the dead endpoint's attempts then still wait out
    # their 10 s timeout, which stopping the worker need not give them (the database is dropped).
    allow = {"POSTVENTA_WEBHOOK_ALLOW_PRIVATE": "true", "POSTVENTA_SHUTDOWN_GRACE_SECONDS": "1"}
    results = []
    # The first drain of a run was the slowest whatever it did (the emulator's and the database's
    # caches): a warm-up drain, not compared, comes first.
    drains = (("warm_up", warm_up_orders), ("no_endpoint", plain_orders), ("dead_endpoint", dead_orders))
    for label, orders in drains:
        if label == "dead_endpoint":
            asyncio.run(
                register_endpoint(url, token_key, backend.tenant.account_id, dead_url, ["message.sent"])
            )
        phase = ml.run_worker_phase(
            args,
            backend,
            ml.DEFAULT_WORKER_CONCURRENCY,
            orders,
            token_key,
            emulator,
            emulator_url,
            workdir,
            allow,
            f"-{label}",
        )
        phase["webhooks"] = label
        rate, done = phase["messages_per_second"], f"{phase['delivered']:,}/{phase['messages']:,}"
        console.print(f"Mercado Libre, {name}, {label}: {rate:,.0f} msg/s ({done} sent)")
        results.append(phase)
    return results


def _compare(phases: list[dict[str, Any]]) -> dict[str, Any]:
    capacity = next(p["events_per_second"] for p in phases if p["phase"] == "receiver_capacity")
    comparisons: dict[str, Any] = {"receiver_events_per_second": capacity}
    for phase in phases:
        if phase["phase"] == "events":
            comparisons[f"events_{phase['backend']}"] = {
                "events_per_second": phase["events_per_second"],
                "ratio_to_receiver": ratio(phase["events_per_second"], capacity),
            }
    for backend in {p["backend"] for p in phases if p.get("webhooks")}:
        drains = {p["webhooks"]: p for p in phases if p.get("backend") == backend and p.get("webhooks")}
        plain, dead = drains["no_endpoint"], drains["dead_endpoint"]
        comparisons[f"meli_{backend}"] = {
            "messages_per_second": {
                "no_endpoint": plain["messages_per_second"],
                "dead_endpoint": dead["messages_per_second"],
            },
            "ratio_dead_to_none": ratio(dead["messages_per_second"], plain["messages_per_second"]),
            "worker_cpu_ms_per_message": {
                "no_endpoint": plain["worker_cpu_ms_per_message"],
                "dead_endpoint": dead["worker_cpu_ms_per_message"],
            },
        }
    return comparisons


if __name__ == "__main__":
    main()
