"""Refusals to HTTP: one table from kind to status, one body shape, and plain-text 500s."""

from __future__ import annotations

import functools
import re
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import compile_path

from postventa.api.guard import response_headers
from postventa.api.intake import IntakeRefused
from postventa.domain.errors import PostventaError, Refusal, RefusalKind
from postventa.store.engine import database_unavailable

STATUS_BY_KIND: dict[RefusalKind, int] = {
    RefusalKind.UNREADABLE: 400,
    RefusalKind.UNAUTHENTICATED: 401,
    RefusalKind.INVALID: 400,
    RefusalKind.FORBIDDEN: 403,
    RefusalKind.NOT_FOUND: 404,
    RefusalKind.CONFLICT: 409,
    RefusalKind.KEY_REUSED: 422,
    RefusalKind.PRECONDITION: 412,
    RefusalKind.TOO_LARGE: 413,
    RefusalKind.UNSUPPORTED_MEDIA: 415,
    RefusalKind.RATE_LIMITED: 429,
    RefusalKind.UPSTREAM: 502,
    RefusalKind.UNAVAILABLE: 503,
}

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    415: "unsupported_media_type",
}

# What nginx logs for a request whose client closed the connection before the answer.
CLIENT_CLOSED_REQUEST = 499

log = structlog.get_logger("postventa.api")


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """The documented error body. A message that quotes the client's input may carry characters no
    encoder takes (lone surrogates from JSON escapes); they are replaced, never a reason to fail."""
    printable = message.encode("utf-8", "replace").decode("utf-8")
    return {"Status": status, "Message": printable, "Code": code}


def refusal_response(refusal: Refusal, headers: dict[str, str] | None = None) -> JSONResponse:
    """A refusal as its status and body."""
    status = STATUS_BY_KIND[refusal.kind]
    return JSONResponse(
        error_body(status, refusal.code, refusal.message), status_code=status, headers=headers
    )


def _gathered_headers(request: Request) -> dict[str, str]:
    # The rate-limit headers set once the key was known (api/guard.py); a raised error keeps them.
    return response_headers(request)


def _allowed_methods(request: Request) -> str:
    # Starlette's 405 names the methods of the first route on the path only; a path served by
    # several routes (GET and POST /admin/accounts) must list them all (RFC 9110, Allow). FastAPI
    # keeps included routers as routes of their own: their routes are listed through it.
    path = request.scope["path"]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        if route.path and route.methods and _path_pattern(route.path).match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


@functools.cache
def _path_pattern(template: str) -> re.Pattern[str]:
    pattern, _format, _convertors = compile_path(template)
    return pattern


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as the documented body; nothing unexpected leaks internals."""

    async def on_refusal(request: Request, error: Exception) -> Response:
        assert isinstance(error, PostventaError)
        return refusal_response(error.refusal, _gathered_headers(request))

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        code = _HTTP_CODES.get(error.status_code, "http_error")
        message = error.detail if isinstance(error.detail, str) else code.replace("_", " ")
        headers = {**_gathered_headers(request), **(error.headers or {})}
        if error.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return JSONResponse(
            error_body(error.status_code, code, message), status_code=error.status_code, headers=headers
        )

    async def on_validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
        message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        return JSONResponse(
            error_body(400, "invalid_request", message), status_code=400, headers=_gathered_headers(request)
        )

    async def on_database_error(request: Request, error: Exception) -> Response:
        if not database_unavailable(error):
            return await on_unexpected(request, error)
        log.warning("database_unavailable", request_id=getattr(request.state, "request_id", "-"))
        refusal = PostventaError.of(
            RefusalKind.UNAVAILABLE,
            "database_unavailable",
            "The database cannot take the request now; retry in a moment.",
        ).refusal
        return refusal_response(refusal, {**_gathered_headers(request), "Retry-After": "1"})

    async def on_unexpected(request: Request, error: Exception) -> Response:
        request_id = getattr(request.state, "request_id", "-")
        log.error("unexpected_error", request_id=request_id, error_type=type(error).__name__, exc_info=error)
        return PlainTextResponse(
            f"Internal server error. Request id: {request_id}",
            status_code=500,
            headers=_gathered_headers(request),
        )

    async def on_intake_refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, IntakeRefused)
        return JSONResponse(
            error_body(error.status, error.code, error.message),
            status_code=error.status,
            headers={**_gathered_headers(request), **error.headers},
        )

    async def on_client_disconnect(request: Request, _error: Exception) -> Response:
        # Nobody is left to answer; the edge counts the request under 499 (api/edge.py).
        log.info("client_disconnected", request_id=getattr(request.state, "request_id", "-"))
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    app.add_exception_handler(PostventaError, on_refusal)
    app.add_exception_handler(IntakeRefused, on_intake_refused)
    app.add_exception_handler(ClientDisconnect, on_client_disconnect)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(Exception, on_unexpected)
