"""Structured logs: one JSON object per event, with secrets redacted wherever they appear."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

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


def redact_text(text: str) -> str:
    """Mask every API key, bearer token and value named like a secret in a text."""
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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))
