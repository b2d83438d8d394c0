"""A scripted stand-in for the Mercado Libre client's transport: answers from a script, records
every request, counts the exchanges (the seam that tests pass to `MeliClient(transport=...)`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from postventa.meli.transport import Body, NoReply, Reply


@dataclass(frozen=True)
class Request:
    """One request the client made."""

    method: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    data: Body


Answer = Callable[[Request], Reply]


def reply(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Reply:
    """A response: `body` as JSON (bytes as they are)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body if body is not None else {})
    return Reply(status, {name.lower(): value for name, value in (headers or {}).items()}, raw)


def no_reply(*, may_have_arrived: bool) -> Answer:
    """An answer that never comes."""

    def answer(_request: Request) -> Reply:
        raise NoReply("scripted silence", may_have_arrived=may_have_arrived)

    return answer


@dataclass
class ScriptedTransport:
    """Answers each request with the next scripted answer (the last one repeats), or `default`."""

    script: list[Answer | Reply] = field(default_factory=list)
    default: Answer | Reply | None = None
    requests: list[Request] = field(default_factory=list)
    closed: bool = False

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        data: Body,
    ) -> Reply:
        request = Request(method, url, dict(params or {}), dict(headers), data)
        self.requests.append(request)
        if self.script:
            answer = (
                self.script.pop(0) if len(self.script) > 1 or self.default is not None else self.script[0]
            )
        elif self.default is not None:
            answer = self.default
        else:
            raise AssertionError(f"unscripted request {method} {url}")
        return answer(request) if callable(answer) else answer

    async def aclose(self) -> None:
        self.closed = True
