"""The emulator's edge: journal every call, inject faults, apply the rate limit, refuse `/messages`
calls without `tag=post_sale`, drop connections.

It wraps the whole FastAPI application (outside its middleware), so it sees the server's own `send`
and can make a real client see a dropped connection rather than an HTTP answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx2
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from postventa.emulator.auth import token_owner
from postventa.emulator.errors import generic_body
from postventa.emulator.faults import FaultRule, fault_answer
from postventa.emulator.journal import JournalEntry, describe_body, query_json
from postventa.emulator.models import Seller
from postventa.emulator.ratelimit import endpoint_key, request_kind
from postventa.emulator.runtime import Emulator

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_REFUSING_FAULTS = frozenset({"429", "409", "451", "500", "503", "timeout"})
MESSAGES_TAG = "post_sale"
# Mercado Libre does not document its answer to a /messages call without the tag: our stand-in.
MISSING_TAG_MESSAGE = "tag param is required"
_DISCONNECT_WAIT_STEPS = 200


class ConnectionDropped(httpx2.RemoteProtocolError):
    """Raised to the client when the server offers no way to drop the connection (in-process
    transports such as `httpx2.ASGITransport`): a transport error, like a real dropped connection."""


class Edge:
    """Runs each HTTP call through journal, faults and rate limit before the application."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        """Handle one HTTP call; `GET /_emulator/journal` itself is neither journaled nor faulted."""
        method, path = scope["method"], scope["path"]
        if method == "GET" and path.rstrip("/") == "/_emulator/journal":
            await app(scope, receive, send)
            return
        body = await _read_body(receive)
        headers = Headers(scope=scope)
        caller = token_owner(self._emulator.state, headers.get("authorization"))
        entry = self._emulator.journal.open(
            method,
            path,
            query_json(scope["query_string"]),
            describe_body(headers.get("content-type", ""), body),
            caller.id if caller is not None else None,
        )
        replay = _replaying(body, receive)
        control = path == "/_emulator" or path.startswith("/_emulator/")
        rule = None if control else self._emulator.faults.pick(method, path)
        if rule is not None and await self._fault_ends_call(rule, entry, send):
            return
        if not control and not self._within_rate_limit(method, path, caller, body):
            await send_json(send, 429, generic_body(429, "too_many_requests", "too many requests"))
            entry.finish(429, applied=False)
            return
        if not control and not has_messages_tag(path, entry.query):
            await send_json(send, 400, generic_body(400, "bad_request", MISSING_TAG_MESSAGE))
            entry.finish(400, applied=False)
            return
        if rule is not None and rule.kind == "lost_response":
            status = await _run_unheard(app, scope, replay)
            entry.finish(None, applied=_success(status), fault=rule.kind)
            await drop_connection(send)
            return
        await _run_journaled(app, scope, replay, send, entry)

    async def _fault_ends_call(self, rule: FaultRule, entry: JournalEntry, send: Send) -> bool:
        """Apply a fault that happens before the handler; True when the call ends here."""
        entry.fault = rule.kind
        if rule.kind in ("delay", "timeout"):
            await asyncio.sleep(rule.wait_seconds)
        if rule.kind in _REFUSING_FAULTS:
            answer = fault_answer(rule)
            entry.finish(answer.status, applied=False)
            await send_json(send, answer.status, answer.body, answer.headers)
            return True
        if rule.kind == "reset":
            entry.finish(None, applied=False)
            await drop_connection(send)
            return True
        return False

    def _within_rate_limit(self, method: str, path: str, caller: Seller | None, body: bytes) -> bool:
        """Within the rate limit of the application the call is made for (the token's, or for a token
        request the form's client id); a call for no known application is not limited."""
        emulator = self._emulator
        client_id = caller.client_id if caller is not None else None
        if client_id is None and path == "/oauth/token":
            client_id = _form_client_id(body)
        if client_id is None:
            return True
        config = emulator.config
        limit = config.reads_per_minute if request_kind(method) == "read" else config.writes_per_minute
        return emulator.rate_limiter.allow(client_id, endpoint_key(method, path), limit)


def has_messages_tag(path: str, query: dict[str, Any]) -> bool:
    """Whether a call may go on: every `/messages...` call must carry `tag=post_sale`."""
    if path != "/messages" and not path.startswith("/messages/"):
        return True
    tag = query.get("tag")
    return tag == MESSAGES_TAG or (isinstance(tag, list) and MESSAGES_TAG in tag)


async def drop_connection(send: Send) -> None:
    """Close the connection without an HTTP answer.

    Under uvicorn the server's `send` belongs to the request cycle, whose transport is aborted; once
    the server has noticed the lost connection, returning is silent. Elsewhere, raise
    `ConnectionDropped` after starting an answer that will never be completed.
    """
    cycle = getattr(send, "__self__", None)
    abort = getattr(getattr(cycle, "transport", None), "abort", None)
    if callable(abort):
        abort()
        for _ in range(_DISCONNECT_WAIT_STEPS):
            if getattr(cycle, "disconnected", False):
                return
            await asyncio.sleep(0.001)
        return
    await send({"type": "http.response.start", "status": 500, "headers": [(b"content-length", b"1")]})
    raise ConnectionDropped("The emulator dropped the connection (fault).")


async def send_json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    """Answer with a JSON body straight through ASGI."""
    data = json.dumps(body).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode("ascii"))]
    raw += [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


async def _run_journaled(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, entry: JournalEntry
) -> None:
    status: list[int] = []

    async def observed(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(int(message["status"]))
        await send(message)

    try:
        await app(scope, receive, observed)
    finally:
        code = status[0] if status else None
        entry.finish(code, applied=_success(code))


async def _run_unheard(app: ASGIApp, scope: Scope, receive: Receive) -> int | None:
    """Run the application, keeping its answer from the client; the status it would have sent."""
    status: list[int] = []

    async def swallow(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(int(message["status"]))

    await app(scope, receive, swallow)
    return status[0] if status else None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _form_client_id(body: bytes) -> str | None:
    try:
        values = parse_qs(body.decode("utf-8"), keep_blank_values=True).get("client_id")
    except UnicodeDecodeError:
        return None
    return values[-1] if values else None


def _success(status: int | None) -> bool:
    return status is not None and 200 <= status < 300
