"""What every benchmark shares: the machine's description, result files, servers as subprocesses
(pinned to a CPU, their CPU time and memory read from /proc), and throwaway PostgreSQL databases."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.fernet import Fernet
from rich.console import Console

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIRECTORY = PROJECT_ROOT / "docs" / "results"
PYTHON = sys.executable
POSTVENTA = str(Path(sys.executable).parent / "postventa")
SHARED_YARDSTICK = PROJECT_ROOT.parent / "shared" / "bench" / "yardstick.py"
# A byte-for-byte copy of the shared yardstick, for checkouts without ../shared (a CI clone);
# tests/bench checks that the two are the same file whenever the shared one is there.
VENDORED_YARDSTICK = PROJECT_ROOT / "bench" / "vendor" / "yardstick.py"
YARDSTICK = Path(
    os.environ.get(
        "POSTVENTA_YARDSTICK", SHARED_YARDSTICK if SHARED_YARDSTICK.exists() else VENDORED_YARDSTICK
    )
)
POSTGRES_ADMIN_URL = os.environ.get(
    "POSTVENTA_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0
CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# A test key and pepper for the benchmark's own throwaway databases (never a deployment's).
BENCH_PEPPER = "bench-pepper"
BENCH_ADMIN_TOKEN = "bench-admin-token"

# Wide enough for the tables when the output is a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 150)


# --- the machine and the result files ------------------------------------------------------------


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg says them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}{'+dirty' if dirty else ''}"


def run_header(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The first fields of a result record: which benchmark, when, on what, how loaded, with what options."""
    return {
        "benchmark": name,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_before": load_average(),
        "options": options,
    }


def default_output(name: str) -> Path:
    """docs/results/bench-<name>.json."""
    return RESULTS_DIRECTORY / f"bench-{name}.json"


def append_result(path: Path, record: dict[str, Any]) -> None:
    """Append one run to the file's list of runs (oldest first), creating the file if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    runs: list[Any] = []
    if path.exists() and path.stat().st_size > 0:
        loaded = json.loads(path.read_text())
        runs = loaded.get("runs", []) if isinstance(loaded, dict) else list(loaded)
    runs.append(record)
    path.write_text(json.dumps({"runs": runs}, indent=1, ensure_ascii=False) + "\n")
    console.print(f"[dim]results appended to {path}[/dim]")


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGTERM and SIGINT until the block is done: a cleanup step is never cut in half."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def stop_cleanly_on_sigterm() -> None:
    """SIGTERM (and SIGINT, even when a background shell ignores it) end the benchmark through its
    cleanup: the servers it started are stopped and its databases dropped."""

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)


# --- numbers -------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of the (sorted) values lie; nearest rank."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def ratio(value: float, reference: float) -> float | None:
    """value / reference, or None when the reference is zero or missing."""
    return round(value / reference, 3) if reference else None


def milliseconds(seconds: float) -> float:
    """Seconds as milliseconds, rounded for a report."""
    return round(seconds * 1000, 2)


# --- ports, environment, processes ---------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def new_token_key() -> str:
    """A fresh Fernet key for the run's Mercado Libre credentials."""
    return Fernet.generate_key().decode("ascii")


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any POSTVENTA_* of the caller, plus `settings`."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("POSTVENTA_")}
    environment.update(settings)
    return environment


def usable_cpus() -> list[int]:
    """The CPUs this process may run on."""
    return sorted(os.sched_getaffinity(0))


def cpu_plan(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load generator CPUs): one CPU each when pinning and at least two are usable."""
    cpus = usable_cpus()
    if not pin or len(cpus) < 2:
        return None, None
    return {cpus[0]}, {cpus[1]}


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime field 14 and stime field 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SECOND


def postgres_cpu_seconds() -> float:
    """User plus system CPU time so far of every PostgreSQL process on the machine (the benchmarks
    run alone on it: these are their databases' backends, and the server's own processes). A
    backend that exits takes its time with it: measure across a phase whose connections stay."""
    total = 0.0
    for pid in postgres_pids():
        with contextlib.suppress(OSError, IndexError):  # gone meanwhile
            total += process_cpu_seconds(pid)
    return total


def postgres_pids() -> list[int]:
    """Every PostgreSQL process on the machine (the postmaster, its helpers, the backends)."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                pids.append(int(comm.parent.name))
        except OSError:  # gone meanwhile
            continue
    return pids


@contextlib.contextmanager
def postgres_pinned(cpus: set[int] | None) -> Iterator[None]:
    """PostgreSQL's processes on `cpus` for the block (new backends inherit it from the
    postmaster), then on every CPU again. Nothing when `cpus` is None, or when not allowed to."""
    if cpus is None:
        yield
        return
    everywhere = set(usable_cpus())

    def pin_all(to: set[int]) -> None:
        for pid in postgres_pids():
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to pin
                os.sched_setaffinity(pid, to)

    pin_all(cpus)
    try:
        yield
    finally:
        pin_all(everywhere)


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all CPUs, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return (total - idle) / CLOCK_TICKS_PER_SECOND, total / CLOCK_TICKS_PER_SECOND


def wait_for_quiet_machine(
    busy_below: float = 0.15, window_seconds: float = 1.0, at_most_seconds: float = 30.0
) -> float:
    """Wait until the machine's CPUs were busy less than `busy_below` of a `window_seconds` window
    (PostgreSQL's autovacuum and checkpoints after a drain, a process still exiting), at most
    `at_most_seconds`; returns how long it waited."""
    started = time.monotonic()
    while time.monotonic() - started < at_most_seconds:
        busy, total = machine_cpu_seconds()
        time.sleep(window_seconds)
        busy_now, total_now = machine_cpu_seconds()
        if total_now > total and (busy_now - busy) / (total_now - total) < busy_below:
            break
    return round(time.monotonic() - started, 1)


def process_memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def process_rss_kib(pid: int) -> int:
    """The resident set now, in KiB (from /proc/PID/statm: cheaper than status, for sampling)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES // 1024


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Service:
    """A server subprocess with its log file; pinned to `cpus` when given."""

    name: str
    command: list[str]
    environment: dict[str, str]
    log_path: Path
    cwd: Path
    cpus: set[int] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Service:
        """Start it (in its own session, so stopping it reaches nothing else)."""
        cpus = self.cpus

        def pin() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)

        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.environment,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=pin,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wait_listening(self, port: int, path: str | None = None) -> None:
        """Until the port accepts connections (and `path` answers 200, when given), or fail with the log."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            if _answers(port, path):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start within {START_TIMEOUT_SECONDS} s:\n{self.tail()}")

    def cpu_seconds(self) -> float:
        """CPU time the process used so far."""
        return process_cpu_seconds(self.pid)

    def log_text(self) -> str:
        """Its whole log (empty if it cannot be read)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, characters: int = 3000) -> str:
        """The end of its log."""
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a while; returns the exit code."""
        if self.process is None:
            return None
        with deferred_signals():
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        return self.process.returncode


def _answers(port: int, path: str | None) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as connection:
            if path is None:
                return True
            connection.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}\r\nConnection: close\r\n\r\n".encode()
            )
            return connection.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def stop_all(services: Iterable[Service]) -> None:
    """Stop every service, the last started first."""
    with deferred_signals():
        for service in reversed(list(services)):
            service.stop()


def run_cli(arguments: list[str], environment: dict[str, str], cwd: Path) -> str:
    """Run `postventa ARGS`; its stdout, or an error with its output."""
    finished = subprocess.run(
        [POSTVENTA, *arguments], env=environment, cwd=cwd, capture_output=True, text=True, check=False
    )
    if finished.returncode != 0:
        raise RuntimeError(f"postventa {' '.join(arguments)} failed:\n{finished.stdout}\n{finished.stderr}")
    return finished.stdout


# --- PostgreSQL ----------------------------------------------------------------------------------


def postgres_reachable(url: str = POSTGRES_ADMIN_URL) -> bool:
    """Whether the PostgreSQL at `url` (by default the benchmark's) answers; the tests ask it too."""

    async def probe() -> bool:
        try:
            connection = await asyncpg.connect(url, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await connection.close()
        return True

    return asyncio.run(probe())


def create_postgres_database(prefix: str) -> tuple[str, str]:
    """A new, uniquely named, empty database; returns (name, URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    return name, f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_postgres_database(name: str) -> None:
    """Drop a database this run made (even with connections left)."""
    with deferred_signals():
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _postgres_admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
