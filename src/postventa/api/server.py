"""Running the app under uvicorn, with HTTP-level refusals in the documented error body.

Requests the HTTP parser itself rejects (a request line beyond its buffer, broken framing) never
reach the application; uvicorn would answer them in plain text. This protocol answers them with
the same JSON body as every other 4xx.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from postventa.api.errors import error_body
from postventa.gc_tuning import freeze_startup_objects

# What each uvicorn worker process imports and calls to build its app (workers need an import string).
APP_FACTORY = "postventa.wiring:app_from_environment"
# Named, not passed: a spawned worker then imports the app after it started answering health checks.
HTTP_PROTOCOL = "postventa.api.server:JsonErrorHttpToolsProtocol"
# Importing the app takes seconds on a busy machine; uvicorn's 5 s would kill workers still starting.
WORKER_HEALTHCHECK_TIMEOUT_SECONDS = 30
# prometheus_client keeps the metrics of several processes in files there, so /metrics adds them up.
METRICS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose parse errors answer with the documented JSON body."""

    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps(error_body(400, "malformed_request", "The HTTP request could not be parsed."))
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


# uvicorn without its access log (ours redacts), with our logging configuration; and without its
# X-Forwarded-* middleware: nothing here reads the client's address or the scheme (HSTS follows
# POSTVENTA_PUBLIC_URL), and that middleware wrapped every request in one more layer.
_UVICORN_OPTIONS: dict[str, Any] = {
    "http": JsonErrorHttpToolsProtocol,
    "access_log": False,
    "log_config": None,
    "server_header": False,
    "proxy_headers": False,
}


def run_server(application: Any, host: str, port: int, log_level: str) -> None:
    """uvicorn without its access log (ours redacts), with our logging configuration."""
    freeze_startup_objects()
    uvicorn.run(application, host=host, port=port, log_level=log_level, **_UVICORN_OPTIONS)


def run_server_processes(host: str, port: int, log_level: str, workers: int) -> None:
    """`workers` uvicorn processes sharing one socket, each building its app from the environment.

    Metrics are kept in a directory the processes share (a fresh one unless the operator named one),
    so that any process's /metrics counts for all of them.
    """
    made_directory = None
    if not os.environ.get(METRICS_DIRECTORY_VARIABLE):
        made_directory = tempfile.mkdtemp(prefix="postventa-metrics-")
        # Set before uvicorn spawns the workers, which inherit it.
        os.environ[METRICS_DIRECTORY_VARIABLE] = made_directory
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level=log_level,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_SECONDS,
            **(_UVICORN_OPTIONS | {"http": HTTP_PROTOCOL}),
        )
    finally:
        if made_directory is not None:
            shutil.rmtree(made_directory, ignore_errors=True)
