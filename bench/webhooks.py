"""bench webhooks (issue 20): webhook events per second to a local receiver, next to the receiver's
own capacity; and Mercado Libre delivery with and without a dead webhook endpoint.

    .venv/bin/python -m bench.webhooks [--events 3000] [--messages 2000] [--concurrency 32]
                                       [--backends sqlite,postgresql] [--quick]

- receiver capacity: the load generator posts `--events` webhook-sized bodies straight to the
  receiver (bench/trivial_server.py: 200 to everything), `--concurrency` in flight;
- events/s, each backend: `--events` deliveries of one endpoint (a message event's body, rendered)
  bulk-inserted as due while `postventa worker` runs with POSTVENTA_WEBHOOK_CONCURRENCY and
  POSTVENTA_WEBHOOK_ENDPOINT_CONCURRENCY at `--concurrency`; from the insert's commit to the last
  delivery's finish;
- Mercado Libre with a dead endpoint, each backend: bench/delivery.py's drain of `--messages` queued
  messages to the emulator (worker concurrency 8), once with no endpoint, once with an endpoint of
  the account subscribed to `message.sent` whose address accepts connections and never answers:
  every sent message makes an event whose attempts each wait the 10 s timeout.
The worker and the load generator run pinned to one CPU, the receiver and the emulator to the other.
Results: a table, and docs/results/bench-webhooks.json. Targets: events/s at least 0.5 x the
receiver's capacity; messages/s with a dead endpoint at least 0.9 x without.
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

from sqlalchemy import func, insert, select

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
from bench.seed import create_tenant
from postventa.services import webhooks
from postventa.services.webhook_bodies import envelope
from postventa.store.engine import Database
from postventa.store.sealing import TokenCipher
from postventa.store.tables import webhook_deliveries

POLL_SECONDS = 0.2
# A message event's data as the API renders it: the body's size and shape of a real event.
DATA = {
    "Id": 1,
    "OrderId": 1,
    "Direction": "outbound",
    "Reason": {"Key": 4, "Value": "OTHER"},
    "Text": "Hola, tu pedido ya está en camino. ¡Gracias por tu compra!",
    "Attachment": None,
    "Status": "sent",
    "DateCreated": "2026-12-05T12:00:00Z",
    "DateStatus": "2026-12-05T12:00:01Z",
    "DateSent": "2026-12-05T12:00:01Z",
    "DateFailed": None,
    "Attempts": 1,
    "MarketplaceMessageId": "0123456789abcdef",
    "ModerationReason": None,
    "ErrorCode": None,
    "ErrorMessage": None,
    "Source": "postventa",
    "Author": "seller",
    "ReadAt": None,
    "AccountId": 1,
}


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
    return args


def receiver_capacity(args: argparse.Namespace, port: int, workdir: Path) -> dict[str, Any]:
    """The receiver alone: the load generator posting event bodies straight to it."""
    client_cpus, _ = cpu_plan(not args.no_pin)
    body = envelope("message.sent", dt.datetime.now(dt.UTC), DATA).encode()
    head = (
        "POST /hooks/{id} HTTP/1.1\r\n"
        f"Host: {LOOPBACK}:{port}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "webhook-id: msg_0\r\nwebhook-timestamp: 0\r\nwebhook-signature: v1,AAAA\r\n\r\n"
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


async def _register(url: str, token_key: str, account_id: int, endpoint_url: str, events: list[str]) -> int:
    database = Database(url, token_cipher=TokenCipher([token_key]))

    async def loopback(host: str, port: int) -> list[str]:
        return [LOOPBACK]

    try:
        checked = await webhooks.check_url(endpoint_url, allow_private=True, resolver=loopback)
        async with database.transaction(write=True) as connection:
            made = await webhooks.register_endpoint(
                connection, database.token_cipher, account_id, checked, events, dt.datetime.now(dt.UTC)
            )
        return made.endpoint.id
    finally:
        await database.dispose()


async def _tenant(url: str, token_key: str) -> Any:
    database = Database(url, token_cipher=TokenCipher([token_key]))
    try:
        return await create_tenant(database, "bench webhooks")
    finally:
        await database.dispose()


async def _queue_events(url: str, token_key: str, endpoint_id: int, count: int) -> float:
    """`count` due deliveries of the endpoint, rendered, in one transaction; the commit's time."""
    database = Database(url, token_cipher=TokenCipher([token_key]))
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "endpoint_id": endpoint_id,
            "webhook_id": f"msg_bench{number:012d}",
            "event_type": "message.sent",
            "subject_id": number,
            "occurred_at": now,
            "body": envelope("message.sent", now, DATA | {"Id": number}),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for number in range(count)
    ]
    try:
        async with database.transaction(write=True) as connection:
            await connection.execute(insert(webhook_deliveries), rows)
        return time.time()
    finally:
        await database.dispose()


async def _watch_events(url: str, token_key: str, count: int, timeout: float) -> dict[str, Any]:
    database = Database(url, token_cipher=TokenCipher([token_key]))
    d = webhook_deliveries
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with database.transaction() as connection:
                left = (
                    await connection.execute(
                        select(func.count()).where(d.c.status.in_(("pending", "sending")))
                    )
                ).scalar_one()
            if left == 0:
                break
            await asyncio.sleep(POLL_SECONDS)
        async with database.transaction() as connection:
            row = (
                await connection.execute(
                    select(func.count().label("delivered"), func.max(d.c.finished_at).label("last")).where(
                        d.c.status == "delivered"
                    )
                )
            ).one()
    finally:
        await database.dispose()
    return {"delivered": int(row.delivered), "last": row.last.timestamp() if row.last else None}


def events_phase(
    args: argparse.Namespace, name: str, url: str, token_key: str, receiver_port: int, workdir: Path
) -> dict[str, Any]:
    """A worker delivering `--events` due deliveries to the receiver."""
    worker_cpus, _ = cpu_plan(not args.no_pin)
    tenant = asyncio.run(_tenant(url, token_key))
    endpoint_id = asyncio.run(
        _register(
            url, token_key, tenant.account_id, f"http://{LOOPBACK}:{receiver_port}/hooks", ["message.sent"]
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
        committed = asyncio.run(_queue_events(url, token_key, endpoint_id, args.events))
        state = asyncio.run(_watch_events(url, token_key, args.events, args.timeout))
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
            [sys.executable, "-m", "bench.trivial_server", "--port", str(receiver_port)],
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
            receiver.start().wait_listening(receiver_port)
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

    async def plan() -> tuple[Any, list[Any], list[Any]]:
        try:
            await control.lift_rate_limits()
            seller = await control.seller()
            return (
                seller,
                await control.orders(seller, args.messages),
                await control.orders(seller, args.messages),
            )
        finally:
            await control.aclose()

    seller, plain_orders, dead_orders = asyncio.run(plan())
    backend = ml.Backend(name, url, seller)
    backend.tenant = asyncio.run(prepare_account(url, token_key, emulator_url, seller))
    allow = {"POSTVENTA_WEBHOOK_ALLOW_PRIVATE": "true"}
    results = []
    for label, orders in (("no_endpoint", plain_orders), ("dead_endpoint", dead_orders)):
        if label == "dead_endpoint":
            asyncio.run(_register(url, token_key, backend.tenant.account_id, dead_url, ["message.sent"]))
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
        by_label = {
            p["webhooks"]: p["messages_per_second"]
            for p in phases
            if p.get("backend") == backend and p.get("webhooks")
        }
        comparisons[f"meli_{backend}"] = by_label | {
            "ratio_dead_to_none": ratio(by_label.get("dead_endpoint", 0.0), by_label.get("no_endpoint", 0.0))
        }
    return comparisons


if __name__ == "__main__":
    main()
