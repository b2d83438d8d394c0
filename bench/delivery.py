"""bench delivery: queued messages drained by `postventa worker` to the Mercado Libre emulator,
against the emulator's own capacity measured in the same run.

    .venv/bin/python -m bench.delivery [--messages 10000] [--concurrency 32] [--backends sqlite,postgresql]
                                       [--quick]

One emulator (`postventa emulator`, its per-application rate limits lifted through
`PUT /_emulator/config`) serves the whole run. For each concurrency (the worker's default, 8, and
`--concurrency`):
- emulator capacity: a client (the benchmark's load generator, one process) posts the same first
  messages straight to the emulator's action guide (`POST /messages/action_guide/packs/{pack}/option`,
  free text), `concurrency` requests in flight, one fresh pack each;
- for each backend: `--messages` messages are bulk-inserted as queued (reason OTHER, each on its own
  fresh emulator order, the account linked to an emulator seller), then `postventa worker
  --concurrency N` (already running, its Mercado Libre pacer lifted with
  POSTVENTA_MELI_REQUESTS_PER_MINUTE) drains them; the time runs from the insert's commit to the last
  message's `sent_at`.
The worker and the direct client run pinned to one CPU, the emulator to the other. Results: a table,
and docs/results/bench-delivery.json. Target: messages/s at least 0.5 x the emulator's capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from bench import profile
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
    load_average,
    machine_cpu_seconds,
    new_token_key,
    postgres_cpu_seconds,
    postgres_pinned,
    postgres_reachable,
    ratio,
    run_cli,
    run_header,
    stop_all,
    stop_cleanly_on_sigterm,
    wait_for_quiet_machine,
)
from bench.drain import prepare_account, queue_messages, wait_for_heartbeat, watch_drain
from bench.emulator import (
    UNLIMITED_PER_MINUTE,
    EmulatorControl,
    EmulatorOrder,
    SellerCredentials,
    direct_client_spec,
)
from bench.loadgen import run_generator
from bench.seed import Tenant

DEFAULT_WORKER_CONCURRENCY = 8
TARGET_RATIO = 0.5
# The emulator's capacity is measured before the drains of each concurrency and after them: the
# machine's speed drifts (the emulator alone took 944 to 1,449 messages/s at 8 in flight in two
# runs twenty minutes apart), and the mean of the two brackets the drains.
CAPACITY_ROUNDS = (1, 2)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="queued messages per drain")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="a worker concurrency measured besides the default 8"
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="give up a drain after this many seconds"
    )
    parser.add_argument("--log-level", default="info", help="the worker's POSTVENTA_LOG_LEVEL (default info)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the processes to CPUs")
    parser.add_argument(
        "--postgres-anywhere",
        action="store_true",
        help="leave PostgreSQL on every CPU during the drains (by default it shares the worker's)",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy every worker drain; collapsed stacks go here"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds: 200 messages, the default concurrency only"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="seconds at most to wait before each phase for the machine to go quiet",
    )
    parser.add_argument("--output", type=Path, default=default_output("delivery"))
    args = parser.parse_args(argv)
    if args.quick:  # a check that it works, beside other work: nothing to wait for
        args.quiet_wait = min(args.quiet_wait, 1.0)
        args.messages = min(args.messages, 200)
        args.timeout = min(args.timeout, 60.0)
        args.concurrency = DEFAULT_WORKER_CONCURRENCY
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = set(args.backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    args.concurrencies = sorted({DEFAULT_WORKER_CONCURRENCY, args.concurrency})
    return args


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Backend:
    """A database the worker drains, and the account linked to its own emulator seller."""

    name: str
    url: str
    seller: SellerCredentials
    tenant: Tenant | None = None
    pg_name: str | None = None


@dataclass
class Plan:
    """What the emulator was asked to create before the measurements."""

    direct_token: str
    direct_orders: dict[tuple[int, int], list[EmulatorOrder]]  # by (concurrency, round)
    warm_up_orders: list[EmulatorOrder]
    worker_orders: dict[tuple[str, int], list[EmulatorOrder]]
    backend_sellers: dict[str, SellerCredentials]
    config: dict[str, Any]


async def plan_emulator(url: str, args: argparse.Namespace) -> Plan:
    """Sellers, orders for every phase, and the direct client's token; rate limits lifted."""
    control = EmulatorControl(url)
    try:
        config = await control.lift_rate_limits()
        direct_seller = await control.seller()
        direct_orders = {
            (c, measured): await control.orders(direct_seller, args.messages)
            for c in args.concurrencies
            for measured in CAPACITY_ROUNDS
        }
        warm_up_orders = await control.orders(direct_seller, max(1, args.messages // 3))
        sellers = {backend: await control.seller() for backend in args.backends}
        worker_orders = {
            (backend, c): await control.orders(sellers[backend], args.messages)
            for backend in args.backends
            for c in args.concurrencies
        }
        token = await control.access_token(direct_seller)
    finally:
        await control.aclose()
    return Plan(token, direct_orders, warm_up_orders, worker_orders, sellers, config)


def worker_environment(url: str, token_key: str, emulator_url: str, log_level: str) -> dict[str, str]:
    """`postventa worker` delivering to the emulator, its pacer out of the way."""
    return clean_environment(
        POSTVENTA_DATABASE_URL=url,
        POSTVENTA_TOKEN_KEY=token_key,
        POSTVENTA_MELI_API_URL=emulator_url,
        POSTVENTA_MELI_REQUESTS_PER_MINUTE=str(UNLIMITED_PER_MINUTE),
        POSTVENTA_LOG_LEVEL=log_level,
    )


def run_worker_phase(
    args: argparse.Namespace,
    backend: Backend,
    concurrency: int,
    orders: list[EmulatorOrder],
    token_key: str,
    emulator: Service,
    emulator_url: str,
    workdir: Path,
    extra_environment: dict[str, str] | None = None,
    label: str = "",
) -> dict[str, Any]:
    """Start a worker (with `extra_environment` besides its own), queue the messages, time the
    drain, stop the worker."""
    worker_cpus, _ = cpu_plan(not args.no_pin)
    environment = worker_environment(backend.url, token_key, emulator_url, args.log_level)
    environment.update(extra_environment or {})
    name = f"worker-{backend.name}-{concurrency}{label}"
    command = [POSTVENTA, "worker", "--concurrency", str(concurrency)]
    worker = Service(name, command, environment, workdir / f"{name}.log", workdir, worker_cpus)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    worker.start()
    load = load_average()
    try:
        asyncio.run(wait_for_heartbeat(backend.url, token_key, since, worker))
        assert backend.tenant is not None
        profile_path = args.profile / f"{name}.txt" if args.profile is not None else None
        recorder = profile.start(worker.pid, None, profile_path) if profile_path is not None else None
        settled = wait_for_quiet_machine(at_most_seconds=args.quiet_wait)
        pin_postgres = backend.name == "postgresql" and not args.postgres_anywhere
        with postgres_pinned(worker_cpus if pin_postgres else None):
            worker_cpu, emulator_cpu = worker.cpu_seconds(), emulator.cpu_seconds()
            database_cpu, (machine_busy, machine_total) = postgres_cpu_seconds(), machine_cpu_seconds()
            first, last, committed = asyncio.run(
                queue_messages(backend.url, token_key, backend.tenant.account_id, orders)
            )
            state = asyncio.run(watch_drain(backend.url, token_key, first, last, args.timeout, worker))
            worker_cpu = worker.cpu_seconds() - worker_cpu
            emulator_cpu = emulator.cpu_seconds() - emulator_cpu
            database_cpu = postgres_cpu_seconds() - database_cpu
            busy_now, total_now = machine_cpu_seconds()
        machine_busy, machine_total = busy_now - machine_busy, total_now - machine_total
        profiled = profile.finish(recorder, profile_path) if recorder and profile_path else None
    finally:
        worker.stop()
    sent = state["statuses"].get("sent", 0) + state["statuses"].get("moderated", 0)
    seconds = (state["last_sent_at"] or time.time()) - committed
    return {
        "phase": "worker",
        "backend": backend.name,
        "waited_for_quiet_seconds": settled,
        "concurrency": concurrency,
        "messages": len(orders),
        "delivered": sent,
        "statuses": state["statuses"],
        "error_codes": state["error_codes"],
        "attempts": state["attempts"],
        "timed_out": state["timed_out"],
        "seconds": round(seconds, 2),
        "seconds_from_first_attempt": round(state["last_sent_at"] - state["first_attempt_at"], 2)
        if state["last_sent_at"] and state["first_attempt_at"]
        else None,
        "messages_per_second": round(sent / seconds, 1) if seconds > 0 else 0.0,
        "worker_cpu_percent": round(100 * worker_cpu / seconds, 1) if seconds > 0 else None,
        "worker_cpu_ms_per_message": round(1000 * worker_cpu / sent, 2) if sent else None,
        "emulator_cpu_ms_per_message": round(1000 * emulator_cpu / sent, 2) if sent else None,
        "emulator_cpu_percent": round(100 * emulator_cpu / seconds, 1) if seconds > 0 else None,
        # PostgreSQL's processes (its backends: the worker's, the benchmark's watcher's, the server's).
        "postgres_cpu_ms_per_message": round(1000 * database_cpu / sent, 2)
        if sent and backend.name == "postgresql"
        else None,
        # All CPUs together, over the drain and the moments around it (100% = every CPU busy).
        "machine_cpu_busy_percent": round(100 * machine_busy / machine_total, 1) if machine_total else None,
        "load_average": load,
        "profile": profiled,
    }


def run_direct_phase(
    args: argparse.Namespace,
    concurrency: int,
    measured: int,
    plan: Plan,
    emulator: Service,
    port: int,
    workdir: Path,
) -> dict[str, Any]:
    """The emulator's capacity: the same first messages posted straight to it."""
    client_cpus, _ = cpu_plan(not args.no_pin)
    orders = plan.direct_orders[(concurrency, measured)]
    settled = wait_for_quiet_machine(at_most_seconds=args.quiet_wait)
    load = load_average()
    emulator_cpu = emulator.cpu_seconds()
    machine_busy, machine_total = machine_cpu_seconds()
    spec = direct_client_spec(port, plan.direct_token, orders, concurrency)
    summary, _ = run_generator(spec, workdir, client_cpus, keep_latencies=False)
    emulator_cpu = emulator.cpu_seconds() - emulator_cpu
    busy_now, total_now = machine_cpu_seconds()
    machine_busy, machine_total = busy_now - machine_busy, total_now - machine_total
    console.print(f"emulator alone, {concurrency} in flight: {summary['rps']:,.0f} msg/s")
    return {
        "phase": "emulator_capacity",
        "concurrency": concurrency,
        "round": measured,
        "waited_for_quiet_seconds": settled,
        "messages": len(orders),
        "delivered": summary["statuses"].get("200", 0),
        "errors": summary["errors"],
        "error_samples": summary["error_samples"],
        "seconds": summary["seconds"],
        "messages_per_second": summary["rps"],
        "latency_ms": summary["latency_ms"],
        "client_cpu_percent": summary["cpu_percent"],
        "emulator_cpu_percent": round(100 * emulator_cpu / summary["seconds"], 1),
        "emulator_cpu_ms_per_message": round(1000 * emulator_cpu / max(summary["requests"], 1), 2),
        "machine_cpu_busy_percent": round(100 * machine_busy / machine_total, 1) if machine_total else None,
        "load_average": load,
    }


def warm_up_emulator(args: argparse.Namespace, plan: Plan, port: int, workdir: Path) -> dict[str, Any]:
    """A third of a phase's messages posted straight to the emulator, not measured: the first phase
    after the orders were made was the slowest of a run (the emulator alone, 852 to 1,045
    messages/s at 8 in flight in three runs, then 1,412 to 1,486 after the drains)."""
    client_cpus, _ = cpu_plan(not args.no_pin)
    concurrency = args.concurrencies[0]
    spec = direct_client_spec(port, plan.direct_token, plan.warm_up_orders, concurrency)
    summary, _ = run_generator(spec, workdir, client_cpus, keep_latencies=False)
    console.print(f"[dim]emulator warmed up: {summary['rps']:,.0f} msg/s[/dim]")
    return {"messages": len(plan.warm_up_orders), "messages_per_second": summary["rps"]}


def prepare_backends(
    args: argparse.Namespace,
    plan: Plan,
    token_key: str,
    emulator_url: str,
    workdir: Path,
    backends: list[Backend],
) -> None:
    """Each backend's database migrated, with an account linked to its own emulator seller; added to
    `backends` as soon as its database exists (so that an interrupted run still drops it)."""
    for name in args.backends:
        pg_name = None
        if name == "sqlite":
            url = f"sqlite:///{workdir / 'delivery.db'}"
        else:
            pg_name, url = create_postgres_database("postventa_bench_delivery")
        backend = Backend(name, url, plan.backend_sellers[name], pg_name=pg_name)
        backends.append(backend)
        run_cli(["db", "upgrade"], worker_environment(url, token_key, emulator_url, "warning"), workdir)
        backend.tenant = asyncio.run(prepare_account(url, token_key, emulator_url, backend.seller))


def summarise(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """Each worker drain against the emulator's capacity at the same concurrency (the mean of its
    measurements before and after the drains)."""
    measured: dict[int, list[float]] = {}
    for phase in phases:
        if phase["phase"] == "emulator_capacity":
            measured.setdefault(phase["concurrency"], []).append(phase["messages_per_second"])
    capacity = {concurrency: sum(values) / len(values) for concurrency, values in measured.items()}
    comparisons = {}
    for phase in phases:
        if phase["phase"] != "worker":
            continue
        value = ratio(phase["messages_per_second"], capacity.get(phase["concurrency"], 0.0))
        comparisons[f"{phase['backend']}@{phase['concurrency']}"] = {
            "messages_per_second": phase["messages_per_second"],
            "emulator_capacity": round(capacity[phase["concurrency"]], 1)
            if phase["concurrency"] in capacity
            else None,
            "emulator_capacity_measured": measured.get(phase["concurrency"], []),
            "ratio": value,
            "target_at_least": TARGET_RATIO,
            "met": value is not None and value >= TARGET_RATIO and phase["delivered"] == phase["messages"],
        }
    return comparisons


def print_report(record: dict[str, Any]) -> None:
    table = Table(title=f"delivery: {record['options']['messages']:,} messages per drain")
    for column in (
        "phase",
        "backend",
        "concurrency",
        "delivered",
        "seconds",
        "msg/s",
        "vs emulator",
        "worker/client CPU %",
        "emulator CPU %",
        "PostgreSQL CPU ms/msg",
        "machine CPU %",
    ):
        table.add_column(column, justify="left" if column in ("phase", "backend") else "right")
    for phase in record["phases"]:
        comparison = record["comparisons"].get(f"{phase.get('backend')}@{phase['concurrency']}", {})
        ratio_text = "-"
        if comparison:
            colour = "green" if comparison["met"] else "red"
            ratio_text = f"[{colour}]{comparison['ratio']:.2f} (target ≥ {TARGET_RATIO})[/]"
        table.add_row(
            "worker drain"
            if phase["phase"] == "worker"
            else f"emulator alone, {'before' if phase.get('round', 1) == 1 else 'after'}",
            phase.get("backend", "-"),
            str(phase["concurrency"]),
            f"{phase['delivered']:,}/{phase['messages']:,}",
            f"{phase['seconds']:.1f}",
            f"{phase['messages_per_second']:,.0f}",
            ratio_text,
            str(phase.get("worker_cpu_percent", phase.get("client_cpu_percent"))),
            str(phase["emulator_cpu_percent"]),
            str(phase.get("postgres_cpu_ms_per_message") or "-"),
            str(phase.get("machine_cpu_busy_percent", "-")),
        )
    console.print(table)
    for phase in record["phases"]:
        if phase.get("error_codes") or phase.get("errors"):
            console.print(
                f"[red]{phase['phase']} {phase.get('backend', '')}: "
                f"{phase.get('error_codes') or phase.get('error_samples')}[/red]"
            )
    for note in record["notes"]:
        console.print(f"[dim]{note}[/dim]")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_arguments(argv)
    stop_cleanly_on_sigterm()
    header = run_header(
        "delivery",
        {
            "messages": args.messages,
            "concurrencies": args.concurrencies,
            "backends": args.backends,
            "log_level": args.log_level,
            "pinned": not args.no_pin,
            "postgres_pinned_with_worker": not args.no_pin and not args.postgres_anywhere,
            "quick": args.quick,
        },
    )
    console.print(f"load average before the run: {header['load_average_before']}")
    if "postgresql" in args.backends and not postgres_reachable():
        raise SystemExit(
            "the postgresql backend needs PostgreSQL on 127.0.0.1:5432 (or drop it from --backends)"
        )
    _, emulator_cpus = cpu_plan(not args.no_pin)
    token_key = new_token_key()
    phases: list[dict[str, Any]] = []
    warm_up: dict[str, Any] = {}
    backends: list[Backend] = []
    with tempfile.TemporaryDirectory(prefix="postventa-bench-delivery-") as directory:
        workdir = Path(directory)
        port = free_port()
        emulator_url = f"http://{LOOPBACK}:{port}"
        command = [POSTVENTA, "emulator", "--host", LOOPBACK, "--port", str(port)]
        emulator = Service(
            "emulator", command, clean_environment(), workdir / "emulator.log", workdir, emulator_cpus
        )
        try:
            emulator.start().wait_listening(port, "/_emulator/config")
            started = time.monotonic()
            plan = asyncio.run(plan_emulator(emulator_url, args))
            console.print(f"[dim]emulator orders made in {time.monotonic() - started:.1f} s[/dim]")
            prepare_backends(args, plan, token_key, emulator_url, workdir, backends)
            warm_up = warm_up_emulator(args, plan, port, workdir)
            for concurrency in args.concurrencies:
                phases.append(run_direct_phase(args, concurrency, 1, plan, emulator, port, workdir))
                for backend in backends:
                    orders = plan.worker_orders[(backend.name, concurrency)]
                    phase = run_worker_phase(
                        args, backend, concurrency, orders, token_key, emulator, emulator_url, workdir
                    )
                    console.print(
                        f"worker {backend.name}, concurrency {concurrency}: "
                        f"{phase['messages_per_second']:,.0f} msg/s "
                        f"({phase['delivered']:,}/{phase['messages']:,} sent)"
                    )
                    phases.append(phase)
                phases.append(run_direct_phase(args, concurrency, 2, plan, emulator, port, workdir))
        finally:
            with deferred_signals():
                stop_all([emulator])
                for backend in backends:
                    if backend.pg_name:
                        drop_postgres_database(backend.pg_name)
    record = {
        **header,
        "load_average_after": load_average(),
        "emulator_config": plan.config,
        "warm_up": warm_up,
        "phases": phases,
        "comparisons": summarise(phases),
        "notes": [
            "Emulator rate limits lifted (PUT /_emulator/config ReadsPerMinute/WritesPerMinute); "
            "the worker's "
            f"pacer lifted (POSTVENTA_MELI_REQUESTS_PER_MINUTE={UNLIMITED_PER_MINUTE}).",
            "Worker drain time: from the commit of the queued messages to the last sent_at; the worker polls "
            "an empty queue every 0.25 s, so up to a quarter second of it is the worker noticing the work.",
            "Worker and direct client pinned to one CPU, the emulator to the other"
            + (
                "; PostgreSQL on every CPU."
                if args.postgres_anywhere
                else "; during PostgreSQL drains, PostgreSQL on the worker's CPU."
            )
            if not args.no_pin
            else "Nothing pinned.",
        ],
    }
    print_report(record)
    append_result(args.output, record)
    return record


if __name__ == "__main__":
    main()
