"""Every benchmark of bench/ runs in its --quick mode and writes the result fields docs/ relies on.

The five run at the same time (each is mostly waiting for servers to start), so the test takes
about as long as the slowest one; it is one test, so that pytest-xdist never runs the five twice
at once on two workers. Figures are not checked here, only that each benchmark works: every
request answered 200, every queued message delivered, every upload accepted, every webhook event
delivered. (bench.console has a test of its own below.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The yardstick the send benchmark runs: ../shared's when there is one, else the copy in bench/vendor.
SHARED_YARDSTICK = PROJECT_ROOT.parent / "shared" / "bench" / "yardstick.py"
VENDORED_YARDSTICK = PROJECT_ROOT / "bench" / "vendor" / "yardstick.py"
TIMEOUT_SECONDS = 240
HEADER_FIELDS = {"benchmark", "timestamp", "machine", "load_average_before", "options"}
MACHINE_FIELDS = {"cpu_model", "cores", "ram_gib", "python", "git_commit"}

pytestmark = pytest.mark.slow


def test_every_benchmark_runs_in_quick_mode(tmp_path: Path, postgres_available: bool) -> None:
    runs = run_all(tmp_path, postgres_available)
    backends = ["sqlite", "postgresql"] if postgres_available else ["sqlite"]
    check_send(runs["send"])
    check_delivery(runs["delivery"])
    check_attachments(runs["attachments"])
    check_webhooks(runs["webhooks"], backends)
    if postgres_available:
        check_scale(runs["scale"])


def run_all(directory: Path, postgres_available: bool) -> dict[str, dict[str, Any]]:
    """Start every benchmark in quick mode at once; their last (only) recorded run each."""
    commands = {
        "send": ["--targets", "postventa-sqlite,yardstick"],
        "delivery": ["--backends", "sqlite,postgresql" if postgres_available else "sqlite"],
        "attachments": [],
        "webhooks": ["--backends", "sqlite,postgresql" if postgres_available else "sqlite"],
    }
    if postgres_available:
        commands["scale"] = []
    started = {
        name: subprocess.Popen(
            [*_command(name, directory / f"{name}.json"), *extra],
            cwd=PROJECT_ROOT,
            env={key: value for key, value in os.environ.items() if not key.startswith("POSTVENTA_")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, extra in commands.items()
    }
    results = {}
    try:
        for name, process in started.items():
            output, _ = process.communicate(timeout=TIMEOUT_SECONDS)
            assert process.returncode == 0, f"bench.{name} failed:\n{output[-4000:]}"
            document = json.loads((directory / f"{name}.json").read_text())
            results[name] = document["runs"][-1]
    finally:
        for process in started.values():
            _interrupt(process)
    return results


def _interrupt(process: subprocess.Popen[str]) -> None:
    """Stop a benchmark still running: on SIGTERM it stops its servers and drops its databases."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def _command(name: str, output: Path) -> list[str]:
    return [sys.executable, "-m", f"bench.{name}", "--quick", "--output", str(output)]


def check_header(run: dict[str, Any], name: str) -> None:
    assert HEADER_FIELDS <= set(run)
    assert run["benchmark"] == name
    assert MACHINE_FIELDS <= set(run["machine"])
    assert run["options"]["quick"] is True


def check_send(run: dict[str, Any]) -> None:
    check_header(run, "send")
    assert run["generator_ceiling"]["rps"] > 0
    for name in ("postventa-sqlite", "yardstick"):
        result = run["results"][name]
        assert result["requests"] > 0
        assert result["errors"] == 0, result["error_samples"]
        assert {"rps", "latency_ms", "server_cpu_percent", "generator_cpu_percent", "per_kind"} <= set(result)
        assert {"p50", "p99"} <= set(result["latency_ms"])
    # Every 200 of postventa is a stored message, still queued: no worker ran, in the process or out.
    stored = run["results"]["postventa-sqlite"]["stored"]
    assert stored["accepted"] == stored["queued"] > 0
    assert run["results"]["postventa-sqlite"]["serve_log_has_worker_started"] is False
    comparison = run["ratios"]["postventa-sqlite"]
    assert {"rps_ratio", "p99_ratio", "targets"} <= set(comparison)
    # A row per request kind measured on its own (quick mode: the plain JSON send), and the mix.
    assert set(run["per_kind"]) == {"text_json", "mix"}
    for by_target in run["per_kind"].values():
        assert by_target["postventa-sqlite"]["requests"] > 0
        assert by_target["postventa-sqlite"]["errors"] == 0
    assert "targets" in run["per_kind_ratios"]["text_json"]["postventa-sqlite"]


def check_delivery(run: dict[str, Any]) -> None:
    check_header(run, "delivery")
    phases = run["phases"]
    # The emulator's capacity is measured before and after the drains of each concurrency.
    assert [phase["round"] for phase in phases if phase["phase"] == "emulator_capacity"] == [1, 2]
    for phase in phases:
        assert phase["delivered"] == phase["messages"] > 0, phase
        assert phase["messages_per_second"] > 0
        assert phase["machine_cpu_busy_percent"] > 0
    for comparison in run["comparisons"].values():
        assert {"messages_per_second", "emulator_capacity", "ratio", "met"} <= set(comparison)
        measured = comparison["emulator_capacity_measured"]
        assert comparison["emulator_capacity"] == round(sum(measured) / len(measured), 1)


def check_attachments(run: dict[str, Any]) -> None:
    check_header(run, "attachments")
    assert [result["mode"] for result in run["results"]] == ["multipart", "base64"]
    for result in run["results"]:
        assert result["status"] == 200, result["response"]
        assert result["peak_rss_mib"] >= result["idle_rss_mib"] > 0
        assert {"growth_over_file_size", "target_at_most", "met"} <= set(result)


def check_webhooks(run: dict[str, Any], backends: list[str]) -> None:
    check_header(run, "webhooks")
    events, messages = run["options"]["events"], run["options"]["messages"]
    phases = run["phases"]
    capacity = [phase for phase in phases if phase["phase"] == "receiver_capacity"]
    assert [phase["requests"] for phase in capacity] == [events]
    # The worker delivered every queued event to the receiver, which checked each signature.
    delivered = {phase["backend"]: phase["delivered"] for phase in phases if phase["phase"] == "events"}
    assert delivered == {backend: events for backend in backends}
    # Mercado Libre delivery drained every message, with and without a dead endpoint on the account.
    drains = [phase for phase in phases if phase["phase"] == "worker"]
    assert [(phase["backend"], phase["webhooks"]) for phase in drains] == [
        (backend, label) for backend in backends for label in ("warm_up", "no_endpoint", "dead_endpoint")
    ]
    for phase in drains:
        assert phase["delivered"] == phase["messages"] > 0, phase
        assert phase["statuses"] == {"sent": phase["messages"]}
    assert {phase["messages"] for phase in drains if phase["webhooks"] != "warm_up"} == {messages}
    for backend in backends:
        comparison = run["comparisons"][f"meli_{backend}"]
        assert comparison["ratio_dead_to_none"] > 0
        assert run["comparisons"][f"events_{backend}"]["events_per_second"] > 0


def check_scale(run: dict[str, Any]) -> None:
    check_header(run, "scale")
    scale, empty = run["results"]["scale"], run["results"]["empty"]
    assert scale["database"]["rows"]["orders"] > empty["database"]["rows"]["orders"]
    for result in (scale, empty):
        assert result["requests"] > 0
        assert result["errors"] == 0, result["error_samples"]
    assert {"p50_ratio", "target_at_most", "met"} <= set(run["comparison"])


def test_the_vendored_yardstick_is_the_shared_one_unchanged() -> None:
    """The benchmark uses ../shared/bench/yardstick.py as it is; the copy in bench/vendor serves
    checkouts without ../shared and must not drift from it."""
    assert VENDORED_YARDSTICK.exists()
    if SHARED_YARDSTICK.exists():
        assert VENDORED_YARDSTICK.read_bytes() == SHARED_YARDSTICK.read_bytes()


CONSOLE_PAGES = {
    "inbox",
    "inbox_waiting",
    "inbox_failed",
    "inbox_search",
    "inbox_middle_page",
    "inbox_refresh",
    "conversation",
    "conversation_refresh",
}


def test_the_console_benchmark_runs_in_quick_mode(tmp_path: Path, postgres_available: bool) -> None:
    """bench.console seeds, serves and measures every page on each database (one process per
    database, at the same time); each figure is the server's own (its access log), so never more
    than what the client waited for the same requests."""
    backends = ["sqlite", "postgresql"] if postgres_available else ["sqlite"]
    started = {
        backend: subprocess.Popen(
            [*_command("console", tmp_path / f"{backend}.json"), "--backends", backend],
            cwd=PROJECT_ROOT,
            env={key: value for key, value in os.environ.items() if not key.startswith("POSTVENTA_")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for backend in backends
    }
    try:
        for backend, process in started.items():
            printed, _ = process.communicate(timeout=TIMEOUT_SECONDS)
            assert process.returncode == 0, f"bench.console on {backend} failed:\n{printed[-4000:]}"
    finally:
        for process in started.values():
            _interrupt(process)
    for backend in backends:
        check_console(json.loads((tmp_path / f"{backend}.json").read_text())["runs"][-1], backend)


def check_console(run: dict[str, Any], backend: str) -> None:
    check_header(run, "console")
    assert set(run["results"]) == {backend}
    seeded = run["seeded"][backend]
    assert seeded["conversations"] == run["options"]["conversations"]
    assert seeded["orders"] > seeded["conversations"]  # some conversations are packs
    assert seeded["long_messages"] == run["options"]["long_messages"]
    pages = run["results"][backend]
    assert set(pages) == CONSOLE_PAGES
    for name, page in pages.items():
        assert page["requests"] == run["options"]["requests"], name
        # The server's clock stops when the application returns, a moment after the answer's last
        # byte left: its median may pass the client's by that moment, never by more.
        assert 0 < page["server_ms"]["p50"] <= page["client_ms"]["p50"] + 2.0, name
        assert page["server_ms"]["p50"] <= page["server_ms"]["p95"] <= page["server_ms"]["max"]
        assert page["server_cpu_ms_per_request"] >= 0
        assert page["met"] == (page["server_ms"]["p50"] < run["target_p50_ms_below"])
    assert run["met"] == all(page["met"] for page in pages.values())
