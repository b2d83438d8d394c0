"""ASGI middleware at the very edge: request ids, size caps before reading, and a redacted access log.

Query strings carry API keys, so the access log records the path only, never the query.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postventa.api.errors import error_body
from postventa.domain.errors import PostventaError, RefusalKind

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
log = structlog.get_logger("postventa.access")


class EdgeMiddleware:
    """Assigns the request id, refuses oversized requests before reading them, logs each request."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_query_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_query_bytes = max_query_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        refusal = self._refusal(scope, headers)
        try:
            if refusal is not None:
                await _send_error(send_with_id, *refusal)
            else:
                await self.app(scope, self._bounded(receive), send_with_id)
        finally:
            log.info(
                "request",
                request_id=request_id,
                method=scope["method"],
                path=scope["path"],
                status=status_holder["status"],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, str] | None:
        if len(scope["query_string"]) > self.max_query_bytes:
            return 414, "uri_too_long", f"The query string is over {self.max_query_bytes} bytes."
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "bad_request", "Content-Length is not a number."
            if int(length) > self.max_body_bytes:
                return 413, "request_too_large", f"The request body is over {self.max_body_bytes} bytes."
        return None

    def _bounded(self, receive: Receive) -> Receive:
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise PostventaError.of(
                        RefusalKind.TOO_LARGE,
                        "request_too_large",
                        f"The request body is over {self.max_body_bytes} bytes.",
                    )
            return message

        return bounded_receive


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps(error_body(status, code, message))
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
