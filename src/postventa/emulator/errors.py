"""Mercado Libre's error envelopes, and the exception handlers that render them.

Three envelopes coexist in the real API (research §2.6, §1.7): the generic
`{"message","error","status","cause":[]}`, the action guide's `{"cause","error","message","status_code"}`
and the message send's `{"status_code","code","message"}`. Handlers raise `MeliError` with the body
already in the right one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

JSONDict = dict[str, Any]


class MeliError(Exception):
    """An error answer: status, body and extra headers."""

    def __init__(self, status: int, body: JSONDict, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def generic_body(status: int, error: str, message: str) -> JSONDict:
    """The generic envelope."""
    return {"message": message, "error": error, "status": status, "cause": []}


def generic_error(status: int, error: str, message: str) -> MeliError:
    """An error in the generic envelope."""
    return MeliError(status, generic_body(status, error, message))


def guide_error(status: int, error: str, message: str, cause: str) -> MeliError:
    """An error in the action guide's envelope."""
    return MeliError(status, {"cause": cause, "error": error, "message": message, "status_code": status})


def send_error(status: int, code: str, message: str) -> MeliError:
    """An error in the message send's envelope."""
    return MeliError(status, {"status_code": status, "code": code, "message": message})


def invalid_token() -> MeliError:
    """401 for a missing, unknown or expired access token."""
    return MeliError(401, {"message": "invalid_token", "error": "not_found", "status": 401, "cause": []})


def bad_control_input(message: str) -> MeliError:
    """400 for a control-API body or parameter that does not make sense."""
    return generic_error(400, "bad_request", message)


def install_error_handlers(app: FastAPI) -> None:
    """Render `MeliError`, unknown routes and framework validation errors as Mercado Libre does."""
    app.add_exception_handler(MeliError, _meli_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


async def _meli_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MeliError)
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    error = "not_found" if status == 404 else "method_not_allowed" if status == 405 else "bad_request"
    message = "resource not found" if status == 404 else str(exc.detail)
    return JSONResponse(generic_body(status, error, message), status_code=status)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(generic_body(400, "bad_request", str(exc.errors())), status_code=400)
