"""bench scale: send latency on a PostgreSQL database holding 1,000,000 orders and 3,000,000
messages, against an empty one.

    .venv/bin/python -m bench.scale [--orders 1000000] [--messages 3000000] [--accounts 100]
                                    [--duration 10] [--rounds 3] [--connections 8] [--quick]

Two databases are made on 127.0.0.1:5432 and migrated with `postventa db upgrade`; both are
dropped at the end. The large one is filled with COPY: rows made by Python generators and streamed
by asyncpg's `copy_records_to_table`, one connection per table, foreign-key triggers off for the
load (`session_replication_role = replica`; the rows are consistent by construction), then
ANALYZE. Its orders are spread over `--accounts` accounts (the benchmark's own is one of them); each
order's conversation holds messages in turn seller, buyer, seller… (all delivered or received).
Both databases then get the benchmark's fresh orders (and a few answered ones, for the attachments
of the mix) and one `postventa serve` each; the send mix of `bench.send` runs against them in
turns (a warm-up, then `--rounds` rounds), `--connections` at a time. Target: p50 at scale at most
1.25 x the empty database's.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from rich.table import Table

from bench import mix
from bench.bulk import bulk_load
from bench.common import (
    LOOPBACK,
    POSTVENTA,
    Service,
    append_result,
    console,
    cpu_plan,
    create_postgres_database,
    default_output,
    deferred_signals,
    drop_postgres_database,
    free_port,
    load_average,
    new_token_key,
    percentile,
    postgres_reachable,
    ratio,
    run_cli,
    run_header,
    stop_all,
    stop_cleanly_on_sigterm,
)
from bench.loadgen import run_generator
from bench.seed import create_tenant, seed_send_orders
from bench.service import postventa_environment
from postventa.store.engine import Database
from postventa.store.sealing import TokenCipher

TARGET_RATIO = 1.25


@dataclass
class Side:
    """One database, its server and what was measured on it."""

    name: str
    pg_name: str
    url: str
    port: int = 0
    service: Service | None = None
    tenant_key: str = ""
    account_id: int = 0
    pools: dict[str, dict[str, int]] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=lambda: {"fresh": 0, "answered": 0})
    latencies: array[float] = field(default_factory=lambda: array("d"))
    rounds: list[dict[str, Any]] = field(default_factory=list)
    load: dict[str, Any] = field(default_factory=dict)

    def pools_json(self) -> dict[str, dict[str, int]]:
        return {
            name: {"first": pool["first"] + self.used[name], "count": pool["count"] - self.used[name]}
            for name, pool in self.pools.items()
        }


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=3_000_000)
    parser.add_argument("--accounts", type=int, default=100, help="accounts the orders are spread over")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per database per round")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8, help="sends in flight")
    parser.add_argument("--expected-rps", type=float, default=1500.0, help="sizes the fresh order pools")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a few seconds: 2,000 orders, 6,000 messages")
    parser.add_argument("--output", type=Path, default=default_output("scale"))
    args = parser.parse_args(argv)
    if args.quick:
        args.orders, args.messages, args.accounts = min(args.orders, 2000), min(args.messages, 6000), 4
        args.duration, args.warmup, args.rounds, args.expected_rps = 1.5, 0.5, 1, 1000.0
    if args.orders < args.accounts or args.messages < 0:
        parser.error("--orders must be at least --accounts, --messages not negative")
    return args


# --- the sends -----------------------------------------------------------------------------------


async def prepare_sends(side: Side, token_key: str, tenant: Any, args: argparse.Namespace) -> None:
    """The benchmark's fresh (and answered) orders in its account."""
    requests = args.expected_rps * (args.warmup + args.duration * args.rounds)
    needs = mix.pool_needs(int(requests))
    database = Database(side.url, token_cipher=TokenCipher([token_key]))
    try:
        if tenant is None:
            tenant = await create_tenant(database, "scale bench")
        pools = await seed_send_orders(
            database, tenant.account_id, fresh=needs["fresh"], answered=needs["answered"]
        )
    finally:
        await database.dispose()
    side.tenant_key, side.account_id, side.pools = tenant.api_key, tenant.account_id, pools.to_json()


def drive(
    args: argparse.Namespace, side: Side, duration: float, workdir: Path, *, measure: bool
) -> dict[str, Any]:
    _, generator_cpus = cpu_plan(not args.no_pin)
    spec = {
        "host": LOOPBACK,
        "port": side.port,
        "connections": args.connections,
        "duration": duration,
        "seed": len(side.rounds),
        "kinds": mix.send_mix(side.port, side.tenant_key, side.account_id),
        "pools": side.pools_json(),
    }
    summary, latencies = run_generator(spec, workdir, generator_cpus)
    for name, used in summary["consumed"].items():
        side.used[name] += used
    summary["load_average"] = load_average()
    if measure:
        side.rounds.append(summary)
        side.latencies.extend(latencies)
    return summary


def summarise(side: Side) -> dict[str, Any]:
    ordered = sorted(side.latencies)
    seconds = sum(round_["seconds"] for round_ in side.rounds)
    requests = sum(round_["requests"] for round_ in side.rounds)
    return {
        "requests": requests,
        "rps": round(requests / seconds, 1) if seconds else 0.0,
        "latency_ms": {
            "p50": round(percentile(ordered, 0.50) * 1000, 2),
            "p90": round(percentile(ordered, 0.90) * 1000, 2),
            "p99": round(percentile(ordered, 0.99) * 1000, 2),
        },
        "p50_per_round_ms": [round_["latency_ms"]["p50"] for round_ in side.rounds],
        "errors": sum(round_["errors"] for round_ in side.rounds),
        "error_samples": [sample for round_ in side.rounds for sample in round_["error_samples"]][:5],
        "load_average_after_each_round": [round_["load_average"] for round_ in side.rounds],
        "database": side.load,
    }


def print_report(record: dict[str, Any]) -> None:
    options = record["options"]
    table = Table(
        title=f"scale: sends, {options['connections']} in flight, "
        f"{options['rounds']} x {options['duration']} s per database"
    )
    for column in (
        "database",
        "orders",
        "messages",
        "sends",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "p50 vs empty",
    ):
        table.add_column(column, justify="left" if column == "database" else "right")
    comparison = record["comparison"]
    for name, result in record["results"].items():
        rows = result["database"].get("rows", {})
        ratio_text = "-"
        if name == "scale" and comparison["p50_ratio"] is not None:
            colour = "green" if comparison["met"] else "red"
            ratio_text = f"[{colour}]{comparison['p50_ratio']:.2f} (target ≤ {TARGET_RATIO})[/]"
        table.add_row(
            name,
            f"{rows.get('orders', 0):,}",
            f"{rows.get('messages', 0):,}",
            f"{result['requests']:,}",
            f"{result['rps']:,.0f}",
            f"{result['latency_ms']['p50']:.1f}",
            f"{result['latency_ms']['p99']:.1f}",
            str(result["errors"]),
            ratio_text,
        )
    console.print(table)
    console.print("[dim]* rows in the database, the benchmark's own fresh and answered orders included[/dim]")
    for name, result in record["results"].items():
        for sample in result["error_samples"]:
            console.print(f"[red]{name} {sample['kind']}: {sample['status']} {sample['body'][:200]}[/red]")


async def count_rows(url: str) -> dict[str, int]:
    connection = await asyncpg.connect(url)
    try:
        return {
            table: int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
            for table in ("accounts", "orders", "messages")
        }
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_arguments(argv)
    stop_cleanly_on_sigterm()
    header = run_header(
        "scale",
        {
            "orders": args.orders,
            "messages": args.messages,
            "accounts": args.accounts,
            "duration": args.duration,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "connections": args.connections,
            "log_level": args.log_level,
            "pinned": not args.no_pin,
            "quick": args.quick,
        },
    )
    console.print(f"load average before the run: {header['load_average_before']}")
    if not postgres_reachable():
        raise SystemExit("bench.scale needs PostgreSQL on 127.0.0.1:5432")
    token_key = new_token_key()
    server_cpus, _ = cpu_plan(not args.no_pin)
    sides: list[Side] = []
    with tempfile.TemporaryDirectory(prefix="postventa-bench-scale-") as directory:
        workdir = Path(directory)
        try:
            for name in ("scale", "empty"):
                pg_name, url = create_postgres_database(f"postventa_bench_{name}")
                sides.append(Side(name, pg_name, url))
            for side in sides:
                run_cli(["db", "upgrade"], postventa_environment(side.url, token_key, "warning"), workdir)
            scale, empty = sides
            console.print(f"loading {args.orders:,} orders and {args.messages:,} messages with COPY…")
            loaded = asyncio.run(
                bulk_load(
                    scale.url,
                    token_key,
                    orders_count=args.orders,
                    messages_count=args.messages,
                    accounts=args.accounts,
                )
            )
            console.print(f"loaded in {loaded['load_seconds']} s ({loaded['database_mib']:,} MiB)")
            asyncio.run(prepare_sends(scale, token_key, loaded.pop("tenant"), args))
            asyncio.run(prepare_sends(empty, token_key, None, args))
            scale.load = {**loaded, "rows": asyncio.run(count_rows(scale.url))}
            empty.load = {"rows": asyncio.run(count_rows(empty.url))}
            for side in sides:
                side.port = free_port()
                command = [POSTVENTA, "serve", "--host", LOOPBACK, "--port", str(side.port)]
                environment = postventa_environment(side.url, token_key, args.log_level)
                side.service = Service(
                    f"serve-{side.name}",
                    command,
                    environment,
                    workdir / f"{side.name}.log",
                    workdir,
                    server_cpus,
                )
                side.service.start().wait_listening(side.port, "/healthz")
            for side in sides:
                drive(args, side, args.warmup, workdir, measure=False)
            for number in range(args.rounds):
                for side in sides if number % 2 == 0 else sides[::-1]:
                    summary = drive(args, side, args.duration, workdir, measure=True)
                    console.print(
                        f"round {number + 1} {side.name}: p50 {summary['latency_ms']['p50']} ms, "
                        f"p99 {summary['latency_ms']['p99']} ms, {summary['rps']:,.0f} req/s, "
                        f"errors {summary['errors']}"
                    )
        finally:
            with deferred_signals():
                stop_all(side.service for side in sides if side.service is not None)
                for side in sides:
                    drop_postgres_database(side.pg_name)
    results = {side.name: summarise(side) for side in sides}
    p50_ratio = ratio(results["scale"]["latency_ms"]["p50"], results["empty"]["latency_ms"]["p50"])
    record = {
        **header,
        "load_average_after": load_average(),
        "results": results,
        "comparison": {
            "p50_ratio": p50_ratio,
            "p99_ratio": ratio(results["scale"]["latency_ms"]["p99"], results["empty"]["latency_ms"]["p99"]),
            "target_at_most": TARGET_RATIO,
            "met": p50_ratio is not None and p50_ratio <= TARGET_RATIO and results["scale"]["errors"] == 0,
        },
        "notes": [
            "Each database served by its own `postventa serve` (one process, embedded worker off), pinned "
            "to the same CPU; the load generator on the other; PostgreSQL unpinned.",
            "Sends use the mix of bench.send, each on a fresh order; the databases are dropped afterwards.",
        ],
    }
    print_report(record)
    append_result(args.output, record)
    return record


if __name__ == "__main__":
    main()
