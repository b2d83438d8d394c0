"""Structured logs: one JSON object per event, with secrets redacted wherever they appear."""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import logging
import re
import select
import sys
import threading
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson
import structlog

# API keys travel in query strings; whatever text carries one, the key is masked before it is written.
_API_KEY_IN_TEXT = re.compile(r"pv_[0-9a-f]{12}_[A-Za-z0-9_-]+")
_SECRET_FIELDS = re.compile(r"(?i)(api_key|apikey|x-api-key|authorization|token|secret|password)")
# Tokens of an Authorization header (the admin token, Mercado Libre's), and the value after any name
# that says "secret" (`API_KEY=…`, `'x-api-key': '…'`, `"ClientSecret": "…"`), whatever its shape:
# an exception that quotes a request or a header dict must not carry them into the logs.
_BEARER_IN_TEXT = re.compile(r"(?i)\b(bearer|basic)\s+[^\s'\",;{}\[\]]+")
_SECRET_ASSIGNMENT_IN_TEXT = re.compile(
    r"(?i)(\b(?:x-)?api[_-]?key|\bauthorization|\b(?:[a-z]+[_-]?)?token|\b(?:[a-z]+[_-]?)?secret"
    r"|\bpassword|\bpepper)(['\"]?\s*[:=]\s*['\"]?)(?!pv_\[|bearer\s|basic\s)([^\s'\"&,;{}\[\]]+)"
)


# What each pattern above needs to match at all: a text without any of these has nothing to redact,
# and one search costs a third of the three substitutions (most log fields are such texts).
_MAYBE_SECRET = re.compile(r"(?i)pv_|bearer|basic|api|authorization|token|secret|password|pepper")


def redact_text(text: str) -> str:
    """Mask every API key, bearer token and value named like a secret in a text."""
    if not _MAYBE_SECRET.search(text):
        return text
    text = _API_KEY_IN_TEXT.sub("pv_[redacted]", text)
    text = _BEARER_IN_TEXT.sub(r"\1 [redacted]", text)
    return _SECRET_ASSIGNMENT_IN_TEXT.sub(r"\1\2[redacted]", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            key: "[redacted]" if _SECRET_FIELDS.search(str(key)) else _scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def _redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key != "event" and _SECRET_FIELDS.search(key):
            event[key] = "[redacted]"
        else:
            event[key] = _scrub(value)
    return event


def configure_logging(level: str = "info") -> None:
    """JSON lines on stderr for the service's own events and for the libraries' standard logging."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact,
        structlog.processors.JSONRenderer(),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    _access_log.stream = sys.stderr
    _access_log.enabled = numeric <= logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # The HTTP client logs every request at info; the worker logs each delivery attempt itself.
    for chatty in ("httpx2", "httpcore2"):
        logging.getLogger(chatty).setLevel(max(numeric, logging.WARNING))


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class _AccessLog:
    """Where the lines written straight (the access log's, the delivery attempts') go, and whether
    info is logged: configured with the rest by `configure_logging`.

    A thread running an event loop collects its lines and writes them together once per turn of
    the loop: under load many requests end in one turn, and each write is a system call (a few
    percent of a send's CPU). A line waits at most until the loop's next turn; lines still waiting
    when the process exits are written then. Without a running loop a line is written at once.

    Each write holds whole lines and at most PIPE_BUF bytes (unless one line is longer): up to that
    size a write to a pipe is never interleaved with another process's, so the lines of several
    `serve` workers sharing one stderr pipe stay whole, as when each line was a write of its own.
    """

    stream: TextIO | None = None  # None until logging is configured: then structlog's default
    enabled = True

    def __init__(self) -> None:
        self._local = threading.local()
        self._buffers: list[_Pending] = []  # every thread's, for the exit
        atexit.register(self.flush_all)

    def write(self, line: str) -> None:
        """Write `line` (a JSON object and its newline) now, or with the loop's turn."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write(line)
            return
        pending = self._pending()
        pending.lines.append(line)
        pending.sizes.append(len(line) if line.isascii() else len(line.encode()))
        if pending.flush_on is not loop:  # none scheduled, or on a loop that has since stopped
            pending.flush_on = loop
            loop.call_soon(self.flush, pending)

    def flush(self, pending: _Pending) -> None:
        """Write the lines `pending` holds (one thread's), in order."""
        pending.flush_on = None
        lines, sizes = pending.lines, pending.sizes
        start, size = 0, 0
        for end, line_size in enumerate(sizes):
            if size + line_size > select.PIPE_BUF and end > start:
                self._write("".join(lines[start:end]))
                start, size = end, 0
            size += line_size
        if start < len(lines):
            self._write("".join(lines[start:]))
        lines.clear()
        sizes.clear()

    def flush_all(self) -> None:
        """Write every thread's waiting lines (at exit)."""
        for pending in self._buffers:
            self.flush(pending)

    def _pending(self) -> _Pending:
        pending: _Pending | None = getattr(self._local, "pending", None)
        if pending is None:
            pending = self._local.pending = _Pending()
            self._buffers.append(pending)
        return pending

    def _write(self, text: str) -> None:
        stream = self.stream
        if stream is not None:
            stream.write(text)
            stream.flush()


@dataclass(slots=True)
class _Pending:
    """One thread's lines waiting for its loop's turn, and the loop that will write them."""

    lines: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # each line's, in bytes
    flush_on: asyncio.AbstractEventLoop | None = None


_access_log = _AccessLog()


# Methods the access log writes as they are: none of them can carry a secret.
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def log_request(request_id: str, method: str, path: str, status: int, duration_ms: float) -> None:
    """The access log's line of one request, at info: the same JSON object structlog writes for
    `log.info("request", ...)`, written straight to the stream.

    One line per request is the only log on the hot path, and structlog's processor chain (context
    merge, level, timestamp, redaction of every field, rendering) cost about a tenth of a send
    (docs/performance.md). The fields here are known: only the method and the path are the
    client's text, and those are redacted as any field would be.
    """
    if not _access_log.enabled:
        return
    fields = {
        "request_id": request_id,
        "method": method if method in _HTTP_METHODS else redact_text(method),
        "path": redact_text(path),
        "status": status,
        "duration_ms": duration_ms,
    }
    _write_info("postventa.access", "request", fields)


def log_delivery_attempt(
    message_id: int, attempt: int, route: str, outcome: str, error_code: str | None
) -> None:
    """The worker's line of one delivery attempt, at info, written straight as the access log's is
    (structlog's chain was 6.5% of the worker's CPU on PostgreSQL). No field is anyone's text: ids,
    and names and codes of the service's own."""
    if not _access_log.enabled:
        return
    fields = {
        "message_id": message_id,
        "attempt": attempt,
        "route": route,
        "outcome": outcome,
        "error_code": error_code,
    }
    _write_info("postventa.worker", "delivery_attempt", fields)


def _write_info(logger_name: str, event: str, fields: dict[str, Any]) -> None:
    """The JSON line structlog writes for `log.info(event, **fields)`, without its processor chain."""
    stream = _access_log.stream
    if stream is None:  # logging not configured (a library user's app): structlog's defaults
        structlog.get_logger(logger_name).info(event, **fields)
        return
    line = {
        "event": event,
        **fields,
        "level": "info",
        "timestamp": dt.datetime.now(dt.UTC),  # written as structlog's: ISO 8601, "Z"
    }
    try:
        rendered = orjson.dumps(line, option=orjson.OPT_UTC_Z).decode()
    except orjson.JSONEncodeError:  # text orjson refuses (a lone surrogate): structlog renders anything
        structlog.get_logger(logger_name).info(event, **fields)
        return
    _access_log.write(rendered + "\n")
