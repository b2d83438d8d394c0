"""The send benchmark's verdict: ratios to the yardstick against the issue's targets, and the table."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from bench.common import console, ratio

# Issue 18: postventa-sqlite, each request kind on its own and the mix, at least 0.6 x the
# yardstick's requests/s for the same kind, and its p99 under 3 x the yardstick's.
RPS_TARGET = 0.6
P99_TARGET = 3.0


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ratios of each postventa target to the yardstick, and the targets of the issue."""
    yardstick = results.get("yardstick")
    if yardstick is None:
        return {}
    ratios: dict[str, Any] = {}
    for name, result in results.items():
        if name == "yardstick":
            continue
        rps = ratio(result["rps"], yardstick["rps"])
        p99 = ratio(result["latency_ms"]["p99"], yardstick["latency_ms"]["p99"])
        ratios[name] = {"rps_ratio": rps, "p99_ratio": p99}
        if name == "postventa-sqlite":
            ratios[name]["targets"] = {
                "rps_ratio_at_least": RPS_TARGET,
                "p99_ratio_below": P99_TARGET,
                "met": rps is not None and p99 is not None and rps >= RPS_TARGET and p99 < P99_TARGET,
            }
    return ratios


def print_report(record: dict[str, Any]) -> None:
    ceiling, options = record["generator_ceiling"], record["options"]
    console.print(
        f"Load generator alone vs a trivial server: {ceiling['rps']:,.0f} requests/s "
        f"at {ceiling['generator_cpu_percent']}% of its CPU (same mix, {options['connections']} connections)"
    )
    table = Table(
        title=f"send: {options['connections']} connections, {options['rounds']} x {options['duration']} s "
        "per kind and target"
    )
    for column in (
        "kind",
        "target",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "server CPU %",
        "server CPU ms/req",
        "gen CPU %",
        "req/s vs yardstick",
        "p99 vs yardstick",
    ):
        if column in ("kind", "target"):
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, justify="right")
    per_kind = record.get("per_kind") or {"mix": record["results"]}
    for kind, results in per_kind.items():
        ratios = record.get("per_kind_ratios", {}).get(kind) or compare(results)
        for number, (name, result) in enumerate(results.items()):
            table.add_row(kind if number == 0 else "", name, *_row(result, ratios.get(name, {}), name))
        table.add_section()
    console.print(table)
    for kind, results in per_kind.items():
        for name, result in results.items():
            for sample in result["error_samples"]:
                console.print(
                    f"[red]{kind} {name} {sample['kind']}: {sample['status']} {sample['body'][:200]}[/red]"
                )
    for note in record["notes"]:
        console.print(f"[dim]{note}[/dim]")


def _row(result: dict[str, Any], ratios: dict[str, Any], name: str) -> list[str]:
    goal = name == "postventa-sqlite"
    return [
        f"{result['rps']:,.0f}",
        f"{result['latency_ms']['p50']:.1f}",
        f"{result['latency_ms']['p99']:.1f}",
        str(result["errors"]),
        str(result["server_cpu_percent"]),
        str(result["server_cpu_ms_per_request"]),
        str(result["generator_cpu_percent"]),
        _ratio_text(ratios.get("rps_ratio"), "≥", RPS_TARGET if goal else None),
        _ratio_text(ratios.get("p99_ratio"), "<", P99_TARGET if goal else None),
    ]


def _ratio_text(value: float | None, sign: str, goal: float | None) -> str:
    if value is None:
        return "-"
    if goal is None:
        return f"{value:.2f}"
    met = value >= goal if sign == "≥" else value < goal
    return f"[{'green' if met else 'red'}]{value:.2f} (target {sign} {goal})[/]"
