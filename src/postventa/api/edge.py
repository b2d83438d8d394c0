"""The one ASGI middleware at the very edge, outside FastAPI's whole stack (its 500 handler too).

For every HTTP request it assigns the request id, refuses oversized requests before reading them,
bounds the reading of the body (intake.py), adds the security headers the response lacks
(security.py), counts and times the request for /metrics, and writes the access log line. A client
that went away is counted under 499 (as nginx does) and logged at info, never as a server error;
no exception leaves this middleware for the server to log. One middleware with one `send` wrapper,
not one per concern: each layer of ASGI wrappers costs every request a coroutine and a closure.

Query strings carry API keys, so the access log records the path only, never the query.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postventa.api.errors import CLIENT_CLOSED_REQUEST, error_body
from postventa.api.intake import BodyIntake, BodyReader
from postventa.api.security import SecurityHeaders
from postventa.logs import log_request
from postventa.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS, http_method_label

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
UNMATCHED_ROUTE = "unmatched"
log = structlog.get_logger("postventa.api")


class EdgeMiddleware:
    """Request id, size caps, security headers, metrics and the access log, for every request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        intake: BodyIntake,
        max_query_bytes: int,
        security: SecurityHeaders,
        templates: Mapping[object, str] | None = None,
    ) -> None:
        self.app = app
        self.templates = templates or {}
        self.intake = intake
        self.max_body_bytes = intake.max_body_bytes
        self.max_query_bytes = max_query_bytes
        self.security = security
        # The metrics' children by (method, route, status): `labels()` looks them up under a lock
        # on every call; the label values are bounded (metrics.py), and so is this.
        self._counted: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        content_length, chunked, incoming_id = _edge_headers(scope["headers"])
        # A fresh id is 128 random bits from the process's generator: ids correlate log lines and
        # need no secrecy, and os.urandom is a system call per request. (`random` reseeds after a fork.)
        request_id = (
            incoming_id
            if incoming_id and _REQUEST_ID.fullmatch(incoming_id)
            else f"{random.getrandbits(128):032x}"
        )
        scope.setdefault("state", {})["request_id"] = request_id
        added = (*self.security.for_path(scope["path"]), (b"x-request-id", request_id.encode()))
        status = 500  # what the server answers when the application raised before responding
        responded = False
        refusal = self._refusal(scope, content_length)
        body = self.intake.reader(
            receive, int(content_length) if refusal is None and content_length else None, chunked
        )

        async def send_with_headers(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in added if header[0] not in present)
                if not body.complete and b"connection" not in present:
                    # Answered before the body was read (a refusal): read no more of it.
                    headers.append((b"connection", b"close"))
                message["headers"] = headers
            await send(message)

        try:
            if refusal is not None:
                await _send_error(send_with_headers, *refusal)
            else:
                await self.app(scope, body.receive, send_with_headers)
        except Exception as error:
            status = await self._after_escaped(error, body, responded, status, send_with_headers, request_id)
        finally:
            body.release()
            if body.disconnected and status != CLIENT_CLOSED_REQUEST and not responded:
                status = CLIENT_CLOSED_REQUEST
            seconds = time.perf_counter() - started
            method, route = http_method_label(scope["method"]), route_template(scope, self.templates)
            requests, duration = self._metrics(method, route, status)
            requests.inc()
            duration.observe(seconds)
            log_request(request_id, scope["method"], scope["path"], status, round(seconds * 1000, 2))

    def _metrics(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        children = self._counted.get((method, route, status))
        if children is None:
            children = self._counted[(method, route, status)] = (
                HTTP_REQUESTS.labels(method, route, str(status)),
                HTTP_REQUEST_DURATION.labels(method, route),
            )
        return children

    def _refusal(self, scope: Scope, length: str | None) -> tuple[int, str, str] | None:
        if len(scope["query_string"]) > self.max_query_bytes:
            return 414, "uri_too_long", f"The query string is over {self.max_query_bytes} bytes."
        if length is not None:
            if not length.isdigit():
                return 400, "bad_request", "Content-Length is not a number."
            if int(length) > self.max_body_bytes:
                return 413, "request_too_large", f"The request body is over {self.max_body_bytes} bytes."
        return None

    @staticmethod
    async def _after_escaped(
        error: Exception, body: BodyReader, responded: bool, status: int, send: Send, request_id: str
    ) -> int:
        """The status of a request whose application raised past its own handlers; nothing is
        raised on to the server (uvicorn would log a second, plain-text traceback)."""
        if body.disconnected:
            log.info("client_disconnected", request_id=request_id)
            return CLIENT_CLOSED_REQUEST
        if responded:
            # Starlette re-raises what its 500 handler answered (and api/errors.py logged) when the
            # answer began with it; anything else failed mid-answer and is logged here.
            if status != 500:
                log.error(
                    "unexpected_error", request_id=request_id, error_type=type(error).__name__, exc_info=error
                )
            return status
        log.error("unexpected_error", request_id=request_id, error_type=type(error).__name__, exc_info=error)
        await _send_error(send, 500, "internal_error", f"Internal server error. Request id: {request_id}")
        return 500


class EdgedFastAPI(FastAPI):
    """FastAPI with the edge middleware outside its whole middleware stack.

    Starlette puts its ServerErrorMiddleware (which sends the 500 of an unexpected exception)
    outside every middleware added with `add_middleware`; wrapping the built stack is the only
    place from which a 500, and the edge's own 413/414, also carry the security headers and the
    request id, and are counted and logged with their status.
    """

    def __init__(
        self,
        *,
        intake: BodyIntake,
        max_query_bytes: int,
        strict_transport: bool = False,
        docs_paths: tuple[str, ...] = (),
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.intake, self.max_query_bytes = intake, max_query_bytes
        self.strict_transport = strict_transport
        # Documentation pages served by routes of our own (api/docs_pages.py), beside FastAPI's.
        self.own_docs_paths = docs_paths

    def build_middleware_stack(self) -> ASGIApp:
        """The usual stack, wrapped in the edge."""
        docs_paths = [
            path for path in (self.docs_url, self.redoc_url, self.swagger_ui_oauth2_redirect_url) if path
        ] + list(self.own_docs_paths)
        security = SecurityHeaders(docs_paths=docs_paths, strict_transport=self.strict_transport)
        return EdgeMiddleware(
            super().build_middleware_stack(),
            intake=self.intake,
            max_query_bytes=self.max_query_bytes,
            security=security,
            templates={route.endpoint: route.path for route in self.routes if isinstance(route, Route)},
        )


def route_template(scope: Scope, templates: Mapping[object, str]) -> str:
    """The path template of the route that handled the request, or "unmatched".

    Read after the application ran, so a metric's label is the template
    (`/v2/orders/{orderId}/messages`), never the raw path. FastAPI's router names the route it
    chose (`scope["route"]`) for its own routes only; a plain Starlette route is known by the
    endpoint it put in the scope (`templates`: endpoint → template). A request no route took (an
    unknown path, or one refused here before routing) is "unmatched".
    """
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str) or not path:
        path = templates.get(scope.get("endpoint"))
    return path or UNMATCHED_ROUTE


def _edge_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, bool, str | None]:
    """Content-Length, whether the body is chunked, and X-Request-Id: the only headers the edge reads."""
    length = request_id = None
    chunked = False
    for name, value in headers:
        if len(name) == 14 and name.lower() == b"content-length":
            length = value.decode("latin-1")
        elif len(name) == 12 and name.lower() == b"x-request-id":
            request_id = value.decode("latin-1")
        elif len(name) == 17 and name.lower() == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    return length, chunked, request_id


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
