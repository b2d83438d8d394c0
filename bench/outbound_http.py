"""CPU per outbound exchange: aiohttp (the Mercado Libre client's transport) against httpx2.

Each client POSTs a delivery's JSON to a loopback uvicorn server (another process, on the other CPU
when there are two) EXCHANGES times, IN_FLIGHT at once, after a warm-up, reading each response
whole; the client process's CPU time over the measured exchanges, divided by their number, is the
figure. Bounded: a few thousand exchanges per client, loopback only, stops by itself.

    python -m bench.outbound_http [--exchanges 3000] [--in-flight 8] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx2
import orjson

from bench.common import LOOPBACK, console, free_port, usable_cpus
from postventa.meli.transport import AiohttpTransport

PATH = "/messages/packs/2000001/sellers/415458330"
BODY = orjson.dumps(
    {"from": {"user_id": "415458330"}, "to": {"user_id": "618491100"}, "text": "Hola, tu pedido ya salió."}
)
HEADERS = {"Authorization": "Bearer APP_USR-bench", "Content-Type": "application/json"}
ANSWER = orjson.dumps({"id": "94353d192b9640e8b1ed3c77aa406f39", "status": "available", "text": "Hola"})
WARM_UP_EXCHANGES = 200
START_TIMEOUT_SECONDS = 20.0

Exchange = Callable[[], Awaitable[Any]]


async def answer_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The server: 201 and a sent message's JSON to every request, its body read whole."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send(
        {"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": ANSWER})


def serve(port: int) -> None:
    """Run the server in this process until killed."""
    import uvicorn

    uvicorn.run(answer_app, host=LOOPBACK, port=port, log_level="warning", access_log=False)


async def measure(exchange: Exchange, exchanges: int, in_flight: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of `exchanges` exchanges, `in_flight` at a time."""
    remaining = exchanges

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await exchange()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.process_time() - cpu, time.perf_counter() - wall


async def with_aiohttp(url: str, exchanges: int, in_flight: int) -> tuple[float, float]:
    """aiohttp's own session, as plainly as it is used."""
    async with aiohttp.ClientSession() as session:

        async def exchange() -> bytes:
            async with session.post(url + PATH, data=BODY, headers=HEADERS) as response:
                return await response.read()

        await measure(exchange, WARM_UP_EXCHANGES, in_flight)
        return await measure(exchange, exchanges, in_flight)


async def with_transport(url: str, exchanges: int, in_flight: int) -> tuple[float, float]:
    """postventa's transport (aiohttp, with its metrics and timeouts), as the client calls it."""
    transport = AiohttpTransport(url)

    async def exchange() -> Any:
        return await transport.exchange(
            "POST", url + PATH, params={"tag": "post_sale"}, headers=HEADERS, data=BODY
        )

    try:
        await measure(exchange, WARM_UP_EXCHANGES, in_flight)
        return await measure(exchange, exchanges, in_flight)
    finally:
        await transport.aclose()


async def with_httpx2(url: str, exchanges: int, in_flight: int) -> tuple[float, float]:
    """httpx2's AsyncClient, as plainly as it is used."""
    async with httpx2.AsyncClient(base_url=url) as client:

        async def exchange() -> bytes:
            response = await client.post(PATH, content=BODY, headers=HEADERS)
            return response.content

        await measure(exchange, WARM_UP_EXCHANGES, in_flight)
        return await measure(exchange, exchanges, in_flight)


CLIENTS = {"aiohttp": with_aiohttp, "postventa transport (aiohttp)": with_transport, "httpx2": with_httpx2}


def start_server(port: int, cpus: list[int]) -> subprocess.Popen[bytes]:
    """The server in a process of its own, on the last CPU when there are two or more."""
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.outbound_http", "--serve", str(port)],
        stdout=subprocess.DEVNULL,
    )
    if len(cpus) > 1:
        os.sched_setaffinity(server.pid, {cpus[-1]})
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("the server did not start")


def main() -> None:
    """Measure each client and print them side by side, as ratios to aiohttp."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(options.serve)
        return
    cpus = usable_cpus()
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[0]})
    port = free_port()
    server = start_server(port, cpus)
    url = f"http://{LOOPBACK}:{port}"
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in CLIENTS}
    try:
        for _ in range(options.rounds):
            for name, run in CLIENTS.items():
                results[name].append(asyncio.run(run(url, options.exchanges, options.in_flight)))
    finally:
        server.terminate()
        server.wait(timeout=10)
    report(results, options.exchanges, options.in_flight)


def report(results: dict[str, list[tuple[float, float]]], exchanges: int, in_flight: int) -> None:
    """One line per client: CPU and wall time per exchange (best round), and the CPU ratio to aiohttp."""
    best = {name: min(runs) for name, runs in results.items()}
    reference = best["aiohttp"][0]
    console.print(f"{exchanges} exchanges per client and round, {in_flight} in flight, client on one CPU")
    console.print(f"{'client':32} {'CPU ms/exchange':>16} {'wall ms/exchange':>17} {'CPU x aiohttp':>14}")
    for name, (cpu, wall) in best.items():
        per_cpu, per_wall = cpu / exchanges * 1000, wall / exchanges * 1000
        console.print(f"{name:32} {per_cpu:16.3f} {per_wall:17.3f} {cpu / reference:14.2f}")


if __name__ == "__main__":
    main()
