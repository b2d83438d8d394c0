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


def redact_text(text: str) -> str:
    """Mask every API key in a text."""
    return _API_KEY_IN_TEXT.sub("pv_[redacted]", text)


def _redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if _SECRET_FIELDS.search(key):
            event[key] = "[redacted]"
        elif isinstance(value, str):
            event[key] = redact_text(value)
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
