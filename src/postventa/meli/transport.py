"""The one outbound HTTP stack to Mercado Libre, behind a small seam (`Transport`).

`MeliClient` builds requests and reads answers; a transport only exchanges bytes. The default,
`AiohttpTransport`, is the server's one library for outbound calls: an exchange costs a fraction of
the CPU it costs through httpx2 (bench/outbound_http.py, docs/decisions.md), and the worker's
throughput is its CPU per message. Tests pass a scripted transport instead.

A transport raises `NoReply` when no response came, saying whether the request may have left: only
then can a write's outcome be unknown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
import orjson

from postventa.metrics import MELI_REQUEST_DURATION, MELI_REQUESTS

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 15.0
MAX_CONNECTIONS = 100
ID_SEGMENT_MIN_CHARS = 24  # a path segment this long is an id even without digits


@dataclass(frozen=True, slots=True)
class Reply:
    """A response read whole. `headers` answers lower-case names (aiohttp's are case-insensitive)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return orjson.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class FilePart:
    """A multipart/form-data body of one file field (an attachment upload)."""

    field: str
    file_name: str
    content: bytes
    content_type: str


# A request body: raw bytes (its Content-Type among the headers), a form (URL-encoded) or one file.
Body = bytes | Mapping[str, str] | FilePart | None


class NoReply(Exception):
    """No response came; `may_have_arrived` says whether the request may have reached the server."""

    def __init__(self, detail: str, *, may_have_arrived: bool) -> None:
        super().__init__(detail)
        self.may_have_arrived = may_have_arrived


class Transport(Protocol):
    """Exchanges one request for one whole response, or raises `NoReply`."""

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        data: Body,
    ) -> Reply:
        """Send the request and read the whole response."""
        ...

    async def aclose(self) -> None:
        """Close the connections."""
        ...


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY or HTTP_PROXY, by its scheme, in either
    case), or None: none is named, or NO_PROXY exempts the host. The standard library's reading."""
    parts = urlsplit(url)
    if parts.hostname and proxy_bypass(parts.hostname):
        return None
    return getproxies().get(parts.scheme)


def endpoint_template(path: str) -> str:
    """The path with its ids as `{id}` (`/messages/packs/{id}/sellers/{id}`): a bounded metric label,
    and the endpoint Mercado Libre counts calls against."""
    segments = path.split("?", 1)[0].split("/")
    return "/".join(
        "{id}" if any(c.isdigit() for c in segment) or len(segment) >= ID_SEGMENT_MIN_CHARS else segment
        for segment in segments
    )


class AiohttpTransport:
    """aiohttp: one connection pool per event loop, the environment's proxy read once for the one
    host this transport calls, no redirects followed, each exchange counted and timed by endpoint."""

    def __init__(self, base_url: str, *, read_timeout_seconds: float = READ_TIMEOUT_SECONDS) -> None:
        # Waiting for a free connection counts as connecting: either way nothing was sent yet.
        self.timeout = aiohttp.ClientTimeout(
            total=None,
            connect=read_timeout_seconds,
            sock_connect=CONNECT_TIMEOUT_SECONDS,
            sock_read=read_timeout_seconds,
        )
        # HTTPS_PROXY / HTTP_PROXY and NO_PROXY, read once for the one host this transport calls:
        # aiohttp's trust_env would read them (and ~/.netrc) on every request, each time on a
        # thread, and the worker's throughput is its CPU per message.
        self.proxy = environment_proxy(base_url)
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    async def aclose(self) -> None:
        """Close the connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        """The connection pool, opened on first use: aiohttp binds it to the running event loop, and a
        transport made before the loop runs (or used by a test from several loops) opens one per loop."""
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._session_loop is not loop:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
                timeout=self.timeout,
                headers={"Accept": "application/json"},
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
                proxy=self.proxy,
            )
            self._session, self._session_loop = session, loop
        return session

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        data: Body,
    ) -> Reply:
        """One HTTP exchange, read whole, counted and timed by endpoint template and status (or why
        none came)."""
        path = url[len(self.base_url) :] if url.startswith(self.base_url) else urlsplit(url).path
        endpoint = endpoint_template(path)
        status = "error"
        started = time.perf_counter()
        try:
            async with self._http().request(
                method,
                url,
                params=params,
                headers=headers,
                data=_aiohttp_body(data),
                allow_redirects=False,
            ) as response:
                reply = Reply(response.status, response.headers, await response.read())
            status = str(reply.status)
            return reply
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            status = "timeout" if isinstance(error, TimeoutError) else "connection"
            raise NoReply(_describe(error), may_have_arrived=False) from error
        except (TimeoutError, aiohttp.ServerTimeoutError) as error:
            status = "timeout"
            raise NoReply(_describe(error), may_have_arrived=True) from error
        except aiohttp.ClientError as error:
            status = "connection"
            raise NoReply(_describe(error), may_have_arrived=True) from error
        finally:
            MELI_REQUESTS.labels(method, endpoint, status).inc()
            MELI_REQUEST_DURATION.labels(method, endpoint).observe(time.perf_counter() - started)


def _aiohttp_body(data: Body) -> Any:
    if isinstance(data, FilePart):
        form = aiohttp.FormData()
        form.add_field(data.field, data.content, filename=data.file_name, content_type=data.content_type)
        return form
    if isinstance(data, Mapping):
        return dict(data)
    return data


def _describe(error: BaseException) -> str:
    """What went wrong, by name (a timeout's own text is often empty)."""
    detail = str(error)
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
