"""bench send: closed-loop load on POST /v2/orders/{orderId}/messages, postventa against the yardstick.

    .venv/bin/python -m bench.send [--duration 10] [--connections 32] [--rounds 2]
                                   [--targets postventa-sqlite,yardstick,postventa-pg] [--quick]
                                   [--kinds text_json,...,mix] [--before DIR ...]

Targets, each one process on loopback, pinned to the same CPU (the load generator gets the other):
- postventa-sqlite: `postventa serve` on a fresh embedded SQLite database;
- yardstick: ../shared/bench/yardstick.py (FastAPI + one SQLite insert), on a fresh SQLite file;
- postventa-pg: `postventa serve` on a fresh PostgreSQL database (dropped afterwards);
- postventa@NAME (with `--before DIR`, NAME the directory's name; repeatable): `postventa serve` of
  the source tree in DIR (another checkout, e.g. `git archive <commit>`), on its own fresh SQLite
  database: before and after a change, side by side in one run.
postventa runs with its embedded delivery worker off (POSTVENTA_EMBEDDED_WORKER=false): no worker,
no poller, nothing leaves the machine; the API alone is measured, and every accepted message is
checked to be stored and still queued afterwards. Each request goes to an order no earlier request
used (the conversation rules refuse a second seller message until the buyer answers).

The run: the generator's ceiling against a trivial server, a warm-up per target, then rounds in
which each request kind (`--kinds`: each kind of the mix on its own, and the mix) goes to the
targets in turn (rotated each round) so that machine noise hits all of them. Any answer other than
200 is an error. Results: a row per kind and target, and docs/results/bench-send.json.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import mix, profile
from bench.common import (
    LOOPBACK,
    POSTVENTA,
    PYTHON,
    YARDSTICK,
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
    new_token_key,
    percentile,
    postgres_reachable,
    run_cli,
    run_header,
    stop_all,
    stop_cleanly_on_sigterm,
)
from bench.loadgen import run_generator
from bench.seed import OrderPools, Tenant
from bench.send_report import compare, print_report
from bench.service import postventa_environment, prepare_database, stored_outbound

TARGETS = ("postventa-sqlite", "yardstick", "postventa-pg")
BEFORE = "postventa@"  # and the name of the other tree's directory


@dataclass
class Target:
    """One server under test and what was measured of it."""

    name: str
    service: Service
    port: int
    tenant: Tenant | None = None
    pools: OrderPools | None = None
    database_url: str | None = None
    token_key: str = ""
    used: dict[str, int] = field(default_factory=lambda: {"fresh": 0, "answered": 0})
    accepted: int = 0
    # What was measured, by request kind (mix.KINDS).
    rounds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    latencies: dict[str, array[float]] = field(default_factory=dict)
    server_cpu_seconds: dict[str, float] = field(default_factory=dict)

    def pools_json(self) -> dict[str, dict[str, int]]:
        """What is left of its order pools (the yardstick takes any id)."""
        if self.pools is None:
            return {"fresh": {"first": 1, "count": 10**9}, "answered": {"first": 1, "count": 10**9}}
        first = self.pools.to_json()
        return {
            name: {"first": pool["first"] + self.used[name], "count": pool["count"] - self.used[name]}
            for name, pool in first.items()
        }


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.send", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per kind per target per round")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--targets", default=",".join(TARGETS), help=f"comma-separated, of {', '.join(TARGETS)}"
    )
    parser.add_argument(
        "--ceiling-seconds", type=float, default=5.0, help="generator alone vs a trivial server"
    )
    parser.add_argument(
        "--expected-rps",
        type=float,
        default=6000.0,
        help="sizes the order pools: requests/s no target exceeds",
    )
    parser.add_argument(
        "--log-level", default="info", help="postventa's POSTVENTA_LOG_LEVEL (its default: info)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and generator to CPUs")
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy each server in round 1; collapsed stacks go here"
    )
    parser.add_argument(
        "--kinds",
        default=None,
        help="request kinds, each measured on its own, comma-separated, of "
        f"{', '.join(mix.KINDS)} (default: all; with --quick: text_json,mix)",
    )
    parser.add_argument(
        "--before",
        type=Path,
        action="append",
        default=[],
        help=f"a source tree (DIR/src/postventa) to run as {BEFORE}<DIR's name>, beside the current "
        "code (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds: tiny durations, one round")
    parser.add_argument("--output", type=Path, default=default_output("send"))
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 1.5, 0.5, 1
        args.connections = min(args.connections, 8)
        args.ceiling_seconds, args.expected_rps = 1.0, 1500.0
    args.targets = [name.strip() for name in args.targets.split(",") if name.strip()]
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    args.trees = {}
    for tree in args.before:
        if not (tree / "src" / "postventa").is_dir():
            parser.error(f"--before {tree}: no src/postventa in it")
        args.trees[BEFORE + tree.resolve().name] = tree.resolve()
    args.targets.extend(args.trees)
    kinds = args.kinds or ("text_json,mix" if args.quick else ",".join(mix.KINDS))
    args.kinds = [name.strip() for name in kinds.split(",") if name.strip()]
    unknown = set(args.kinds) - set(mix.KINDS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    return args


def order_needs(args: argparse.Namespace) -> dict[str, int]:
    """Orders of each pool one postventa target may use: every kind at `--expected-rps` for all
    its rounds, and the warm-up (the mix)."""
    needs = mix.pool_needs(int(args.expected_rps * args.warmup))
    for kind in args.kinds:
        for pool, count in mix.pool_needs(int(args.expected_rps * args.duration * args.rounds), kind).items():
            needs[pool] += count
    return needs


def start_targets(args: argparse.Namespace, workdir: Path, pg_url: str | None, targets: list[Target]) -> None:
    """Prepare and start each target, adding it to `targets` as soon as its process exists (so that
    an interrupted start still stops what it started)."""
    server_cpus, _ = cpu_plan(not args.no_pin)
    token_key = new_token_key()
    needs = order_needs(args)
    for name in args.targets:
        port = free_port()
        if name == "yardstick":
            command = [PYTHON, str(YARDSTICK), "--port", str(port), "--db", str(workdir / "yardstick.db")]
            service = Service(
                name, command, clean_environment(), workdir / f"{name}.log", workdir, server_cpus
            )
            targets.append(Target(name, service.start(), port))
            service.wait_listening(port)
            continue
        url = f"sqlite:///{workdir / name}.db" if name != "postventa-pg" else pg_url
        assert url is not None
        environment = postventa_environment(url, token_key, args.log_level)
        if name in args.trees:
            # The other tree's package comes first on the path: serve, and its migrations, run it.
            environment["PYTHONPATH"] = str(args.trees[name] / "src")
        run_cli(["db", "upgrade"], environment, workdir)
        console.print(
            f"[dim]{name}: seeding {needs['fresh']:,} fresh and {needs['answered']:,} answered orders[/dim]"
        )
        tenant, pools = asyncio.run(prepare_database(url, token_key, needs["fresh"], needs["answered"]))
        command = [POSTVENTA, "serve", "--host", LOOPBACK, "--port", str(port)]
        service = Service(name, command, environment, workdir / f"{name}.log", workdir, server_cpus)
        target = Target(name, service.start(), port, tenant, pools, url, token_key)
        targets.append(target)
        service.wait_listening(port, "/healthz")


def generator_spec(
    args: argparse.Namespace, target: Target, duration: float, seed: int, kind: str = "mix"
) -> dict[str, Any]:
    tenant = target.tenant or Tenant(1, "pv_000000000000_yardstick")
    return {
        "host": LOOPBACK,
        "port": target.port,
        "connections": args.connections,
        "duration": duration,
        "seed": seed,
        "kinds": mix.kind_requests(kind, target.port, tenant.api_key, tenant.account_id),
        "pools": target.pools_json(),
    }


def drive(
    args: argparse.Namespace,
    target: Target,
    duration: float,
    workdir: Path,
    *,
    measure: bool,
    seed: int,
    kind: str = "mix",
    profile_path: Path | None = None,
) -> dict[str, Any]:
    """One generator run of `kind` against the target; kept in its tally when `measure`."""
    _, generator_cpus = cpu_plan(not args.no_pin)
    recorder = None
    if profile_path is not None:
        recorder = profile.start(target.service.pid, duration - 0.5, profile_path)
    cpu_before = target.service.cpu_seconds()
    summary, latencies = run_generator(
        generator_spec(args, target, duration, seed, kind), workdir, generator_cpus
    )
    server_cpu = target.service.cpu_seconds() - cpu_before
    if recorder is not None and profile_path is not None:
        recorder.wait(timeout=60)
        summary["profile"] = profile.finish(recorder, profile_path)
    for name, used in summary["consumed"].items():
        target.used[name] += used
    target.accepted += summary["statuses"].get("200", 0)
    summary["server_cpu_percent"] = round(100 * server_cpu / summary["seconds"], 1)
    summary["load_average"] = load_average()
    if measure:
        target.rounds.setdefault(kind, []).append(summary)
        target.latencies.setdefault(kind, array("d")).extend(latencies)
        target.server_cpu_seconds[kind] = target.server_cpu_seconds.get(kind, 0.0) + server_cpu
    if summary["pool_exhausted"]:
        console.print(
            f"[red]{target.name}: order pool '{summary['pool_exhausted']}' ran out; "
            "raise --expected-rps[/red]"
        )
    return summary


def measure_round(args: argparse.Namespace, target: Target, kind: str, number: int, workdir: Path) -> None:
    """Round `number` of `kind` against the target (profiled, when asked, in the first round)."""
    profile_path = None
    if args.profile is not None and number == 0:
        profile_path = args.profile / f"{target.name}-{kind}.txt"
    summary = drive(
        args,
        target,
        args.duration,
        workdir,
        measure=True,
        seed=100 + number,
        kind=kind,
        profile_path=profile_path,
    )
    console.print(
        f"round {number + 1} {kind} {target.name}: {summary['rps']:,.0f} req/s, "
        f"p99 {summary['latency_ms']['p99']} ms, errors {summary['errors']}"
    )


def measure_ceiling(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The generator alone, with the same mix, against the cheapest possible server."""
    server_cpus, generator_cpus = cpu_plan(not args.no_pin)
    port = free_port()
    command = [PYTHON, "-m", "bench.trivial_server", "--port", str(port)]
    service = Service(
        "trivial", command, clean_environment(), workdir / "trivial.log", Path.cwd(), server_cpus
    )
    service.start()
    try:
        service.wait_listening(port)
        target = Target("trivial", service, port)
        spec = generator_spec(args, target, args.ceiling_seconds, seed=0)
        summary, _ = run_generator(spec, workdir, generator_cpus, keep_latencies=False)
    finally:
        service.stop()
    return {
        "rps": summary["rps"],
        "generator_cpu_percent": summary["cpu_percent"],
        "p50_ms": summary["latency_ms"]["p50"],
        "errors": summary["errors"],
    }


def summarise(target: Target, kind: str) -> dict[str, Any]:
    """All measured rounds of a target and a request kind together."""
    rounds = target.rounds.get(kind, [])
    cpu_seconds = target.server_cpu_seconds.get(kind, 0.0)
    seconds = sum(round_["seconds"] for round_ in rounds)
    requests = sum(round_["requests"] for round_ in rounds)
    ordered = sorted(target.latencies.get(kind, ()))
    statuses: dict[str, int] = {}
    for round_ in rounds:
        for status, count in round_["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    per_kind: dict[str, dict[str, Any]] = {}
    for round_ in rounds:
        for name, kind in round_["per_kind"].items():
            entry = per_kind.setdefault(name, {"requests": 0, "errors": 0, "weighted_ms": 0.0})
            entry["requests"] += kind["requests"]
            entry["errors"] += kind["errors"]
            entry["weighted_ms"] += (kind["mean_ms"] or 0) * kind["requests"]
    return {
        "requests": requests,
        "seconds": round(seconds, 2),
        "rps": round(requests / seconds, 1) if seconds else 0.0,
        "rps_per_round": [round_["rps"] for round_ in rounds],
        "latency_ms": {
            "p50": round(percentile(ordered, 0.50) * 1000, 2),
            "p90": round(percentile(ordered, 0.90) * 1000, 2),
            "p99": round(percentile(ordered, 0.99) * 1000, 2),
            "max": round(ordered[-1] * 1000, 2) if ordered else None,
        },
        "errors": sum(round_["errors"] for round_ in rounds),
        "statuses": statuses,
        "error_samples": [sample for round_ in rounds for sample in round_["error_samples"]][:5],
        "per_kind": {
            name: {
                "requests": entry["requests"],
                "errors": entry["errors"],
                "mean_ms": round(entry["weighted_ms"] / entry["requests"], 2) if entry["requests"] else None,
            }
            for name, entry in sorted(per_kind.items())
        },
        "server_cpu_percent": round(100 * cpu_seconds / seconds, 1) if seconds else None,
        # CPU time per request: unlike requests/s, barely moved by what else the machine runs.
        "server_cpu_ms_per_request": round(1000 * cpu_seconds / requests, 3) if requests else None,
        "generator_cpu_percent": round(sum(round_["cpu_seconds"] for round_ in rounds) * 100 / seconds, 1)
        if seconds
        else None,
        "load_average_after_each_round": [round_["load_average"] for round_ in rounds],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_arguments(argv)
    stop_cleanly_on_sigterm()
    header = run_header(
        "send",
        {
            "duration": args.duration,
            "warmup": args.warmup,
            "connections": args.connections,
            "rounds": args.rounds,
            "targets": args.targets,
            "log_level": args.log_level,
            "pinned": not args.no_pin,
            "quick": args.quick,
            "kinds": args.kinds,
            "before": {name: str(tree) for name, tree in args.trees.items()},
        },
    )
    console.print(f"load average before the run: {header['load_average_before']}")
    pg_name = pg_url = None
    if "postventa-pg" in args.targets:
        if not postgres_reachable():
            raise SystemExit("postventa-pg needs PostgreSQL on 127.0.0.1:5432 (or drop it from --targets)")
        pg_name, pg_url = create_postgres_database("postventa_bench_send")
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="postventa-bench-send-") as directory:
        workdir = Path(directory)
        try:
            start_targets(args, workdir, pg_url, targets)
            console.print("measuring the load generator's ceiling…")
            ceiling = measure_ceiling(args, workdir)
            for target in targets:
                console.print(f"warm-up: {target.name}")
                drive(args, target, args.warmup, workdir, measure=False, seed=1)
            for number in range(args.rounds):
                order = targets[number % len(targets) :] + targets[: number % len(targets)]
                for kind in args.kinds:
                    for target in order:
                        measure_round(args, target, kind, number, workdir)
            stored = {
                target.name: asyncio.run(stored_outbound(target.database_url, target.token_key))
                for target in targets
                if target.database_url
            }
        finally:
            with deferred_signals():
                stop_all(target.service for target in targets)
                if pg_name:
                    drop_postgres_database(pg_name)
        # The delivery worker logs worker_started (at info) when it starts: an embedded one would show.
        worker_started = {
            target.name: "worker_started" in target.service.log_text()
            for target in targets
            if target.database_url
        }
    per_kind = {kind: {target.name: summarise(target, kind) for target in targets} for kind in args.kinds}
    results = per_kind.get("mix") or per_kind[args.kinds[0]]
    notes = [
        "postventa ran `postventa serve` with POSTVENTA_EMBEDDED_WORKER=false: no delivery worker and no "
        "Mercado Libre poller in the process (the worker was not running at all); the API alone is measured.",
        f"postventa logged at level '{args.log_level}' to a file, as `serve` does by default.",
        "Servers pinned to one CPU and the load generator to another."
        if not args.no_pin
        else "Nothing pinned.",
    ]
    for name, started in worker_started.items():
        results[name]["serve_log_has_worker_started"] = started
        if args.log_level.lower() in ("info", "debug"):
            notes.append(f"{name}: the serve log {'shows a' if started else 'has no'} worker_started event.")
    for name, counts in stored.items():
        target = next(item for item in targets if item.name == name)
        answered = target.pools.answered_count if target.pools else 0
        queued = counts.get("queued", 0)
        results[name]["stored"] = {"accepted": target.accepted, "queued": queued, "by_status": counts}
        notes.append(
            f"{name}: {target.accepted:,} requests answered 200 (warm-up included); {queued:,} messages "
            f"stored and still queued; {answered:,} seeded history messages marked sent."
        )
    record = {
        **header,
        "load_average_after": load_average(),
        "generator_ceiling": ceiling,
        "results": results,
        "ratios": compare(results),
        "per_kind": per_kind,
        "per_kind_ratios": {kind: compare(by_target) for kind, by_target in per_kind.items()},
        "notes": notes,
    }
    print_report(record)
    append_result(args.output, record)
    return record


if __name__ == "__main__":
    main()
