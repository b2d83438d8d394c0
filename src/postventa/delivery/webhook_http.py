"""The webhook dispatcher's HTTP exchange (issue 20): one POST, safe by default.

aiohttp, the server's one library for outbound calls (meli/transport.py; docs/decisions.md), with
its own session: its own connection limits, so webhooks never take connections from Mercado Libre
delivery. Each POST:

- goes only where domain/webhooks.py allows: the URL's form, then every address its host resolves
  to, checked by the resolver aiohttp connects through (`CheckingResolver`), so the connection is
  made to an address that was checked (no DNS rebinding between the check and the connect); DNS
  is not cached, so each new connection resolves and checks again; an address literal is checked
  before the request;
- follows no redirect (a 3xx is a failure), uses no proxy from the environment;
- ends within ATTEMPT_TIMEOUT_SECONDS (10 s), resolution, connection, request and answer together;
- reads at most RESPONSE_BODY_LIMIT_BYTES (64 KiB) of the answer, and keeps its start as the
  attempt's error when it is not a 2xx.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from postventa.domain import webhooks as rules
from postventa.domain.errors import Refusal
from postventa.services.webhooks import Resolver, system_resolver

ERROR_BODY_CHARACTERS = 300
USER_AGENT = "postventa-webhooks/1"


class DestinationRefused(OSError):
    """The destination is not allowed (domain/webhooks.py's rules); the message says why."""


class CheckingResolver(AbstractResolver):
    """Resolves through `resolver` and refuses a host with any address the rules refuse."""

    def __init__(self, resolver: Resolver, *, allow_private: bool) -> None:
        self._resolver = resolver
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The host's addresses, every one allowed; raises DestinationRefused otherwise."""
        try:
            addresses = await self._resolver(host, port)
        except (OSError, UnicodeError) as error:
            raise DestinationRefused(f"'{host}' does not resolve ({type(error).__name__})") from None
        if not addresses:
            raise DestinationRefused(f"'{host}' does not resolve")
        for address in addresses:
            refusal = rules.address_refusal(address, allow_private=self._allow_private)
            if refusal is not None:
                raise DestinationRefused(f"{refusal.message} ({address})")
        return [_result(host, address, port) for address in addresses]

    async def close(self) -> None:
        """Nothing to release."""


def _result(host: str, address: str, port: int) -> ResolveResult:
    literal = rules.literal_address(address.split("%", 1)[0])
    family = socket.AF_INET6 if literal is not None and literal.version == 6 else socket.AF_INET
    return ResolveResult(
        hostname=host, host=address, port=port, family=family, proto=0, flags=socket.AI_NUMERICHOST
    )


@dataclass(frozen=True)
class PostResult:
    """How one POST ended: the answer's status, or None and why no answer counts."""

    http_status: int | None
    error: str | None
    duration_ms: int


class WebhookPoster:
    """POSTs webhook bodies, `max_connections` at a time at most."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        max_connections: int = 100,
        timeout_seconds: float = rules.ATTEMPT_TIMEOUT_SECONDS,
    ) -> None:
        self.allow_private = allow_private
        self.timeout_seconds = timeout_seconds
        self._resolver = resolver
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=CheckingResolver(self._resolver, allow_private=self.allow_private),
                use_dns_cache=False,
                limit=self._max_connections,
                limit_per_host=0,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,  # no proxy: it would connect where the rules never looked
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
                auto_decompress=False,
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostResult:
        """POST `body` to `url`; never raises for what the destination does."""
        started = time.monotonic()
        refusal = self._url_refusal(url)
        if refusal is not None:
            return PostResult(None, f"refused: {refusal.message}", 0)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                http_status, error = await self._exchange(url, body, headers)
        except TimeoutError:
            http_status, error = None, f"timeout after {self.timeout_seconds:g} s"
        except aiohttp.ClientConnectorError as failure:
            cause = failure.os_error
            if isinstance(cause, DestinationRefused):
                http_status, error = None, f"refused: {cause}"
            else:
                http_status, error = None, f"connection failed: {cause.strerror or type(cause).__name__}"
        except (aiohttp.ClientError, OSError) as failure:
            http_status, error = None, f"connection failed: {type(failure).__name__}"
        return PostResult(http_status, error, int((time.monotonic() - started) * 1000))

    def _url_refusal(self, url: str) -> Refusal | None:
        parsed = rules.parse_destination(url, allow_private=self.allow_private)
        if isinstance(parsed, Refusal):
            return parsed
        literal = rules.literal_address(parsed.host)
        if literal is not None:  # aiohttp connects to an address literal without resolving it
            return rules.address_refusal(str(literal), allow_private=self.allow_private)
        return None

    async def _exchange(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, str | None]:
        async with self._client().post(
            url, data=body, headers=dict(headers), allow_redirects=False
        ) as answer:
            head = await _read_limited(answer)
            status = answer.status
        if rules.is_success(status):
            return status, None
        if 300 <= status < 400:
            return status, f"HTTP {status}: redirect not followed"
        text = head[:ERROR_BODY_CHARACTERS].decode("utf-8", errors="replace")
        return status, f"HTTP {status}: {text}" if text else f"HTTP {status}"

    async def aclose(self) -> None:
        """Close the connections."""
        if self._session is not None:
            await self._session.close()


async def _read_limited(answer: aiohttp.ClientResponse) -> bytes:
    """At most RESPONSE_BODY_LIMIT_BYTES of the answer's body (the rest is never read: a larger
    answer's connection is closed rather than reused)."""
    limit = rules.RESPONSE_BODY_LIMIT_BYTES
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        chunk = await answer.content.read(limit - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
