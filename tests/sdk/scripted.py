"""A transport that plays scripted faults in front of the real application, and records every request.

Each request takes the next step of the script; once the script is spent, requests go through to the
real transport (in-process ASGI for `AsyncClient`, real TCP for `Client`). The steps are what a
network and a server do to a client: answer with an error before the application sees the request,
refuse the connection, or let the application process the request and then drop the connection so
that the answer never arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx2


@dataclass(frozen=True)
class Answer:
    """Answer this, without the application seeing the request (a proxy, a rate limiter, a crash)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON, or text for a plain-text answer

    def response(self, request: httpx2.Request) -> httpx2.Response:
        if isinstance(self.body, str):
            return httpx2.Response(self.status, headers=self.headers, text=self.body, request=request)
        return httpx2.Response(self.status, headers=self.headers, json=self.body, request=request)


@dataclass(frozen=True)
class Refuse:
    """The connection is refused: the application never sees the request."""


@dataclass(frozen=True)
class DropAfterProcessing:
    """The application processes the request and answers; the connection drops before the answer
    reaches the client (the worst case for a send: stored, but the client cannot know)."""


Step = Answer | Refuse | DropAfterProcessing


@dataclass
class Seen:
    """One request as the transport saw it, and what became of it."""

    method: str
    path: str
    idempotency_key: str | None
    outcome: int | str  # the status the client got, or the name of the transport error
    dropped_body: bytes | None = None  # what the application answered when the answer was dropped


def rate_limited(seconds: int) -> Answer:
    """A 429 as postventa writes it: the Alephee and standard wait headers, the error body."""
    return Answer(
        429,
        {"Retry-After": str(seconds), "x-ratelimit-retryafter": str(seconds)},
        {"Status": 429, "Message": "Rate limit exceeded.", "Code": "rate_limited"},
    )


def key_in_use() -> Answer:
    """The 409 of a send whose Idempotency-Key is still being processed by an earlier attempt."""
    return Answer(
        409,
        body={
            "Status": 409,
            "Message": "A request with this key is in progress.",
            "Code": "idempotency_key_in_use",
        },
    )


def server_error(status: int = 503) -> Answer:
    """A 5xx from in front of the application, in plain text as a proxy writes it."""
    return Answer(status, body="Service unavailable")


class Scripted(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """Plays `steps` in order in front of `inner`, then passes requests through; `seen` records all."""

    def __init__(self, inner: httpx2.BaseTransport | httpx2.AsyncBaseTransport, *steps: Step) -> None:
        self.inner = inner
        self.steps = list(steps)
        self.seen: list[Seen] = []

    def _record(self, request: httpx2.Request, outcome: int | str, dropped: bytes | None = None) -> None:
        key = request.headers.get("idempotency-key")
        self.seen.append(Seen(request.method, request.url.path, key, outcome, dropped))

    def _refused(self, request: httpx2.Request) -> httpx2.ConnectError:
        self._record(request, "ConnectError")
        return httpx2.ConnectError("connection refused (scripted)", request=request)

    def _dropped(self, request: httpx2.Request, body: bytes) -> httpx2.ReadError:
        self._record(request, "ReadError", body)
        return httpx2.ReadError("connection dropped before the answer (scripted)", request=request)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        assert isinstance(self.inner, httpx2.BaseTransport)
        step = self.steps.pop(0) if self.steps else None
        if isinstance(step, Answer):
            self._record(request, step.status)
            return step.response(request)
        if isinstance(step, Refuse):
            raise self._refused(request)
        response = self.inner.handle_request(request)
        if isinstance(step, DropAfterProcessing):
            body = response.read()
            response.close()
            raise self._dropped(request, body)
        self._record(request, response.status_code)
        return response

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        assert isinstance(self.inner, httpx2.AsyncBaseTransport)
        step = self.steps.pop(0) if self.steps else None
        if isinstance(step, Answer):
            self._record(request, step.status)
            return step.response(request)
        if isinstance(step, Refuse):
            raise self._refused(request)
        response = await self.inner.handle_async_request(request)
        if isinstance(step, DropAfterProcessing):
            body = await response.aread()
            await response.aclose()
            raise self._dropped(request, body)
        self._record(request, response.status_code)
        return response

    def close(self) -> None:
        if isinstance(self.inner, httpx2.BaseTransport):
            self.inner.close()

    async def aclose(self) -> None:
        if isinstance(self.inner, httpx2.AsyncBaseTransport):
            await self.inner.aclose()

    @property
    def outcomes(self) -> list[int | str]:
        """What each request got, in order."""
        return [seen.outcome for seen in self.seen]
