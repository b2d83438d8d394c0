"""bench console: the operator console's pages on an account with 10,000 conversations, in server time.

    .venv/bin/python -m bench.console [--conversations 10000] [--long-messages 200]
                                      [--requests 40] [--backends sqlite,postgresql] [--quick]

For each database (a SQLite file, and a uniquely named PostgreSQL database dropped at the end) the
schema is made by `postventa db upgrade`, then `bench.console_seed` fills it: an account with
`--conversations` conversations (packs, fresh orders, waiting, unread, failed, moderated and queued
messages, six sites), another seller's `--other-conversations` that the console user is not given,
and one order whose conversation has `--long-messages` messages. PostgreSQL is then vacuumed and
analysed (as autovacuum leaves a database in service); SQLite is left as the service keeps it.

One `postventa serve` (embedded worker off, the access log on) serves each database, pinned to
one CPU; this process signs in at /console/login as a browser does and asks for each page in
turn, one request at a time, on the other CPU: after `--warmup` rounds, `--requests` rounds. A
page's **server time** is the access log's `duration_ms` of its request (found by the request id
sent with it): from the request reaching the application to its last byte handed to the server,
everything the service does for it. The time this client saw is recorded beside it, and the
server process's CPU time per request (from /proc; PostgreSQL's own work is not in it), which
depends less on what else runs on the machine.

The pages: the inbox's first page; filtered to the conversations waiting for an answer, to those
whose delivery failed, by a buyer's nickname; a page in the middle of the inbox; the inbox's part
htmx asks for every few seconds; the long conversation, and its part htmx asks for. Target (issue
19): p50 under 100 ms for every page on both databases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
from rich.table import Table

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
    run_cli,
    run_header,
    stop_cleanly_on_sigterm,
)
from bench.console_seed import ConsoleSeed, seed_console
from bench.service import postventa_environment
from postventa.store.engine import Database
from postventa.store.sealing import TokenCipher

TARGET_P50_MS = 100.0
INBOX_PAGE_SIZE = 25  # the console's page size (console/pages.py)
PASSWORD = "console bench password"
LOG_WAIT_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 30.0
BROWSER_HEADERS = {"accept": "text/html", "accept-language": "es-AR,es;q=0.9,en;q=0.5"}
HTMX_HEADERS = {**BROWSER_HEADERS, "hx-request": "true"}
ORDER_LINK = re.compile(r'href="/console/orders/(\d+)"')


@dataclass(frozen=True)
class Page:
    """A console page as the benchmark asks for it, and what its answer must hold."""

    name: str
    path: str
    headers: dict[str, str]
    check: Callable[[str], str | None]  # why the page is wrong, or None


def _links_at_least(count: int) -> Callable[[str], str | None]:
    def check(html: str) -> str | None:
        found = len(set(ORDER_LINK.findall(html)))
        return None if found >= count else f"{found} orders linked, expected at least {count}"

    return check


def _contains(*texts: str) -> Callable[[str], str | None]:
    def check(html: str) -> str | None:
        missing = [text for text in texts if text not in html]
        return f"missing {missing}" if missing else None

    return check


def pages_of(seed: ConsoleSeed) -> list[Page]:
    """The pages measured, for this seeded account."""
    full_page = min(INBOX_PAGE_SIZE, seed.conversations)
    middle = max(1, seed.conversations // INBOX_PAGE_SIZE // 2)
    search_link = f'href="/console/orders/{seed.search_order_id}"'
    long_path = f"/console/orders/{seed.long_order_id}"
    long_texts = ("(#1)<", f"(#{seed.long_messages})<")
    return [
        Page("inbox", "/console/", BROWSER_HEADERS, _links_at_least(full_page)),
        Page("inbox_waiting", "/console/?waiting=1", BROWSER_HEADERS, _links_at_least(1)),
        Page("inbox_failed", "/console/?failed=1", BROWSER_HEADERS, _links_at_least(1)),
        Page("inbox_search", f"/console/?q={seed.search_nickname}", BROWSER_HEADERS, _contains(search_link)),
        Page("inbox_middle_page", f"/console/?page={middle}", BROWSER_HEADERS, _links_at_least(1)),
        Page("inbox_refresh", "/console/", HTMX_HEADERS, _links_at_least(full_page)),
        Page("conversation", long_path, BROWSER_HEADERS, _contains(*long_texts)),
        Page("conversation_refresh", long_path, HTMX_HEADERS, _contains(*long_texts)),
    ]


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000, help="the console user's account's")
    parser.add_argument("--other-conversations", type=int, default=10_000, help="another seller's")
    parser.add_argument("--long-messages", type=int, default=200, help="messages of the long conversation")
    parser.add_argument("--warmup", type=int, default=5, help="rounds of every page before measuring")
    parser.add_argument("--requests", type=int, default=40, help="measured requests per page")
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--no-pin", action="store_true", help="leave the server and the client unpinned")
    parser.add_argument("--quick", action="store_true", help="a few seconds: 300 conversations")
    parser.add_argument("--output", type=Path, default=default_output("console"))
    args = parser.parse_args(argv)
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not args.backends or set(args.backends) - {"sqlite", "postgresql"}:
        parser.error("--backends: sqlite, postgresql or both")
    if args.quick:
        args.conversations, args.other_conversations = min(args.conversations, 300), 50
        args.long_messages, args.warmup, args.requests = min(args.long_messages, 40), 1, 3
    if args.conversations < 1 or args.long_messages < 1 or args.requests < 1 or args.warmup < 0:
        parser.error("--conversations, --long-messages and --requests at least 1, --warmup not negative")
    return args


# --- the data ------------------------------------------------------------------------------------


async def seed(url: str, token_key: str, args: argparse.Namespace) -> tuple[ConsoleSeed, float]:
    """The benchmark's data in the database at `url`; how long it took, vacuum included."""
    started = time.perf_counter()
    database = Database(url, token_cipher=TokenCipher([token_key]))
    try:
        seeded = await seed_console(
            database,
            conversations=args.conversations,
            other_conversations=args.other_conversations,
            long_messages=args.long_messages,
            password=PASSWORD,
        )
    finally:
        await database.dispose()
    if url.startswith("postgresql"):
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("VACUUM (ANALYZE)")
        finally:
            await connection.close()
    return seeded, round(time.perf_counter() - started, 1)


# --- the requests --------------------------------------------------------------------------------


def sign_in(http: httpx2.Client, email: str) -> None:
    """Sign in through the form, as a browser does: the session cookie stays in the client."""
    form = http.get("/console/login", headers=BROWSER_HEADERS)
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    if form.status_code != 200 or token is None:
        raise RuntimeError(f"no sign-in form: {form.status_code} {form.text[:500]}")
    signed = http.post(
        "/console/login",
        data={"email": email, "password": PASSWORD, "csrf": token.group(1)},
        headers=BROWSER_HEADERS,
    )
    if signed.status_code != 303:
        raise RuntimeError(f"sign-in refused: {signed.status_code} {signed.text[:500]}")


def fetch(http: httpx2.Client, page: Page, request_id: str) -> tuple[float, int]:
    """One request for the page; the seconds this client waited and the answer's size. Fails on
    anything but the right page."""
    started = time.perf_counter()
    answer = http.get(page.path, headers={**page.headers, "x-request-id": request_id})
    seconds = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"{page.name}: {answer.status_code} {answer.text[:500]}")
    wrong = page.check(answer.text)
    if wrong is not None:
        raise RuntimeError(f"{page.name}: {wrong}")
    return seconds, len(answer.content)


def drive(
    url: str, seeded: ConsoleSeed, args: argparse.Namespace, tag: str, server_cpu: Callable[[], float]
) -> dict[str, Any]:
    """Sign in, then every page in turn: `--warmup` rounds, then `--requests` measured ones (each
    round starting one page further on). Each measured request's id, client time, size, and the
    server's CPU time meanwhile (`server_cpu`: its CPU seconds so far)."""
    pages = pages_of(seeded)
    measured: dict[str, list[tuple[str, float, int, float]]] = {page.name: [] for page in pages}
    with httpx2.Client(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS) as http:
        sign_in(http, seeded.user_email)
        for number in range(args.warmup):
            for page in pages:
                fetch(http, page, f"{tag}-warmup-{page.name}-{number}")
        for number in range(args.requests):
            shift = number % len(pages)
            for page in pages[shift:] + pages[:shift]:
                request_id = f"{tag}-{page.name}-{number}"
                cpu_before = server_cpu()
                seconds, size = fetch(http, page, request_id)
                measured[page.name].append((request_id, seconds, size, server_cpu() - cpu_before))
    return {"pages": pages, "measured": measured}


def server_durations(service: Service, wanted: set[str]) -> dict[str, float]:
    """duration_ms of each wanted request id, from the server's access log (waits for the lines)."""
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    found: dict[str, float] = {}
    while True:
        for line in service.log_text().splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "request" and entry.get("request_id") in wanted:
                found[entry["request_id"]] = float(entry["duration_ms"])
        if len(found) == len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if len(found) != len(wanted):
        raise RuntimeError(
            f"{len(wanted) - len(found)} requests missing from the access log:\n{service.tail()}"
        )
    return found


def figures(values: list[float]) -> dict[str, float]:
    """p50, p95 and the largest, in milliseconds."""
    ordered = sorted(values)
    return {
        "p50": round(percentile(ordered, 0.50), 2),
        "p95": round(percentile(ordered, 0.95), 2),
        "max": round(ordered[-1], 2),
    }


def summarise(driven: dict[str, Any], durations: dict[str, float]) -> dict[str, Any]:
    """Per page: its path, server and client figures, the server's CPU time per request (its
    process alone: PostgreSQL's work is not in it), answer size, and the target met or not."""
    results = {}
    for page in driven["pages"]:
        samples = driven["measured"][page.name]
        server = figures([durations[request_id] for request_id, _, _, _ in samples])
        cpu_seconds = sum(cpu for _, _, _, cpu in samples)
        results[page.name] = {
            "path": page.path,
            "htmx": "hx-request" in page.headers,
            "requests": len(samples),
            "server_ms": server,
            "client_ms": figures([seconds * 1000 for _, seconds, _, _ in samples]),
            "server_cpu_ms_per_request": round(cpu_seconds * 1000 / len(samples), 2),
            "bytes": samples[-1][2],
            "met": server["p50"] < TARGET_P50_MS,
        }
    return results


# --- one database, and the run -------------------------------------------------------------------


def measure_backend(
    backend: str, args: argparse.Namespace, workdir: Path, token_key: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Seed a fresh database of this kind, serve it, drive the pages: (what was seeded, results)."""
    server_cpus, client_cpus = cpu_plan(not args.no_pin)
    pg_name = None
    service = None
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'console.db'}"
    else:
        pg_name, url = create_postgres_database("postventa_bench_console")
    try:
        run_cli(["db", "upgrade"], postventa_environment(url, token_key, "warning"), workdir)
        seeded, seed_seconds = asyncio.run(seed(url, token_key, args))
        console.print(
            f"{backend}: seeded {seeded.conversations:,} conversations, {seeded.orders:,} orders, "
            f"{seeded.messages:,} messages in {seed_seconds} s"
        )
        port = free_port()
        environment = postventa_environment(url, token_key, "info")
        environment["POSTVENTA_CONSOLE_SECRET"] = secrets.token_hex(32)
        command = [POSTVENTA, "serve", "--host", LOOPBACK, "--port", str(port)]
        service = Service(f"serve-{backend}", command, environment, workdir / f"{backend}.log", workdir)
        service.cpus = server_cpus
        service.start().wait_listening(port, "/healthz")
        previous = os.sched_getaffinity(0)
        if client_cpus:
            os.sched_setaffinity(0, client_cpus)
        try:
            driven = drive(f"http://{LOOPBACK}:{port}", seeded, args, backend, service.cpu_seconds)
        finally:
            os.sched_setaffinity(0, previous)
        wanted = {sample[0] for samples in driven["measured"].values() for sample in samples}
        results = summarise(driven, server_durations(service, wanted))
    finally:
        with deferred_signals():
            if service is not None:
                service.stop()
            if pg_name is not None:
                drop_postgres_database(pg_name)
    return {**asdict(seeded), "seed_seconds": seed_seconds}, results


def print_report(record: dict[str, Any]) -> None:
    options = record["options"]
    table = Table(
        title=f"console: server time per page, {options['requests']} requests each, "
        f"{options['conversations']:,} conversations, a conversation of {options['long_messages']}"
    )
    columns = ("database", "page", "server p50 ms", "p95", "max", "client p50 ms", "CPU ms", "KiB", "target")
    for column in columns:
        table.add_column(column, justify="left" if column in ("database", "page") else "right")
    for backend, pages in record["results"].items():
        for name, result in pages.items():
            server = result["server_ms"]
            colour = "green" if result["met"] else "red"
            table.add_row(
                backend,
                name,
                f"{server['p50']:.1f}",
                f"{server['p95']:.1f}",
                f"{server['max']:.1f}",
                f"{result['client_ms']['p50']:.1f}",
                f"{result['server_cpu_ms_per_request']:.1f}",
                f"{result['bytes'] / 1024:.0f}",
                f"[{colour}]{'met' if result['met'] else 'missed'} (p50 < {TARGET_P50_MS:g})[/]",
            )
    console.print(table)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_arguments(argv)
    stop_cleanly_on_sigterm()
    options = {
        name: getattr(args, name)
        for name in (
            "conversations",
            "other_conversations",
            "long_messages",
            "warmup",
            "requests",
            "backends",
            "quick",
        )
    }
    header = run_header("console", {**options, "pinned": not args.no_pin})
    console.print(f"load average before the run: {header['load_average_before']}")
    if "postgresql" in args.backends and not postgres_reachable():
        raise SystemExit("--backends postgresql needs PostgreSQL on 127.0.0.1:5432")
    token_key = new_token_key()
    seeded, results = {}, {}
    with tempfile.TemporaryDirectory(prefix="postventa-bench-console-") as directory:
        for backend in args.backends:
            seeded[backend], results[backend] = measure_backend(backend, args, Path(directory), token_key)
    record = {
        **header,
        "load_average_after": load_average(),
        "seeded": seeded,
        "results": results,
        "target_p50_ms_below": TARGET_P50_MS,
        "met": all(result["met"] for pages in results.values() for result in pages.values()),
        "notes": [
            "Server time: the access log's duration_ms of each request (the edge middleware's, from "
            "the request reaching the application to the last byte of the answer handed to uvicorn).",
            "One `postventa serve` per database (embedded worker off), pinned to one CPU; this client "
            "on the other, one request at a time; PostgreSQL unpinned, vacuumed and analysed after "
            "the seed; SQLite as the service leaves it (no ANALYZE).",
        ],
    }
    print_report(record)
    append_result(args.output, record)
    return record


if __name__ == "__main__":
    main()
