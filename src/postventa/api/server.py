"""Running the app under uvicorn, with the connection's limits enforced by the server itself.

What a client sends before the application sees a request (the request line and the header fields)
is bounded here, as it arrives: a head over its size or count is refused (431, or 414 for the
request line) and the connection closed without reading on; a head not complete within its time is
answered 408 and closed. Requests the HTTP parser rejects (broken framing) get the same JSON body
as every other 4xx, where uvicorn would answer in plain text.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from postventa.api.errors import error_body
from postventa.config import Settings
from postventa.gc_tuning import freeze_startup_objects

# What each uvicorn worker process imports and calls to build its app (workers need an import string).
APP_FACTORY = "postventa.wiring:app_from_environment"
# Named, not passed: a spawned worker then imports the app after it started answering health checks.
HTTP_PROTOCOL = "postventa.api.server:EdgeHttpProtocol"
# Importing the app takes seconds on a busy machine; uvicorn's 5 s would kill workers still starting.
WORKER_HEALTHCHECK_TIMEOUT_SECONDS = 30
# prometheus_client keeps the metrics of several processes in files there, so /metrics adds them up.
METRICS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# A request line's method, path and version around its query (the query has its own setting).
REQUEST_LINE_BYTES_BESIDES_QUERY = 8 * 1024
# How long a closing connection keeps draining what its client still sends (LingeringTransport).
LINGER_SECONDS = 2.0
# The share of the shutdown grace `serve` gives the requests in flight; the embedded background
# work (wiring.Background) has the rest.
REQUESTS_SHARE_OF_GRACE = 0.5


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may send before its request reaches the application (docs/operations.md)."""

    max_header_count: int
    max_header_bytes: int
    max_request_line_bytes: int
    header_timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        """The limits the settings describe."""
        return cls(
            max_header_count=settings.max_header_count,
            max_header_bytes=settings.max_header_bytes,
            max_request_line_bytes=settings.max_query_bytes + REQUEST_LINE_BYTES_BESIDES_QUERY,
            header_timeout_seconds=settings.header_timeout_seconds,
        )

    @functools.cached_property  # read at every socket read of a head
    def max_head_bytes(self) -> int:
        """The whole head: the request line and the header fields with their separators."""
        return self.max_request_line_bytes + self.max_header_bytes + 4 * self.max_header_count


@cache
def limits_from_environment() -> ConnectionLimits:
    """The limits of a worker process, which builds everything from the environment."""
    return ConnectionLimits.from_settings(Settings())


class LingeringTransport(asyncio.Transport):
    """The connection's transport, whose close first lets the answer reach the client.

    A server that closes a socket while the client is still sending (a body it refused, a head over
    its limit) makes the kernel reset the connection, and the client loses the answer it has not
    read yet. Closing here sends the answer and a FIN, then reads and discards what the client still
    sends until it closes too or LINGER_SECONDS pass, as nginx's lingering close does.
    """

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.inner = inner
        self.loop = loop
        self.lingering = False
        self._timer: asyncio.TimerHandle | None = None

    def close(self) -> None:
        if self.lingering or self.inner.is_closing():
            return
        self.lingering = True
        if self.inner.can_write_eof():
            self.inner.write_eof()
        self.inner.resume_reading()  # flow control may have paused it: drain what is still coming
        self._timer = self.loop.call_later(LINGER_SECONDS, self.inner.close)

    def finished(self) -> None:
        """The connection is gone: nothing left to wait for."""
        if self._timer is not None:
            self._timer.cancel()

    def is_closing(self) -> bool:
        return self.lingering or self.inner.is_closing()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.is_closing():
            self.inner.write(data)

    def writelines(self, list_of_data: Any) -> None:
        if not self.is_closing():
            self.inner.writelines(list_of_data)

    def abort(self) -> None:
        self.inner.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)

    def pause_reading(self) -> None:
        if not self.lingering:
            self.inner.pause_reading()

    def resume_reading(self) -> None:
        self.inner.resume_reading()

    def is_reading(self) -> bool:
        return self.inner.is_reading()

    def can_write_eof(self) -> bool:
        return self.inner.can_write_eof()

    def write_eof(self) -> None:
        self.inner.write_eof()

    def get_write_buffer_size(self) -> int:
        return self.inner.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.inner.set_write_buffer_limits(high, low)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.inner.get_protocol()


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing; the parser reports it as a parse error."""


class EdgeHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded request heads and JSON refusals.

    `limits` is set on the class `protocol_for` makes; this class itself (what worker processes
    import by name) reads them from the environment.
    """

    limits: ClassVar[ConnectionLimits | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_limits = type(self).limits or limits_from_environment()
        # (status, code, message) of a refusal decided in a parser callback.
        self.refusal: tuple[int, str, str] | None = None
        self.awaiting_head = True
        self.head_bytes = 0
        self.header_count = 0
        # When the head being read must be complete (None: no head is being read), and the one
        # timer that checks it (`_head_clock`).
        self.head_deadline: float | None = None
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Set after uvicorn's own setup (its flow control keeps the socket's transport): every
        # close, uvicorn's or ours, then lingers.
        self.transport = self.lingering_transport = LingeringTransport(transport, self.loop)
        self._start_head_clock()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        self.lingering_transport.finished()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.lingering_transport.lingering:
            return  # answered and closing: what the client still sends is dropped unread
        if self.awaiting_head:
            self.head_bytes += len(data)
            if self.head_deadline is None:  # the first bytes of the next request on a kept-alive connection
                self._start_head_clock()
        super().data_received(data)
        # Checked after parsing: a chunk that completed the head may carry the start of the body.
        if self.awaiting_head and self.head_bytes > self.connection_limits.max_head_bytes:
            self._refuse(
                431,
                "headers_too_large",
                f"The request head is over {self.connection_limits.max_head_bytes} bytes.",
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.header_count = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        limit = self.connection_limits.max_request_line_bytes
        if len(self.url) > limit:
            self.refusal = (414, "uri_too_long", f"The request target is over {limit} bytes.")
            raise _HeadRefused

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self.header_count += 1
        limit = self.connection_limits.max_header_count
        if self.header_count > limit:
            self.refusal = (431, "headers_too_large", f"A request carries at most {limit} header fields.")
            raise _HeadRefused

    def on_headers_complete(self) -> None:
        self.awaiting_head = False
        self.head_deadline = None  # the timer, if one is set, finds no head to time and lapses
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.awaiting_head, self.head_bytes = True, 0

    def send_400_response(self, msg: str) -> None:
        """What uvicorn calls when the parser failed: the refusal a callback decided, or a 400."""
        self._refuse(*(self.refusal or (400, "malformed_request", "The HTTP request could not be parsed.")))

    def _start_head_clock(self) -> None:
        """A head starts: it must be complete within the header timeout.

        One timer per connection, set only when none is: on a kept-alive connection under load a
        head completes in microseconds, and a timer set and cancelled for each request cost about
        1% of a send. The timer, when it fires, times the head being read then, or lapses.
        """
        self.head_deadline = self.loop.time() + self.connection_limits.header_timeout_seconds
        if self.head_timer is None:
            self.head_timer = self.loop.call_at(self.head_deadline, self._head_clock)

    def _stop_head_clock(self) -> None:
        self.head_deadline = None
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_clock(self) -> None:
        self.head_timer = None
        deadline = self.head_deadline
        if deadline is None:
            return  # no head is being read
        if deadline > self.loop.time():  # a later head than the one this timer was set for
            self.head_timer = self.loop.call_at(deadline, self._head_clock)
            return
        self.head_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a response is still being written: no room for a 408
            return
        seconds = self.connection_limits.header_timeout_seconds
        self._refuse(408, "request_timeout", f"The request head did not arrive within {seconds:g} seconds.")

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer with the documented JSON body and close, reading nothing more."""
        if self.transport.is_closing():
            return
        self._stop_head_clock()
        body = orjson.dumps(error_body(status, code, message))
        content = [STATUS_LINE[status]]
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


def protocol_for(limits: ConnectionLimits) -> type[EdgeHttpProtocol]:
    """The protocol class for a server built in this process, with these limits."""
    return type("EdgeHttpProtocol", (EdgeHttpProtocol,), {"limits": limits})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn without its access log (ours redacts), with our logging configuration, our protocol
    and the settings' timeouts; and without its X-Forwarded-* middleware: nothing here reads the
    client's address or the scheme (HSTS follows POSTVENTA_PUBLIC_URL)."""
    return {
        "http": protocol_for(ConnectionLimits.from_settings(settings)),
        "access_log": False,
        "log_config": None,
        "server_header": False,
        "proxy_headers": False,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds * REQUESTS_SHARE_OF_GRACE,
        "log_level": settings.log_level,
    }


def run_server(application: Any, host: str, port: int, settings: Settings) -> None:
    """The app under uvicorn in this process."""
    freeze_startup_objects()
    uvicorn.run(application, host=host, port=port, **uvicorn_options(settings))


def run_server_processes(host: str, port: int, settings: Settings, workers: int) -> None:
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
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_SECONDS,
            **(uvicorn_options(settings) | {"http": HTTP_PROTOCOL}),
        )
    finally:
        if made_directory is not None:
            shutil.rmtree(made_directory, ignore_errors=True)
