"""Reading request bodies at the edge: how long a pause between parts may last, how many large
bodies one process reads at once, and when a connection must close because its body was not read.

A body is read only when an endpoint asks for it (after the checks it can make without it: the API
key in the query or a header, the admin token). Each wait for its next part is bounded (408), and
a body over LARGE_BODY_BYTES (or of unknown length) first takes one of a few slots, waiting a
moment for one (then 503 with Retry-After), so that memory stays bounded whatever the number of
simultaneous uploads (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.types import Message, Receive

from postventa.config import Settings

# Bodies up to this size are read without a slot: the send's JSON without attachment, notifications,
# admin documents. Above it, base64 attachments.
LARGE_BODY_BYTES = 64 * 1024


def has_large_body(headers: Mapping[str, str]) -> bool:
    """Whether a request's body is over LARGE_BODY_BYTES, or of unknown length (chunked)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return True
    length = headers.get("content-length", "")
    return length.isdigit() and int(length) > LARGE_BODY_BYTES


class IntakeRefused(Exception):
    """A body the edge stops reading: too slow (408) or no slot free for it (503)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


@dataclass
class BodyIntake:
    """The edge's body limits, shared by the requests of one application."""

    max_body_bytes: int
    body_timeout_seconds: float
    large_body_wait_seconds: float
    slots: asyncio.Semaphore = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyIntake:
        """The intake the settings describe."""
        return cls(
            max_body_bytes=settings.max_body_bytes,
            body_timeout_seconds=settings.body_timeout_seconds,
            large_body_wait_seconds=settings.large_body_wait_seconds,
            slots=asyncio.Semaphore(settings.max_large_bodies),
        )

    def reader(self, receive: Receive, declared_length: int | None, chunked: bool) -> BodyReader:
        """The bounded reader of one request's body."""
        return BodyReader(self, receive, declared_length, chunked)


class BodyReader:
    """One request's `receive`, bounded; remembers what the edge needs to know afterwards."""

    def __init__(
        self, intake: BodyIntake, receive: Receive, declared_length: int | None, chunked: bool
    ) -> None:
        self.intake = intake
        self._receive = receive
        self.large = chunked or (declared_length or 0) > LARGE_BODY_BYTES
        self.complete = not chunked and not declared_length  # no body at all
        self.disconnected = False
        self.holds_slot = False
        self.received = 0

    async def receive(self) -> Message:
        """The next part of the body, within the body timeout; refused past the size limit."""
        if self.complete:  # nothing more to read (or no body at all): nothing to time
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
            return message
        if self.large and not self.holds_slot:
            await self._take_slot()
        try:
            async with asyncio.timeout(self.intake.body_timeout_seconds):
                message = await self._receive()
        except TimeoutError:
            seconds = self.intake.body_timeout_seconds
            raise IntakeRefused(
                408, "request_timeout", f"The request body paused for more than {seconds:g} seconds."
            ) from None
        if message["type"] == "http.disconnect":
            self.disconnected = True
        elif message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
            if self.received > self.intake.max_body_bytes:
                raise IntakeRefused(
                    413, "request_too_large", f"The request body is over {self.intake.max_body_bytes} bytes."
                )
        return message

    def release(self) -> None:
        """Give the slot back (the request is over)."""
        if self.holds_slot:
            self.holds_slot = False
            self.intake.slots.release()

    async def _take_slot(self) -> None:
        wait = self.intake.large_body_wait_seconds
        try:
            async with asyncio.timeout(wait):
                await self.intake.slots.acquire()
        except TimeoutError:
            retry = max(1, math.ceil(wait))
            raise IntakeRefused(
                503,
                "server_busy",
                f"Too many large request bodies are being read; retry in {retry} seconds.",
                {"Retry-After": str(retry)},
            ) from None
        self.holds_slot = True
