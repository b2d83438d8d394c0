"""Real servers on free loopback ports: uvicorn in a thread with its own event loop, or `postventa serve`
processes (the installed command, as an operator runs it)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn

POSTVENTA = Path(sys.executable).with_name("postventa")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ThreadedServer:
    """Serves an ASGI app over real TCP while the test runs; a context manager."""

    def __init__(self, app: Any, **config: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        options: dict[str, Any] = {
            "access_log": False,
            "log_config": None,
            "log_level": "warning",
            "lifespan": "on",
        }
        options.update(config)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def serve_processes(
    count: int,
    directory: Path,
    *,
    database_url: str,
    admin_token: str,
    api_key_pepper: str,
    redis_url: str | None = None,
) -> Iterator[list[str]]:
    """`postventa serve` COUNT times on one (migrated) database, sharing Redis when given; their base
    URLs once each answers /healthz. No worker, no Mercado Libre. Always stopped (SIGTERM)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("POSTVENTA_")}
    env.update(
        POSTVENTA_DATABASE_URL=database_url,
        POSTVENTA_ADMIN_TOKEN=admin_token,
        POSTVENTA_API_KEY_PEPPER=api_key_pepper,
        POSTVENTA_EMBEDDED_WORKER="false",
        POSTVENTA_MELI_API_URL="http://127.0.0.1:9",
        POSTVENTA_TOKEN_KEY_FILE=str(directory / "token.key"),
        POSTVENTA_LOG_LEVEL="warning",
    )
    if redis_url is not None:
        env["POSTVENTA_REDIS_URL"] = redis_url
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []
    urls = []
    try:
        for index in range(count):
            port = free_port()
            log = directory / f"serve-{index}.log"
            with log.open("wb") as output:
                command = [str(POSTVENTA), "serve", "--host", "127.0.0.1", "--port", str(port)]
                process = subprocess.Popen(command, env=env, cwd=directory, stdout=output, stderr=output)
            processes.append((process, log))
            urls.append(f"http://127.0.0.1:{port}")
        for (process, log), url in zip(processes, urls, strict=True):
            wait_until_healthy(process, log, url)
        yield urls
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def wait_until_healthy(process: subprocess.Popen[bytes], log: Path, url: str) -> None:
    """Until the process answers /healthz; fails with its log if it exits or takes over 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"postventa serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"postventa serve did not become healthy at {url}:\n{log.read_text()}")


@dataclass
class Running:
    """A postventa process and the file its output goes to."""

    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def postventa_process(
    command: list[str], directory: Path, *, admin_token: str, api_key_pepper: str, **settings: str
) -> Iterator[Running]:
    """A postventa command in a process of its own, POSTVENTA_<NAME> from `settings` (and nothing
    from this process's POSTVENTA_ variables); killed if it is still running at the end."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("POSTVENTA_")}
    env.update(
        POSTVENTA_ADMIN_TOKEN=admin_token,
        POSTVENTA_API_KEY_PEPPER=api_key_pepper,
        POSTVENTA_TOKEN_KEY_FILE=str(directory / "token.key"),
        POSTVENTA_LOG_LEVEL="warning",
        POSTVENTA_DATABASE_POOL_SIZE="4",
    )
    env.update({f"POSTVENTA_{name.upper()}": value for name, value in settings.items()})
    log = directory / f"{command[0]}-{secrets.token_hex(3)}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(POSTVENTA), *command], env=env, cwd=directory, stdout=output, stderr=output
        )
    try:
        yield Running(process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def served_process(
    directory: Path, *, admin_token: str, api_key_pepper: str, **settings: str
) -> Iterator[tuple[Running, str]]:
    """`postventa serve` on a free port (`postventa_process`'s settings), once healthy: the process
    and its URL."""
    port = free_port()
    command = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    keys = {"admin_token": admin_token, "api_key_pepper": api_key_pepper}
    with postventa_process(command, directory, **keys, **settings) as running:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(running.process, running.log, url)
        yield running, url
